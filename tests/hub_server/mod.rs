//! A fake Hugging Face hub on 127.0.0.1 for download tests.
//!
//! Serves one repo: the model-info API (`/api/models/{repo}/revision/{rev}`), file resolution
//! (`/{repo}/resolve/{rev}/{file}`, with `x-repo-commit` and `etag` headers) and, for LFS files,
//! a 302 to a separate "CDN" listener that serves the bytes with `x-linked-etag` = sha256 and
//! `x-linked-size` on the redirect, as the real hub does. Range requests are honoured.
//! Failures can be switched on: cut a transfer, corrupt bytes, ignore ranges, gate the repo,
//! hide a file.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

pub struct FixtureRepo {
    pub id: String,
    pub commit: String,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl FixtureRepo {
    /// LFS files are served through the CDN with their sha256 as etag.
    pub fn is_lfs(name: &str) -> bool {
        name.ends_with(".safetensors") || name.ends_with(".bin") || name == "tokenizer.json"
    }
}

/// Switchable misbehaviour.
#[derive(Default, Clone)]
pub struct Behavior {
    /// The next GET of this file closes the connection after this many body bytes.
    pub cut_after: Option<(String, usize)>,
    /// Serve this file with one byte changed (the etag stays the real sha256).
    pub corrupt: Option<String>,
    /// Answer Range requests with the whole file (200).
    pub ignore_range: bool,
    /// Resolve requests need `Authorization: Bearer {token}`.
    pub gated_token: Option<String>,
    /// Listed in the API, but resolve answers 404.
    pub hidden: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Seen {
    /// "hub" or "cdn".
    pub host: &'static str,
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub auth: Option<String>,
}

struct State {
    repo: FixtureRepo,
    behavior: Behavior,
    seen: Vec<Seen>,
    hub: String,
    cdn: String,
}

pub struct HubServer {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    hub_addr: String,
    cdn_addr: String,
    threads: Vec<JoinHandle<()>>,
}

impl HubServer {
    pub fn start(repo: FixtureRepo) -> HubServer {
        let hub = TcpListener::bind("127.0.0.1:0").expect("bind hub");
        let cdn = TcpListener::bind("127.0.0.1:0").expect("bind cdn");
        let hub_addr = hub.local_addr().unwrap().to_string();
        let cdn_addr = cdn.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State {
            repo,
            behavior: Behavior::default(),
            seen: Vec::new(),
            hub: format!("http://{hub_addr}"),
            cdn: format!("http://{cdn_addr}"),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = [(hub, "hub"), (cdn, "cdn")]
            .into_iter()
            .map(|(listener, host)| {
                let state = state.clone();
                let stop = stop.clone();
                std::thread::spawn(move || accept_loop(listener, host, state, stop))
            })
            .collect();
        HubServer { state, stop, hub_addr, cdn_addr, threads }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.hub_addr)
    }

    pub fn set(&self, f: impl FnOnce(&mut Behavior)) {
        f(&mut self.state.lock().unwrap().behavior);
    }

