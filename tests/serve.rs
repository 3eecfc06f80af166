//! `wgpt serve` over HTTP on loopback, against the scripted chat model (tests/common/chat_model.rs):
//! chat (whole and streamed, reasoning, tool calls), completions, stop sequences, limits,
//! OpenAI-style errors, and a disconnect that frees its slot.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::chat_model::{write_chat_model, ANSWER, HUM, THINK, TOOL, TOOL_ARGS};
use serde_json::{json, Value};

const MODEL: &str = "scripted";

/// A `wgpt serve` child process on a free loopback port, killed on drop.
struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        write_chat_model(&model);
        Self::start_at(&model, extra, dir)
    }

    fn start_at(model: &Path, extra: &[&str], dir: tempfile::TempDir) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wgpt"))
            .args(["serve", model.to_str().unwrap(), "--port", "0", "--model-name", MODEL, "--ctx", "1024", "--chunk", "32"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = String::new();
        let base = loop {
            let line = lines.next().unwrap_or_else(|| panic!("server exited: {seen}")).unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if let Some(rest) = line.split(" on http://").nth(1) {
                break format!("http://{}", rest.split('/').next().unwrap());
            }
        };
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base, _dir: dir }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(120))).build().into()
    }

    fn post(&self, path: &str, body: &str) -> (u16, String) {
        let mut r = Self::agent()
            .post(&format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body)
            .unwrap();
        (r.status().as_u16(), r.body_mut().with_config().limit(64 << 20).read_to_string().unwrap())
    }

    fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, text) = self.post(path, &body.to_string());
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let mut r = Self::agent().get(&format!("{}{path}", self.base)).call().unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON payloads of an SSE body, up to `[DONE]` (which must be last).
fn sse_events(body: &str) -> Vec<Value> {
    let data: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{body}");
    data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect()
}

fn chat(messages: Value) -> Value {
    json!({"model": MODEL, "messages": messages})
}

fn assert_error(resp: (u16, Value), status: u16, param: Option<&str>) {
    assert_eq!(resp.0, status, "{}", resp.1);
    let e = &resp.1["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", resp.1);
    assert!(e["type"].is_string(), "{}", resp.1);
    assert!(e.get("code").is_some() && e.get("param").is_some(), "{}", resp.1);
    if let Some(p) = param {
        assert_eq!(e["param"], p, "{}", resp.1);
    }
}

