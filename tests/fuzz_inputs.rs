//! Deterministic mutation tests of every input read from a file or the network: GGUF headers,
//! safetensors headers, `config.json`, chat templates and HTTP request bodies (against a server
//! on 127.0.0.1). Every case must end in success or a clear error: no panic, no hang (each case
//! runs under a time bound), and bounded memory (the process's peak resident size stays under
//! `MAX_RSS_MIB`). Cases are derived from a fixed seed; `WGPT_FUZZ_CASES=N` runs N cases per
//! input kind instead of the default, and `WGPT_FUZZ_SEED=S` changes the seed.

mod common;

use std::io::{Read, Write};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::chat_model::{write_chat_model, HUM};
use serde_json::{json, Value};
use wgpt::chat::template::{ChatTemplate, TemplateMessage};
use wgpt::loader::gguf::{Gguf, Parse};
use wgpt::loader::Header;

/// Peak resident memory the whole test process may reach.
const MAX_RSS_MIB: u64 = 2048;
/// Time one case may take.
const CASE_TIME: Duration = Duration::from_secs(20);

/// splitmix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn cases(default: usize) -> usize {
    std::env::var("WGPT_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn seed(kind: u64) -> Rng {
    let s: u64 = std::env::var("WGPT_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5EED);
    Rng(s ^ kind.wrapping_mul(0x1000_0000_01B3))
}

/// Peak resident set of this process (VmHWM), in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

/// What the cases of one input kind did.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    errors: usize,
}

/// Runs `n` cases of `check` on a worker thread, one at a time, each under the time bound and
/// with panics caught; `check` returns Ok(true) for a success and Ok(false) for a clear error,
/// Err for a failure of the property.
fn run_cases<I: Send + Sync + 'static>(
    kind: &str,
    n: usize,
    mut make: impl FnMut(usize) -> I,
    check: impl Fn(&I) -> Result<bool, String> + Send + Sync + 'static,
    describe: impl Fn(&I) -> String,
) -> Tally {
    let check = std::sync::Arc::new(check);
    let (to_worker, work) = mpsc::channel::<std::sync::Arc<I>>();
    let (to_main, results) = mpsc::channel();
    let c = check.clone();
    std::thread::spawn(move || {
        for input in work {
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| c(&input)));
            if to_main.send(r.map_err(|p| panic_text(&p))).is_err() {
                return;
            }
        }
    });
    let mut tally = Tally::default();
    let t0 = Instant::now();
    for i in 0..n {
        let input = std::sync::Arc::new(make(i));
        to_worker.send(input.clone()).unwrap();
        match results.recv_timeout(CASE_TIME) {
            Ok(Ok(Ok(true))) => tally.ok += 1,
            Ok(Ok(Ok(false))) => tally.errors += 1,
            Ok(Ok(Err(why))) => panic!("{kind} case {i}: {why}\ninput: {}", describe(&input)),
            Ok(Err(p)) => panic!("{kind} case {i} panicked: {p}\ninput: {}", describe(&input)),
            Err(_) => panic!("{kind} case {i} ran longer than {CASE_TIME:?}\ninput: {}", describe(&input)),
        }
        let rss = peak_rss_mib();
        assert!(rss < MAX_RSS_MIB, "{kind} case {i}: peak RSS {rss} MiB over {MAX_RSS_MIB} MiB\ninput: {}", describe(&input));
    }
    eprintln!(
        "{kind}: {n} cases ({} ok, {} clear errors) in {:.1?}, peak RSS {} MiB",
        tally.ok,
        tally.errors,
        t0.elapsed(),
        peak_rss_mib()
    );
    tally
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// An error must be one readable line that says something.
fn clear(e: &wgpt::Error) -> Result<bool, String> {
    let m = e.to_string();
    if m.trim().is_empty() || m.len() > 4000 {
        return Err(format!("unclear error: {m:?}"));
    }
    Ok(false)
}

/// Interesting numbers for a mutated field.
const NUMBERS: &[u64] = &[0, 1, 2, 3, 31, 32, 255, 256, 1 << 16, (1 << 31) - 1, 1 << 31, u32::MAX as u64, 1 << 32, u64::MAX / 2, u64::MAX];

/// Byte-level mutations: flips, overwrites with interesting numbers, insertions, deletions, cuts.
fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>, region: usize) {
    let region = region.min(bytes.len()).max(1);
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(region.min(bytes.len() + 1));
        match rng.below(6) {
            0 => {
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                if let Some(b) = bytes.get_mut(at) {
                    *b = rng.next() as u8;
                }
            }
            2 => {
                let v = rng.pick(NUMBERS).to_le_bytes();
                let w = *rng.pick(&[1usize, 2, 4, 8]);
                for (k, b) in v.iter().take(w).enumerate() {
                    if let Some(x) = bytes.get_mut(at + k) {
                        *x = *b;
                    }
                }
            }
            3 => {
                let n = 1 + rng.below(8);
                for _ in 0..n {
                    bytes.insert(at.min(bytes.len()), rng.next() as u8);
                }
            }
            4 => {
                let n = (1 + rng.below(8)).min(bytes.len().saturating_sub(at));
                bytes.drain(at..at + n);
            }
            _ => bytes.truncate(at),
        }
    }
}