    /// Changes the repo in place, e.g. to publish a new commit.
    pub fn edit_repo(&self, f: impl FnOnce(&mut FixtureRepo)) {
        f(&mut self.state.lock().unwrap().repo);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn clear_seen(&self) {
        self.state.lock().unwrap().seen.clear();
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accepts.
        let _ = TcpStream::connect(&self.hub_addr);
        let _ = TcpStream::connect(&self.cdn_addr);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, host: &'static str, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let state = state.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, host, &state);
        });
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Close the connection after this many body bytes.
    cut: Option<usize>,
}

impl Reply {
    fn new(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: Vec::new(), cut: None }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::new(status)
            .header("X-Error-Code", code)
            .header("X-Error-Message", message)
            .json(format!("{{\"error\":\"{message}\"}}"))
    }
    fn json(mut self, body: String) -> Reply {
        self.headers.push(("Content-Type".into(), "application/json".into()));
        self.body = body.into_bytes();
        self
    }
}

fn handle(stream: TcpStream, host: &'static str, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    let range = headers.get("range").cloned();
    let auth = headers.get("authorization").cloned();

    let reply = {
        let mut st = state.lock().unwrap();
        st.seen.push(Seen {
            host,
            method: method.clone(),
            path: path.clone(),
            range: range.clone(),
            auth: auth.clone(),
        });
        match host {
            "hub" => route_hub(&mut st, &method, &path, range.as_deref(), auth.as_deref()),
            _ => route_cdn(&mut st, &method, &path, range.as_deref()),
        }
    };
    write_reply(stream, &method, reply)
}

fn write_reply(mut stream: TcpStream, method: &str, reply: Reply) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    let has_length = reply.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_length {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        let n = reply.cut.unwrap_or(reply.body.len()).min(reply.body.len());
        stream.write_all(&reply.body[..n])?;
    }
    stream.flush()?;
    stream.shutdown(Shutdown::Write)?;
    // Drain what the client may still send so the close is orderly.
    let mut sink = [0u8; 256];
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(200)));
    while let Ok(n) = std::io::Read::read(&mut stream, &mut sink) {
        if n == 0 {
            break;
        }
    }
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Other",
    }
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A stand-in for the git blob id of a non-LFS file.
fn blob_id(data: &[u8]) -> String {
    sha256_hex(data)[..40].to_string()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route_hub(st: &mut State, method: &str, path: &str, range: Option<&str>, auth: Option<&str>) -> Reply {
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let Some((repo, rev)) = rest.split_once("/revision/") else {
            return Reply::error(404, "RepoNotFound", "Repository not found");
        };
        if repo != st.repo.id {
            return Reply::error(404, "RepoNotFound", "Repository not found");
        }
        let rev = decode(rev);
        if rev != "main" && rev != st.repo.commit {
            return Reply::error(404, "RevisionNotFound", "Invalid rev id");
        }
        let siblings: Vec<serde_json::Value> = st
            .repo
            .files
            .iter()
            .map(|(name, data)| {
                let mut s = serde_json::json!({
                    "rfilename": name,
                    "size": data.len(),
                    "blobId": blob_id(data),
                });
                if FixtureRepo::is_lfs(name) {
                    s["lfs"] = serde_json::json!({
                        "sha256": sha256_hex(data), "size": data.len(), "pointerSize": 134
                    });
                }
                s
            })
            .collect();
        let body = serde_json::json!({
            "id": st.repo.id, "modelId": st.repo.id, "sha": st.repo.commit, "siblings": siblings,
        });
        return Reply::new(200).json(body.to_string());
    }
    let Some((repo, rest)) = path.trim_start_matches('/').split_once("/resolve/") else {
        return Reply::error(404, "RepoNotFound", "Repository not found");
    };
    if repo != st.repo.id {
        return Reply::error(404, "RepoNotFound", "Repository not found");
    }
    let Some((rev, file)) = rest.split_once('/') else {
        return Reply::error(404, "EntryNotFound", "Entry not found");
    };
    let (rev, file) = (decode(rev), decode(file));
    if rev != "main" && rev != st.repo.commit {
        return Reply::error(404, "RevisionNotFound", "Invalid rev id");
    }
    if let Some(token) = &st.behavior.gated_token {
        if auth != Some(format!("Bearer {token}").as_str()) {
            let msg = format!(
                "Access to model {} is restricted. You must have access to it and be authenticated to access it.",
                st.repo.id
            );
            return Reply::error(401, "GatedRepo", &msg);
        }
    }
    if st.behavior.hidden.as_deref() == Some(file.as_str()) {
        return Reply::error(404, "EntryNotFound", "Entry not found");
    }
    let Some(data) = st.repo.files.get(&file) else {
        return Reply::error(404, "EntryNotFound", "Entry not found");
    };
    let commit = st.repo.commit.clone();
    if FixtureRepo::is_lfs(&file) {
        let sha = sha256_hex(data);
        return Reply::new(302)
            .header("Location", format!("{}/cdn/{sha}", st.cdn))
            .header("X-Repo-Commit", commit)
            .header("X-Linked-Etag", format!("\"{sha}\""))
            .header("X-Linked-Size", data.len().to_string())
            .header("ETag", format!("\"{}\"", blob_id(data)));
    }
    let etag = blob_id(data);
    serve_bytes(st, method, &file, range).header("X-Repo-Commit", commit).header("ETag", format!("\"{etag}\""))
}

fn route_cdn(st: &mut State, method: &str, path: &str, range: Option<&str>) -> Reply {
    let sha = path.trim_start_matches("/cdn/");
    let file = st.repo.files.iter().find(|(_, d)| sha256_hex(d) == sha).map(|(n, _)| n.clone());
    match file {
        Some(file) => serve_bytes(st, method, &file, range),
        None => Reply::new(404),
    }
}

fn serve_bytes(st: &mut State, method: &str, file: &str, range: Option<&str>) -> Reply {
    let mut data = st.repo.files[file].clone();
    if st.behavior.corrupt.as_deref() == Some(file) {
        let mid = data.len() / 2;
        data[mid] ^= 0x5a;
    }
    let len = data.len();
    let start = range
        .filter(|_| !st.behavior.ignore_range)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse::<usize>().ok());
    let end = range
        .filter(|_| !st.behavior.ignore_range)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split('-').nth(1))
        .and_then(|s| s.parse::<usize>().ok())
        .map(|e| (e + 1).min(len))
        .unwrap_or(len);
    let mut reply = match start {
        Some(s) if s >= len => return Reply::new(416).header("Content-Range", format!("bytes */{len}")),
        Some(s) => {
            let mut r = Reply::new(206).header("Content-Range", format!("bytes {s}-{}/{len}", end - 1));
            r.body = data[s..end].to_vec();
            r
        }
        None => {
            let mut r = Reply::new(200);
            r.body = data;
            r
        }
    };
    reply = reply.header("Accept-Ranges", "bytes");
    if method == "GET" {
        if let Some((name, n)) = st.behavior.cut_after.clone() {
            if name == file {
                reply.cut = Some(n);
                st.behavior.cut_after = None;
            }
        }
    }
    reply
}
