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
