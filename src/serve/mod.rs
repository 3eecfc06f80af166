//! `wgpt serve`: an OpenAI-compatible HTTP server (axum on tokio).
//!
//! - `POST /v1/chat/completions`: harmony chat with streaming (SSE) or a whole answer; the
//!   analysis channel comes back as `reasoning_content`, function tools as `tool_calls`.
//! - `POST /v1/completions`: plain continuation of a prompt.
//! - `GET /v1/models`, `GET /health`.
//!
//! The model is loaded once; `parallel` slots, each a session (KV cache) of that model, serve
//! requests concurrently. One scheduler thread owns all GPU work and gives every active request
//! one token per round ([`scheduler`]); the async runtime only parses, queues and streams.
//! Requests beyond the slots wait in a queue; a client that disconnects frees its slot.

pub mod conn;
pub mod guard;
pub mod openai;
pub mod routes;
pub mod scheduler;
pub mod stop;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::engine::Engine;
use crate::error::{Error, Result};

/// How to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub host: String,
    /// 0 picks a free port (printed at start).
    pub port: u16,
    /// The model name clients send as `model` (and `GET /v1/models` lists).
    pub model_id: String,
    /// Requests generated at the same time, each in its own KV cache.
    pub parallel: usize,
    /// KV-cache context of each slot, in tokens.
    pub ctx: u32,
    /// Prompt tokens per prefill pass.
    pub chunk: u32,
    /// Requests that may wait when every slot is busy; more get 503.
    pub max_queue: usize,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest time a request may take, waiting in the queue included (none by default).
    pub timeout: Option<std::time::Duration>,
    /// Browser origins allowed besides loopback ones and the server's own.
    pub allowed_origins: Vec<String>,
    /// Connection limits: how many at once, header, body and idle timeouts.
    pub limits: conn::ConnLimits,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            host: "127.0.0.1".into(),
            port: 8080,
            model_id: crate::hub::DEFAULT_MODEL.into(),
            parallel: 4,
            ctx: crate::models::DEFAULT_CTX,
            chunk: crate::models::DEFAULT_CHUNK,
            max_queue: 256,
            max_body_bytes: 4 << 20,
            timeout: None,
            allowed_origins: Vec::new(),
            limits: conn::ConnLimits::default(),
        }
    }
}

/// Serves `engine` until Ctrl-C (or SIGTERM). `on_listen` is told the bound address.
pub fn serve(engine: Engine, opts: &ServeOptions, on_listen: impl FnOnce(SocketAddr)) -> Result<()> {
    let scheduler = scheduler::Scheduler::start(engine.clone(), opts.parallel, opts.ctx, opts.chunk, opts.max_queue)?;
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let state = Arc::new(routes::AppState {
        engine,
        model_id: opts.model_id.clone(),
        ctx: opts.ctx,
        scheduler,
        created,
        timeout: opts.timeout,
    });
    let origins = Arc::new(guard::Origins { allowed: opts.allowed_origins.clone() });
    let app = routes::router(state, opts.max_body_bytes, origins);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Startup(format!("the async runtime: {e}")))?;
    runtime.block_on(async move {
        let addr = format!("{}:{}", opts.host, opts.port);
        let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| Error::io(&addr, e))?;
        let local = listener.local_addr().map_err(|e| Error::io(&addr, e))?;
        on_listen(local);
        conn::serve(listener, app, opts.limits.clone(), shutdown()).await;
        Ok(())
    })
}

async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