#[test]
fn openai_api_over_http() {
    let s = Server::start(&["--parallel", "2", "--max-body-bytes", "65536"]);
    let user = json!([{"role": "user", "content": "Hi there"}]);

    // Discovery.
    let (code, models) = s.get("/v1/models");
    assert_eq!(code, 200);
    assert_eq!(models["data"][0]["id"], MODEL);
    let (code, health) = s.get("/health");
    assert_eq!((code, health["status"].as_str(), health["slots"].as_u64()), (200, Some("ok"), Some(2)));

    // A whole answer: reasoning apart from the content, usage counted.
    let (code, r) = s.post_json("/v1/chat/completions", chat(user.clone()));
    assert_eq!(code, 200, "{r}");
    let choice = &r["choices"][0];
    assert_eq!(choice["message"]["content"], ANSWER, "{r}");
    assert_eq!(choice["message"]["reasoning_content"], THINK, "{r}");
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(r["object"], "chat.completion");
    let u = &r["usage"];
    let (p, c) = (u["prompt_tokens"].as_u64().unwrap(), u["completion_tokens"].as_u64().unwrap());
    assert!(p > 20, "{u}");
    // <|channel|>analysis<|message|> THINK(9) <|end|><|start|>assistant<|channel|>final<|message|> ANSWER(5) <|return|>
    assert_eq!(c, 3 + 9 + 6 + 5 + 1, "{u}");
    assert_eq!(u["total_tokens"].as_u64(), Some(p + c));

    // The same as a stream, with usage at the end.
    let mut req = chat(user.clone());
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    req["reasoning_effort"] = json!("high");
    let (code, body) = s.post("/v1/chat/completions", &req.to_string());
    assert_eq!(code, 200, "{body}");
    let events = sse_events(&body);
    let text = |key: &str| -> String {
        events.iter().filter_map(|e| e["choices"][0]["delta"][key].as_str()).collect()
    };
    assert_eq!(text("content"), ANSWER);
    assert_eq!(text("reasoning_content"), THINK);
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(events.iter().all(|e| e["id"] == events[0]["id"] && e["object"] == "chat.completion.chunk"));
    let finish: Vec<&Value> = events.iter().map(|e| &e["choices"][0]["finish_reason"]).filter(|f| !f.is_null()).collect();
    assert_eq!(finish, [&json!("stop")]);
    let last = events.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"].as_u64(), Some(c));

    // A tool call, then its result, then the answer.
    let tools = json!([{"type": "function", "function": {"name": TOOL, "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let ask = json!([{"role": "user", "content": "What is the weather in Paris?"}]);
    let (code, r) = s.post_json("/v1/chat/completions", json!({"model": MODEL, "messages": ask, "tools": tools}));
    assert_eq!(code, 200, "{r}");
    let choice = &r["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{r}");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], TOOL);
    assert_eq!(call["function"]["arguments"], TOOL_ARGS);
    assert!(call["id"].as_str().unwrap().starts_with("call"));
    let mut history = ask.as_array().unwrap().clone();
    history.push(choice["message"].clone());
    history.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "{\"sky\": \"clear\", \"celsius\": 21}"}));
    let (code, r) = s.post_json("/v1/chat/completions", json!({"model": MODEL, "messages": history, "tools": tools}));
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["choices"][0]["message"]["content"], ANSWER, "{r}");
    assert_eq!(r["choices"][0]["finish_reason"], "stop");
    // Streamed, the call arrives as one tool_calls delta.
    let (code, body) = s.post("/v1/chat/completions", &json!({"model": MODEL, "messages": ask, "tools": tools, "stream": true}).to_string());
    assert_eq!(code, 200);
    let events = sse_events(&body);
    let calls: Vec<&Value> = events.iter().filter_map(|e| e["choices"][0]["delta"]["tool_calls"].as_array()).flatten().collect();
    assert_eq!(calls.len(), 1, "{body}");
    assert_eq!(calls[0]["function"]["arguments"], TOOL_ARGS);
    assert!(events.iter().any(|e| e["choices"][0]["finish_reason"] == "tool_calls"));

    // Limits: max_tokens (and max_completion_tokens) cut the answer; stop sequences end it.
    for key in ["max_tokens", "max_completion_tokens"] {
        let mut req = chat(user.clone());
        req[key] = json!(5);
        let (code, r) = s.post_json("/v1/chat/completions", req);
        assert_eq!(code, 200);
        assert_eq!(r["choices"][0]["finish_reason"], "length", "{r}");
        assert_eq!(r["usage"]["completion_tokens"], 5);
        assert!(THINK.starts_with(r["choices"][0]["message"]["reasoning_content"].as_str().unwrap()));
    }
    let mut req = chat(user.clone());
    req["stop"] = json!(["wg", "never"]);
    req["temperature"] = json!(0.7);
    req["top_p"] = json!(0.9);
    req["seed"] = json!(42);
    let (code, r) = s.post_json("/v1/chat/completions", req);
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["choices"][0]["message"]["content"], "Hello from ", "{r}");
    assert_eq!(r["choices"][0]["finish_reason"], "stop");

    // Completions: the model continues its script from the prompt's last token.
    let (code, r) = s.post_json("/v1/completions", json!({"model": MODEL, "prompt": "Hello from", "max_tokens": 10}));
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["choices"][0]["text"], " wgpt!");
    assert_eq!(r["choices"][0]["finish_reason"], "stop");
    assert_eq!(r["object"], "text_completion");
    let (code, r) = s.post_json("/v1/completions", json!({"model": MODEL, "prompt": ["Hello from"], "max_tokens": 2}));
    assert_eq!(code, 200, "{r}");
    assert_eq!((r["choices"][0]["text"].as_str(), r["choices"][0]["finish_reason"].as_str()), (Some(" wgpt"), Some("length")));
    let (code, body) = s.post("/v1/completions", &json!({"model": MODEL, "prompt": "Hello", "stream": true}).to_string());
    assert_eq!(code, 200);
    let text: String = sse_events(&body).iter().filter_map(|e| e["choices"][0]["text"].as_str()).collect();
    assert_eq!(text, " from wgpt!");

    // Bad requests: OpenAI-style errors, and the server keeps serving.
    let (code, body) = s.post("/v1/chat/completions", "{\"model\": ");
    assert_error((code, serde_json::from_str(&body).unwrap()), 400, None);
    assert_error(s.post_json("/v1/chat/completions", json!({"model": "gpt-4o", "messages": user})), 404, Some("model"));
    assert_error(s.post_json("/v1/chat/completions", json!({"messages": user})), 400, Some("model"));
    for (key, value) in [("temperature", json!(2.5)), ("top_p", json!(1.5)), ("max_tokens", json!(0)), ("n", json!(3)),
        ("presence_penalty", json!(-3)), ("reasoning_effort", json!("extreme")), ("stop", json!(["a", "b", "c", "d", "e"])),
        ("temperature", json!("hot")), ("seed", json!(1.5))]
    {
        let mut req = chat(user.clone());
        req[key] = value;
        assert_error(s.post_json("/v1/chat/completions", req), 400, Some(key));
    }
    assert_error(s.post_json("/v1/chat/completions", chat(json!([{"role": "wizard", "content": "x"}]))), 400, Some("messages"));
    assert_error(s.post_json("/v1/chat/completions", chat(json!("not a list"))), 400, None);
    // A bad tool is reported against `tools`, whatever its message says.
    let bad_tool = json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]});
    assert_error(s.post_json("/v1/chat/completions", bad_tool), 400, Some("tools"));
    let long = "lorem ipsum ".repeat(1200);
    assert_error(s.post_json("/v1/chat/completions", chat(json!([{"role": "user", "content": long}]))), 400, None);
    let (_, r) = s.post_json("/v1/chat/completions", chat(json!([{"role": "user", "content": long}])));
    assert_eq!(r["error"]["code"], "context_length_exceeded");
    let huge = "x".repeat(100_000);
    assert_error(s.post_json("/v1/chat/completions", chat(json!([{"role": "user", "content": huge}]))), 413, None);
    assert_error(s.post_json("/v1/completions", json!({"model": MODEL, "prompt": [1, 2, 999999]})), 400, Some("prompt"));
    assert_error(s.post_json("/v1/nope", json!({})), 404, None);
    assert_error(s.get("/v1/chat/completions"), 405, None);
    let (code, r) = s.post_json("/v1/chat/completions", chat(user.clone()));
    assert_eq!((code, r["choices"][0]["message"]["content"].as_str()), (200, Some(ANSWER)), "still serving");
}

