//! Connections: accepted up to a cap (more are answered 503 and closed), served as HTTP/1.1 with
//! a deadline for a request's headers, and closed when idle: no bytes read or written for
//! `idle` while no request is being handled (a keep-alive connection left open, a client that
//! stops reading its answer or sends its body a byte at a time).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

/// Limits of the connection layer.
#[derive(Clone, Debug)]
pub struct ConnLimits {
    /// Connections served at once; more are refused.
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// Time a connection may sit without traffic while no request is being handled.
    pub idle_timeout: Duration,
    /// Time a request's body has to arrive whole.
    pub body_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, app: Router, limits: ConnLimits, shutdown: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (mut stream, _) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                // Out of file descriptors and the like: wait a little instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let body = r#"{"error":{"message":"too many connections; try again later","type":"server_error","param":null,"code":"too_many_connections"}}"#;
                let head = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                    let _ = stream.shutdown().await;
                })
                .await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let counts = Arc::new(Counts::default());
        let io = TokioIo::new(Watched::new(stream, limits.idle_timeout, counts.clone()));
        let service = Handler { app: app.clone(), counts, body_timeout: limits.body_timeout };
        let conn = http.serve_connection(io, service);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
}

/// The router as a hyper service. It counts, per connection, the requests in flight and those
/// still receiving their body: the connection may time out as idle only while every request in
/// flight is still receiving its body (or none is in flight), and a body must arrive whole
/// within `body_timeout`.
#[derive(Clone)]
struct Handler {
    app: Router,
    counts: Arc<Counts>,
    body_timeout: Duration,
}

#[derive(Default)]
struct Counts {
    in_flight: AtomicUsize,
    reading: AtomicUsize,
}

impl Counts {
    fn idle_allowed(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) <= self.reading.load(Ordering::SeqCst)
    }
}

struct InFlight(Arc<Counts>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for Handler {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let mut app = self.app.clone();
        let counts = self.counts.clone();
        counts.reading.fetch_add(1, Ordering::SeqCst);
        counts.in_flight.fetch_add(1, Ordering::SeqCst);
        let in_flight = InFlight(counts.clone());
        let (head, body) = req.into_parts();
        let body = Tracked { inner: body, deadline: Instant::now() + self.body_timeout, counts: Some(counts) };
        let req = hyper::Request::from_parts(head, axum::body::Body::new(body));
        Box::pin(async move {
            // A router is always ready.
            let r = tower_service::Service::call(&mut app, req).await;
            drop(in_flight);
            r
        })
    }
}

/// A request body that must arrive within a deadline; it stops counting as being read when it
/// ends or is dropped.
struct Tracked {
    inner: Incoming,
    deadline: Instant,
    counts: Option<Arc<Counts>>,
}

impl Tracked {
    fn done(&mut self) {
        if let Some(c) = self.counts.take() {
            c.reading.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.done();
    }
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.counts.is_some() && Instant::now() > self.deadline {
            self.done();
            return Poll::Ready(Some(Err("the request body did not arrive in time".into())));
        }
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.done(),
            _ if self.inner.is_end_stream() => self.done(),
            _ => {}
        }
        r.map(|o| o.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A stream that fails with `TimedOut` when it has been idle for too long while no request is
/// being handled.
struct Watched<S> {
    io: S,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    counts: Arc<Counts>,
}

impl<S> Watched<S> {
    fn new(io: S, idle: Duration, counts: Arc<Counts>) -> Self {
        Watched { io, idle, timer: Box::pin(tokio::time::sleep(idle)), counts }
    }

    fn touched(&mut self) {
        let at = Instant::now() + self.idle;
        self.timer.as_mut().reset(at);
    }

    /// Called when the stream is not ready: Pending, or the idle error once the timer fires.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        while self.timer.as_mut().poll(cx).is_ready() {
            if self.counts.idle_allowed() {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long")));
            }
            self.touched();
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.touched();
                Poll::Ready(r)
            }
            Poll::Pending => this.waiting(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.touched();
                Poll::Ready(r)
            }
            Poll::Pending => this.waiting(cx),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.waiting(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