#[test]
fn gguf_headers() {
    let file = std::fs::read(common::fixture("gguf-tiny").join("llama-q8.gguf")).unwrap();
    let g = match Gguf::parse("llama-q8.gguf", &file, file.len() as u64).unwrap() {
        Parse::Done(g) => g,
        Parse::NeedMore(_) => panic!("fixture truncated"),
    };
    let header_len = g.data_start as usize;
    let header = file[..header_len].to_vec();
    let file_size = file.len() as u64;
    let mut rng = seed(1);
    run_cases(
        "GGUF header",
        cases(1500),
        |_| {
            let mut h = header.clone();
            mutate_bytes(&mut rng, &mut h, header_len);
            h
        },
        move |h: &Vec<u8>| {
            let g = match Gguf::parse("fuzz.gguf", h, file_size) {
                Ok(Parse::Done(g)) => g,
                Ok(Parse::NeedMore(_)) => return Ok(false),
                Err(e) => return clear(&e),
            };
            // What a loader reads next from the metadata.
            let cfg = wgpt::models::gguf::config(&g);
            let vocab = wgpt::models::gguf::vocab(&g);
            match (cfg, vocab) {
                (Ok(cfg), Ok(v)) => {
                    let _ = cfg.kv_bytes_per_token(cfg.max_position_embeddings.min(1 << 20));
                    match wgpt::tokenizer::Tokenizer::from_gguf_vocab(&v) {
                        Ok(_) => Ok(true),
                        Err(e) => clear(&e),
                    }
                }
                (Err(e), _) | (_, Err(e)) => clear(&e),
            }
        },
        |h| format!("{} header bytes", h.len()),
    );
}

