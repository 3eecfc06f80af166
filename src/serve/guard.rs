//! Checks every request passes before a handler sees it: browser origins (a web page on another
//! site must not drive a server on the user's machine), CORS preflights of the allowed ones, and
//! `Content-Type: application/json` on POST bodies.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::openai::ApiError;

/// Which browser origins may call the server.
#[derive(Clone, Debug, Default)]
pub struct Origins {
    /// Origins allowed besides loopback ones and the server's own (`*` allows every origin).
    pub allowed: Vec<String>,
}

impl Origins {
    /// Whether a request with this `Origin` (and `Host`) may proceed.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/');
        if self.allowed.iter().any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin)) {
            return true;
        }
        let Some((scheme, authority)) = origin.split_once("://") else { return false };
        if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") || authority.is_empty() {
            return false;
        }
        if host.is_some_and(|h| h.eq_ignore_ascii_case(authority)) {
            return true;
        }
        is_loopback(authority)
    }
}

/// Whether `host[:port]` names this machine's loopback interface.
fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        // [v6]:port
        Some(rest) => match rest.split_once(']') {
            Some((h, tail)) if tail.is_empty() || tail.starts_with(':') => h,
            _ => return false,
        },
        None => match authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return false,
            None => authority,
        },
    };
    let host = host.to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The middleware: refuses foreign origins (403), answers preflights of allowed ones, refuses
/// POST bodies that are not JSON (415), and marks responses to allowed origins for CORS.
pub async fn guard(State(origins): State<Arc<Origins>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let origin = headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or("\u{0}").to_string());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(o) = &origin {
        if !origins.allows(o, host) {
            return ApiError::invalid(format!(
                "requests from the browser origin {o:?} are not allowed (start the server with --allowed-origins to allow it)"
            ))
            .with_status(StatusCode::FORBIDDEN)
            .with_code("origin_not_allowed")
            .into_response();
        }
    }
    if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(header::ALLOW, HeaderValue::from_static("GET, POST, OPTIONS"));
        if let Some(o) = &origin {
            cors(h, o);
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
            let asked = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                asked.unwrap_or_else(|| HeaderValue::from_static("authorization, content-type")),
            );
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        return r;
    }
    if req.method() == Method::POST && !is_json(req.headers()) {
        let got = req.headers().get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let got = got.map(|g| format!("{g:?}")).unwrap_or_else(|| "none".into());
        return ApiError::invalid(format!("the request body must be sent with Content-Type: application/json (got {got})"))
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .with_code("unsupported_media_type")
            .into_response();
    }
    let mut r = next.run(req).await;
    if let Some(o) = &origin {
        cors(r.headers_mut(), o);
    }
    r
}

fn cors(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

fn is_json(h: &HeaderMap) -> bool {
    let Some(v) = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let mime = v.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_own_origins_pass_others_need_allowing() {
        let o = Origins::default();
        for ok in ["http://localhost:3000", "http://127.0.0.1", "https://[::1]:8080", "http://app.localhost", "http://127.9.0.1:1"] {
            assert!(o.allows(ok, None), "{ok}");
        }
        for bad in ["https://evil.example", "null", "http://localhost.evil.example", "file://", "http://127.0.0.1.evil:80", "ftp://localhost"] {
            assert!(!o.allows(bad, None), "{bad}");
        }
        assert!(o.allows("http://myhost:8080", Some("myhost:8080")));
        assert!(!o.allows("http://myhost:8081", Some("myhost:8080")));
        let some = Origins { allowed: vec!["https://app.example/".into()] };
        assert!(some.allows("https://app.example", None) && !some.allows("https://other.example", None));
        assert!(Origins { allowed: vec!["*".into()] }.allows("https://any.example", None));
    }
}