/// A streaming client that goes away mid-answer frees its slot for the next request.
#[test]
fn a_disconnect_frees_the_slot() {
    let s = Server::start(&["--parallel", "1", "--queue", "0"]);
    // The model hums " la" until max_tokens.
    let req = json!({"model": MODEL, "prompt": format!("tra{HUM}"), "max_tokens": 900, "stream": true});
    let mut stream = std::net::TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
    let body = req.to_string();
    use std::io::Write;
    write!(stream, "POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.windows(6).filter(|w| w == b"data: ").count() < 5 {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let (_, h) = s.get("/health");
    assert_eq!(h["slots_busy"], 1, "{h}");
    // No queue: a second request is refused while the only slot is busy.
    let busy = s.post_json("/v1/chat/completions", chat(json!([{"role": "user", "content": "Hi"}])));
    assert_eq!(busy.1["error"]["code"], "server_busy");
    assert_error(busy, 503, None);
    drop(stream);
    let t0 = Instant::now();
    loop {
        let (_, h) = s.get("/health");
        if h["slots_busy"] == 0 && h["cancelled"] == 1 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "slot not freed: {h}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, r) = s.post_json("/v1/chat/completions", chat(json!([{"role": "user", "content": "Hi"}])));
    assert_eq!((code, r["choices"][0]["message"]["content"].as_str()), (200, Some(ANSWER)));
    assert!(t0.elapsed() < Duration::from_secs(60));
}

/// Writes the scripted chat model for out-of-process clients (the Python openai tests and the
/// npc example in CI): `WGPT_WRITE_MODEL=DIR cargo test --test serve -- --ignored write_model`.
#[test]
#[ignore]
fn write_model() {
    let dir = std::env::var("WGPT_WRITE_MODEL").expect("set WGPT_WRITE_MODEL to a directory");
    write_chat_model(Path::new(&dir));
}

/// Sends `request` as is on a new connection and reads until the server closes it (or `wait`
/// passes); returns what came back and whether the server closed the connection.
fn raw(base: &str, request: &str, wait: Duration) -> (String, bool) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let (mut got, mut buf, t0) = (Vec::new(), [0u8; 4096], Instant::now());
    while t0.elapsed() < wait {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into(), true),
        }
    }
    (String::from_utf8_lossy(&got).into(), false)
}