#[test]
fn safetensors_headers() {
    let file = std::fs::read(common::fixture("tiny").join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let json = file[8..8 + n].to_vec();
    let size = file.len() as u64;
    let text = String::from_utf8(json.clone()).unwrap();
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(&text).unwrap().keys().cloned().collect();
    let mut rng = seed(2);
    run_cases(
        "safetensors header",
        cases(1500),
        |_| {
            if rng.below(2) == 0 {
                let mut j = json.clone();
                mutate_bytes(&mut rng, &mut j, json.len());
                j
            } else {
                // Structural: one entry's field set to an odd value, duplicated or dropped.
                let mut v: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
                let key = rng.pick(&keys).clone();
                let odd = odd_value(&mut rng);
                match rng.below(4) {
                    0 => {
                        v.remove(&key);
                    }
                    1 => {
                        if let Some(Value::Object(e)) = v.get_mut(&key) {
                            let f = rng.pick(&["dtype", "shape", "data_offsets", "extra"]).to_string();
                            e.insert(f, odd);
                        }
                    }
                    2 => {
                        v.insert(key, odd);
                    }
                    _ => {
                        let s = serde_json::to_string(&v).unwrap();
                        let e = serde_json::to_string(&v[&key]).unwrap();
                        return format!("{{\"{key}\":{e},{}", &s[1..]).into_bytes();
                    }
                }
                serde_json::to_vec(&v).unwrap()
            }
        },
        move |j: &Vec<u8>| {
            let mut h = Header::default();
            // The file size the header would need, and the real one.
            for file_size in [size, 8 + j.len() as u64 + (size - 8 - n as u64)] {
                match h.add_file("model.safetensors", j, file_size) {
                    Ok(_) => {
                        for t in h.tensors.values() {
                            if t.range.end > file_size || t.range.start > t.range.end {
                                return Err(format!("tensor {} has range {:?} past the file ({file_size})", t.name, t.range));
                            }
                        }
                        return Ok(true);
                    }
                    Err(e) => clear(&e)?,
                };
                h = Header::default();
            }
            Ok(false)
        },
        |j| String::from_utf8_lossy(&j[..j.len().min(300)]).into_owned(),
    );
}

/// A JSON value of a random kind, often an extreme one.
fn odd_value(rng: &mut Rng) -> Value {
    match rng.below(10) {
        0 => json!(*rng.pick(NUMBERS)),
        1 => json!(-(rng.below(1 << 20) as i64)),
        2 => json!(*rng.pick(&[0.0, -0.0, 1e-300, 1e300, -1.0, 0.5, 1.0, 1.5, f64::MAX, f64::MIN_POSITIVE])),
        3 => json!(*rng.pick(&["", "x", "yarn", "mxfp4", "gpt_oss", "BF16", "U8", "full_attention"])),
        4 => json!(null),
        5 => json!(rng.below(2) == 0),
        6 => json!([rng.pick(NUMBERS), "x", null]),
        7 => json!({"factor": 0, "rope_type": "yarn"}),
        8 => json!(vec![*rng.pick(NUMBERS); rng.below(5)]),
        _ => json!(rng.below(300)),
    }
}

#[test]
fn config_json() {
    let text = std::fs::read_to_string(common::fixture("tiny").join("config.json")).unwrap();
    let base: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    let keys: Vec<String> = base.keys().cloned().collect();
    let mut rng = seed(3);
    run_cases(
        "config.json",
        cases(1500),
        |_| {
            if rng.below(4) == 0 {
                let mut b = text.clone().into_bytes();
                mutate_bytes(&mut rng, &mut b, text.len());
                return String::from_utf8_lossy(&b).into_owned();
            }
            let mut v = base.clone();
            for _ in 0..1 + rng.below(3) {
                let key = rng.pick(&keys).clone();
                match rng.below(6) {
                    0 => {
                        v.remove(&key);
                    }
                    1 => {
                        if let Some(Value::Object(rs)) = v.get_mut("rope_scaling") {
                            let f = rng.pick(&["factor", "beta_fast", "beta_slow", "original_max_position_embeddings", "rope_type"]).to_string();
                            rs.insert(f, odd_value(&mut rng));
                        }
                    }
                    _ => {
                        v.insert(key, odd_value(&mut rng));
                    }
                }
            }
            serde_json::to_string(&v).unwrap()
        },
        |t: &String| match wgpt::models::gpt_oss::config::from_json(t) {
            Ok(cfg) => {
                // Everything sized from a configuration must stay bounded.
                let names = wgpt::models::gpt_oss::checkpoint::expected_tensors(&cfg);
                if names.len() > 19 * 1024 + 3 {
                    return Err(format!("{} expected tensors", names.len()));
                }
                let _ = wgpt::models::rope::Rope::new(&cfg);
                let _ = cfg.kv_bytes_per_token(cfg.max_position_embeddings - 1);
                Ok(true)
            }
            Err(e) => clear(&e),
        },
        |t| t.chars().take(600).collect(),
    );
}

/// Fragments a mutated template is built from: loops, output, errors, calls, broken syntax.
const FRAGMENTS: &[&str] = &[
    "{% for m in messages %}",
    "{% endfor %}",
    "{% for i in range(10000) %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}",
    "{% endfor %}{% endfor %}",
    "{{ m.content }}",
    "{{ m['role'] }}",
    "{{ 'x' * 100000 }}",
    "{{ messages | length }}",
    "{{ raise_exception('bad') }}",
    "{{ strftime_now('%Y-%m-%d') }}",
    "{% if add_generation_prompt %}",
    "{% endif %}",
    "{% if %}",
    "{{",
    "}}",
    "{% set x = messages[0]['content'] %}",
    "{{ x.strip().split(' ') | join('-') }}",
    "{{ messages[99999] }}",
    "{{ tojson(messages) }}",
    "{{ messages | tojson }}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{% generation %}",
    "{% endgeneration %}",
    "<|im_start|>",
    "\u{F8F0}0\u{F8F1}",
    "{{ bos_token }}{{ eos_token }}",
    "{% break %}",
    "{{ 1 / 0 }}",
    "{{ namespace(a=1).a }}",
];

#[test]
fn chat_templates() {
    let text = std::fs::read_to_string(common::fixture("chat").join("templates.json")).unwrap();
    let fx: Value = serde_json::from_str(&text).unwrap();
    let sources: Vec<String> = fx["templates"].as_object().unwrap().values().filter_map(|t| t["source"].as_str().map(String::from)).collect();
    assert!(!sources.is_empty());
    let mut rng = seed(4);
    run_cases(
        "chat template",
        cases(600),
        |_| {
            let mut s = rng.pick(&sources).clone();
            for _ in 0..1 + rng.below(2) {
                let mut at = rng.below(s.len() + 1);
                while !s.is_char_boundary(at) {
                    at -= 1;
                }
                if rng.below(4) == 0 {
                    let end = (at + 1 + rng.below(20)).min(s.len());
                    let end = (end..=s.len()).find(|&e| s.is_char_boundary(e)).unwrap_or(s.len());
                    s.replace_range(at..end, "");
                } else {
                    let f: &str = FRAGMENTS[rng.below(FRAGMENTS.len())];
                    s.insert_str(at, f);
                }
            }
            let n = rng.below(6);
            let messages: Vec<TemplateMessage> = (0..n)
                .map(|i| {
                    let role = *rng.pick(&["system", "user", "assistant", "tool", "x"]);
                    TemplateMessage::new(role, format!("content {i} {}", *rng.pick(FRAGMENTS)))
                })
                .collect();
            (s, messages)
        },
        |(source, messages): &(String, Vec<TemplateMessage>)| {
            let t = match ChatTemplate::new(source, "<s>", "</s>") {
                Ok(t) => t,
                Err(e) => return clear(&e),
            };
            match t.render(messages, true) {
                Ok(pieces) => {
                    let len: usize = pieces
                        .iter()
                        .map(|p| match p {
                            wgpt::chat::template::Piece::Template(s) | wgpt::chat::template::Piece::Content(s) => s.len(),
                        })
                        .sum();
                    if len > 64 << 20 {
                        return Err(format!("rendered {len} bytes"));
                    }
                    Ok(true)
                }
                Err(e) => clear(&e),
            }
        },
        |(s, m)| format!("{s:?} with {} messages", m.len()),
    );
}

/// Mutations of HTTP request bodies against `wgpt serve` on 127.0.0.1 (in this process): every
/// answer is a well-formed status with OpenAI error JSON for the refused ones, never a server
/// error, and the server keeps serving.
#[test]
fn http_request_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_chat_model(&model);
    let engine = wgpt::engine::Engine::load(common::gpu(None), &model, &mut |_, _| {}).unwrap();
    let opts = wgpt::serve::ServeOptions {
        port: 0,
        model_id: "scripted".into(),
        parallel: 2,
        ctx: 256,
        chunk: 32,
        max_queue: 64,
        max_body_bytes: 1 << 16,
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = wgpt::serve::serve(engine, &opts, |addr| tx.send(addr).unwrap());
    });
    let addr = rx.recv_timeout(Duration::from_secs(120)).expect("server started");
    let bases = [
        json!({"model": "scripted", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}),
        json!({"model": "scripted", "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}], "stream": true, "max_tokens": 8}),
        json!({"model": "scripted", "prompt": format!("tra{HUM}"), "max_tokens": 8}),
        json!({"model": "scripted", "prompt": [1, 2, 3], "max_tokens": 4, "stream": true, "stop": ["la"]}),
    ];
    let fields = ["model", "messages", "prompt", "max_tokens", "stream", "temperature", "top_p", "stop", "seed", "tools", "n", "stream_options", "reasoning_effort", "logprobs"];
    let mut rng = seed(5);
    run_cases(
        "HTTP body",
        cases(150),
        |_| {
            let i = rng.below(bases.len());
            let path = if bases[i].get("prompt").is_some() { "/v1/completions" } else { "/v1/chat/completions" };
            let body = if rng.below(3) == 0 {
                let mut b = bases[i].to_string().into_bytes();
                let n = b.len();
                mutate_bytes(&mut rng, &mut b, n);
                b
            } else {
                let mut v = bases[i].clone();
                for _ in 0..1 + rng.below(3) {
                    let f = rng.pick(&fields).to_string();
                    let odd = match rng.below(3) {
                        0 => json!([{"role": *rng.pick(&["user", "system", "tool", "assistant", "x"]), "content": odd_value(&mut rng)}]),
                        _ => odd_value(&mut rng),
                    };
                    // Never ask for long generations: the property is about input handling.
                    if f != "max_tokens" {
                        v[f] = odd;
                    }
                }
                v.to_string().into_bytes()
            };
            (path, body)
        },
        move |(path, body): &(&str, Vec<u8>)| {
            let (status, text) = post(addr, path, body)?;
            match status {
                200 => Ok(true),
                400 | 404 | 408 | 413 | 415 | 422 | 503 => {
                    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{status} without error JSON ({e}): {text}"))?;
                    if v["error"]["message"].as_str().is_none_or(|m| m.is_empty()) {
                        return Err(format!("{status} without a message: {text}"));
                    }
                    Ok(false)
                }
                other => Err(format!("status {other}: {text}")),
            }
        },
        |(path, body)| format!("{path} {}", String::from_utf8_lossy(body)),
    );
    let (status, text) = get(addr, "/health");
    assert_eq!(status, 200, "{text}");
}

/// One request on its own connection; the status and the body (SSE as is).
fn post(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> Result<(u16, String), String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(CASE_TIME)).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| format!("reading the answer: {e}"))?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("no status line: {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, dechunk(&body)))
}

fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    (out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), out)
}

/// The payload of a chunked body (bodies of known length pass through).
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, tail)) = rest.split_once("\r\n") else { return if out.is_empty() { body.to_string() } else { out } };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { return if out.is_empty() { body.to_string() } else { out } };
        if n == 0 || tail.len() < n {
            return out;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
}
