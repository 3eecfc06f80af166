//! `wgpt web`: serves the page and a model directory on 127.0.0.1 with the right MIME types and
//! HTTP Range, logs requests, and says how to build the wasm package when it is missing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Server {
    child: Child,
    addr: String,
    log: BufReader<std::process::ChildStderr>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(web: &Path, model: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgpt"))
        .args(["web", "--port", "0", "--model"])
        .arg(model)
        .arg("--web-dir")
        .arg(web)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    for _ in 0..5 {
        let mut line = String::new();
        log.read_line(&mut line).unwrap();
        if let Some(rest) = line.split("http://").nth(1) {
            addr = Some(rest.split('/').next().unwrap().to_string());
            break;
        }
    }
    Server { child, addr: addr.expect("the server prints its address"), log }
}

/// A raw HTTP/1.1 GET: (status line, headers lowercased, body).
fn get(addr: &str, path: &str, range: Option<&str>) -> (String, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let range = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{range}Connection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = head.lines().next().unwrap().to_string();
    (status, head, raw[split + 4..].to_vec())
}

fn page_dir(with_pkg: bool) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("index.html"), "<!doctype html><title>wgpt</title>").unwrap();
    if with_pkg {
        std::fs::create_dir(t.path().join("pkg")).unwrap();
        std::fs::write(t.path().join("pkg/wgpt.js"), "export default function init() {}").unwrap();
        std::fs::write(t.path().join("pkg/wgpt_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    }
    t
}

#[test]
fn serves_page_and_model_with_range_and_mime_types() {
    let web = page_dir(true);
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
    let mut srv = start(web.path(), &model);

    let (status, head, body) = get(&srv.addr, "/", None);
    assert!(status.contains("200"), "{status}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("<title>wgpt</title>"));

    let (status, head, body) = get(&srv.addr, "/pkg/wgpt_bg.wasm", None);
    assert!(status.contains("200"), "{status}");
    assert!(head.contains("content-type: application/wasm"), "{head}");
    assert_eq!(body, b"\0asm\x01\0\0\0");
    let (_, head, _) = get(&srv.addr, "/pkg/wgpt.js", None);
    assert!(head.contains("content-type: text/javascript"), "{head}");

    let file = std::fs::read(model.join("model.safetensors")).unwrap();
    let (status, head, body) = get(&srv.addr, "/model/model.safetensors", Some("bytes=100-1099"));
    assert!(status.contains("206"), "{status}");
    assert!(head.contains(&format!("content-range: bytes 100-1099/{}", file.len())), "{head}");
    assert_eq!(body, &file[100..1100]);
    let (status, _, body) = get(&srv.addr, "/model/config.json", None);
    assert!(status.contains("200"));
    assert_eq!(body, std::fs::read(model.join("config.json")).unwrap());
    let (status, _, _) = get(&srv.addr, "/model/tokenizer.json", None);
    assert!(status.contains("404"), "{status}");

    // Every request is logged, with its range.
    let mut logged = String::new();
    while !logged.contains("/model/tokenizer.json") {
        let mut line = String::new();
        if srv.log.read_line(&mut line).unwrap() == 0 {
            break;
        }
        logged.push_str(&line);
    }
    assert!(logged.contains("GET /model/model.safetensors [bytes=100-1099] -> 206"), "{logged}");
    assert!(logged.contains("GET /model/tokenizer.json -> 404"), "{logged}");
}

#[test]
fn missing_wasm_package_says_how_to_build_it() {
    let web = page_dir(false);
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
    let out = Command::new(env!("CARGO_BIN_EXE_wgpt"))
        .args(["web", "--port", "0", "--model"])
        .arg(&model)
        .arg("--web-dir")
        .arg(web.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("web/build.sh") && err.contains("wasm-bindgen-cli"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn model_directory_without_config_is_refused() {
    let web = page_dir(true);
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wgpt"))
        .args(["web", "--port", "0", "--model"])
        .arg(empty.path())
        .arg("--web-dir")
        .arg(web.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.json"), "{err}");
}