fn post_raw(base: &str, path: &str, headers: &str, body: &str) -> String {
    let req = format!("POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{headers}content-length: {}\r\n\r\n{body}", body.len());
    raw(base, &req, Duration::from_secs(60)).0
}

fn status_of(response: &str) -> u16 {
    response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status line: {response:?}"))
}

/// The header `name` of a raw response (lowercase name).
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
}

#[test]
fn content_type_and_browser_origins_are_checked() {
    let s = Server::start(&["--allowed-origins", "https://app.example, https://other.example"]);
    let body = chat(json!([{"role": "user", "content": "Hi"}])).to_string();
    let json = "content-type: application/json\r\n";
    // POST bodies must say they are JSON.
    for ct in ["", "content-type: text/plain\r\n", "content-type: application/x-www-form-urlencoded\r\n"] {
        let r = post_raw(&s.base, "/v1/chat/completions", ct, &body);
        assert_eq!(status_of(&r), 415, "{r}");
        assert!(r.contains("application/json") && r.contains("unsupported_media_type"), "{r}");
    }
    let r = post_raw(&s.base, "/v1/chat/completions", "content-type: application/json; charset=utf-8\r\n", &body);
    assert_eq!(status_of(&r), 200, "{r}");
    // A page on another site may not drive the server; loopback pages, the server's own and
    // the allowed ones may, and get CORS headers.
    let r = post_raw(&s.base, "/v1/chat/completions", &format!("{json}origin: https://evil.example\r\n"), &body);
    assert_eq!(status_of(&r), 403, "{r}");
    assert!(r.contains("origin_not_allowed") && header(&r, "access-control-allow-origin").is_none(), "{r}");
    for origin in ["http://localhost:5173", "http://127.0.0.1:9", "https://app.example", "https://other.example"] {
        let r = post_raw(&s.base, "/v1/chat/completions", &format!("{json}origin: {origin}\r\n"), &body);
        assert_eq!(status_of(&r), 200, "{origin}: {r}");
        assert_eq!(header(&r, "access-control-allow-origin"), Some(origin), "{r}");
    }
    let own = format!("http://{}", s.base.trim_start_matches("http://"));
    let host = s.base.trim_start_matches("http://").to_string();
    let req = format!("GET /health HTTP/1.1\r\nhost: {host}\r\norigin: {own}\r\nconnection: close\r\n\r\n");
    assert_eq!(status_of(&raw(&s.base, &req, Duration::from_secs(30)).0), 200);
    // Preflights: answered for allowed origins, refused for others.
    let preflight = |origin: &str| {
        let req = format!(
            "OPTIONS /v1/chat/completions HTTP/1.1\r\nhost: x\r\norigin: {origin}\r\naccess-control-request-method: POST\r\naccess-control-request-headers: content-type, authorization\r\nconnection: close\r\n\r\n"
        );
        raw(&s.base, &req, Duration::from_secs(30)).0
    };
    let r = preflight("https://app.example");
    assert_eq!(status_of(&r), 204, "{r}");
    assert_eq!(header(&r, "access-control-allow-origin"), Some("https://app.example"), "{r}");
    assert!(header(&r, "access-control-allow-methods").is_some_and(|m| m.contains("POST")), "{r}");
    assert!(header(&r, "access-control-allow-headers").is_some_and(|m| m.contains("content-type")), "{r}");
    assert_eq!(status_of(&preflight("https://evil.example")), 403);
    // A conversation of system messages only asks for a user message.
    let (code, r) = s.post_json("/v1/chat/completions", chat(json!([{"role": "system", "content": "Be terse."}])));
    assert_eq!(code, 400, "{r}");
    assert!(r["error"]["message"].as_str().is_some_and(|m| m.contains("user message")), "{r}");
}

