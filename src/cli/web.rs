//! `wgpt web`: serves the browser page (`web/`, with the wasm package built into `web/pkg`) and a
//! local model (a directory, or one `.gguf` file) on 127.0.0.1, so the model can be tried in any
//! browser with WebGPU. The page loads a directory from `/model/` and a GGUF file from
//! `/model/NAME.gguf` (the printed link fills that in); every request is logged on stderr.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};

/// Where the page lives: `--web-dir`, else `web/` of the source tree this binary was built from.
fn web_dir(explicit: Option<&Path>) -> PathBuf {
    explicit.map(Path::to_path_buf).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("web"))
}

async fn log_request(req: Request, next: Next) -> Response {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let range = req.headers().get("range").and_then(|v| v.to_str().ok()).map(|r| format!(" [{r}]")).unwrap_or_default();
    let t0 = std::time::Instant::now();
    let resp = next.run(req).await;
    let len = resp.headers().get("content-length").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
    eprintln!("{method} {uri}{range} -> {} {len} bytes ({:.0} ms)", resp.status().as_u16(), t0.elapsed().as_secs_f64() * 1e3);
    resp
}

/// The URL path a GGUF file is served at: its own name when that needs no escaping in a URL.
pub fn gguf_path(model: &Path) -> String {
    let name = model.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    format!("/model/{}", if plain { name } else { "model.gguf" })
}

/// The router: the page at `/`, the model directory at `/model/` (a GGUF file at [`gguf_path`]).
pub fn router(web: &Path, model: &Path) -> Router {
    let r = if is_gguf_file(model) {
        Router::new().route_service(&gguf_path(model), ServeFile::new(model))
    } else {
        Router::new().nest_service("/model", ServeDir::new(model))
    };
    r.fallback_service(ServeDir::new(web).append_index_html_on_directories(true)).layer(middleware::from_fn(log_request))
}

fn is_gguf_file(model: &Path) -> bool {
    wgpt::loader::is_gguf(model) && model.is_file()
}

/// Checks the directories and serves until interrupted.
pub fn serve(model: &Path, port: u16, web: Option<&Path>) -> Result<()> {
    let web = web_dir(web);
    if !web.join("index.html").is_file() {
        bail!("{}: no index.html (point --web-dir at the repository's web/ folder)", web.display());
    }
    if !web.join("pkg/wgpt.js").is_file() || !web.join("pkg/wgpt_bg.wasm").is_file() {
        bail!(
            "{}: the wasm package is not built; build it with `web/build.sh` (needs `rustup target add wasm32-unknown-unknown` and `cargo install wasm-bindgen-cli --version <the wasm-bindgen version in Cargo.lock>`)",
            web.join("pkg").display()
        );
    }
    let gguf = is_gguf_file(model);
    if !gguf && !model.join("config.json").is_file() {
        bail!("{}: not a model directory (no config.json) nor a .gguf file", model.display());
    }
    // The page takes the model's URL from `?model=`; a directory is its default `model/`.
    let query = if gguf { format!("?model={}", gguf_path(model).trim_start_matches('/')) } else { String::new() };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
        let addr = listener.local_addr()?;
        eprintln!("serving the page from {} and the model from {}", web.display(), model.display());
        eprintln!("open http://{addr}/{query} in a browser with WebGPU (Chrome or Edge 113+); Ctrl-C stops");
        axum::serve(listener, router(&web, model)).await.context("serving")
    })
}