#[test]
fn slow_idle_and_excess_clients_are_shed() {
    let s = Server::start(&["--parallel", "1", "--max-connections", "2", "--header-timeout", "1", "--idle-timeout", "1", "--timeout", "1"]);
    // Headers that never end: the connection is closed after the header timeout.
    let t0 = Instant::now();
    let (_, closed) = raw(&s.base, "GET /health HTTP/1.1\r\nhost: x\r\n", Duration::from_secs(10));
    assert!(closed && t0.elapsed() < Duration::from_secs(5), "slow headers kept for {:?}", t0.elapsed());
    // A connection that sends nothing is closed too.
    let t0 = Instant::now();
    let (_, closed) = raw(&s.base, "", Duration::from_secs(10));
    assert!(closed && t0.elapsed() < Duration::from_secs(5), "idle connection kept for {:?}", t0.elapsed());
    // A body that stops half-way does not hold the connection either.
    let t0 = Instant::now();
    let (_, closed) = raw(&s.base, "POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"mo", Duration::from_secs(10));
    assert!(closed && t0.elapsed() < Duration::from_secs(5), "stalled body kept for {:?}", t0.elapsed());
    // Two connections held open: a third is refused at once with 503.
    let addr = s.base.trim_start_matches("http://");
    let held: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let (r, _) = raw(&s.base, "GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", Duration::from_secs(5));
    assert_eq!(status_of(&r), 503, "{r}");
    assert!(r.contains("too_many_connections"), "{r}");
    // Once the idle ones are closed, connections are served again.
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let (code, h) = s.get("/health");
    assert_eq!(code, 200, "{h}");
    // --timeout: a request that runs past it gets 408 and frees its slot; a stream gets an error
    // event.
    let hum = json!({"model": MODEL, "prompt": format!("tra{HUM}"), "max_tokens": 1000});
    let t0 = Instant::now();
    let (code, r) = s.post_json("/v1/completions", hum.clone());
    if code == 200 {
        // The whole answer came within the limit: the machine is too fast for this check.
        assert!(t0.elapsed() < Duration::from_secs(1), "{r}");
    } else {
        eprintln!("--timeout 1 stopped the request after {:?}", t0.elapsed());
        assert_eq!(code, 408, "{r}");
        assert_eq!(r["error"]["code"], "timeout", "{r}");
        let mut streamed = hum.clone();
        streamed["stream"] = json!(true);
        let (code, body) = s.post("/v1/completions", &streamed.to_string());
        assert_eq!(code, 200);
        assert!(body.contains("\"timeout\"") && !body.contains("[DONE]"), "{body}");
    }
    let t0 = Instant::now();
    loop {
        let (_, h) = s.get("/health");
        if h["slots_busy"] == 0 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "slot not freed: {h}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Streams `body` to `path` on a new connection; returns when the first event with text came
/// (any `data:` line for completions, a non-empty content or reasoning delta for chat).
fn first_text_at(base: &str, path: &str, body: &Value) -> Instant {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    let body = body.to_string();
    write!(stream, "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "stream ended without text");
        let Some(data) = line.trim().strip_prefix("data: ") else { continue };
        let Ok(v) = serde_json::from_str::<Value>(data) else { continue };
        let delta = &v["choices"][0]["delta"];
        let chat_text = ["content", "reasoning_content"].iter().any(|k| delta[*k].as_str().is_some_and(|t| !t.is_empty()));
        if v["object"] == "text_completion" || chat_text {
            return Instant::now();
        }
    }
}

/// A long prompt is prefilled a chunk per round between the other slots' tokens: a short
/// request that arrives while it goes in gets its first token before the long one does.
#[test]
fn a_long_prompt_does_not_hold_up_other_requests() {
    let s = Server::start(&["--parallel", "2"]);
    let long: Vec<u32> = (0..900).map(|i| 1000 + i).collect();
    let a = json!({"model": MODEL, "prompt": long, "max_tokens": 2, "stream": true});
    let base = s.base.clone();
    let long_one = std::thread::spawn(move || first_text_at(&base, "/v1/completions", &a));
    // Once the long request holds its slot, the short one comes.
    let t0 = Instant::now();
    loop {
        let (_, h) = s.get("/health");
        if h["slots_busy"] == 1 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{h}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut b = chat(json!([{"role": "user", "content": "Hi"}]));
    b["stream"] = json!(true);
    let short = first_text_at(&s.base, "/v1/chat/completions", &b);
    let long = long_one.join().unwrap();
    assert!(short < long, "the short request's first token came {:?} after the long prompt's", short - long);
}
