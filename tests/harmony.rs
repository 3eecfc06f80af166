//! The harmony renderer and parser against openai-harmony's own output
//! (`tests/fixtures/harmony/*.json`, written by `tests/reference/harmony_fixtures.py`), plus
//! malformed and random model output, which must never panic.

use std::path::PathBuf;
use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use wgpt::chat::harmony::{parse_completion, parse_completion_with_role, render_for_completion, render_message, StreamParser};
use wgpt::chat::{Conversation, Event, Header, Message, ReasoningEffort, Role, StopReason, SystemOptions, ToolDef};
use wgpt::tokenizer::Tokenizer;
use wgpt::Error;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tok() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::o200k_harmony().unwrap())
}

fn fixture(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("tests/fixtures/harmony").join(name)).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn special(name: &str) -> u32 {
    tok().special(name).unwrap()
}

/// Ids of text in which control tokens are written out (`<|start|>` etc.), as a model would emit.
fn ids(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let next = rest.find("<|").filter(|&i| rest[i..].find("|>").is_some()).unwrap_or(rest.len());
        out.extend(tok().encode(&rest[..next]).unwrap());
        rest = &rest[next..];
        if let Some(end) = rest.find("|>") {
            out.push(special(&rest[..end + 2]));
            rest = &rest[end + 2..];
        }
    }
    out
}

#[test]
fn key_order_of_json_objects_is_kept() {
    // Tool schemas render in key order; serde_json needs its preserve_order feature.
    let v: Value = serde_json::from_str(r#"{"zeta": 1, "alpha": 2}"#).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["zeta", "alpha"]);
}

#[test]
fn renders_like_openai_harmony() {
    let cases = fixture("render.json");
    assert!(cases.len() >= 12);
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let effort: ReasoningEffort = case["reasoning"].as_str().unwrap().parse().unwrap();
        let conv = Conversation::from_openai_chat(&case["input"], effort, opt_str(&case["date"])).unwrap();
        let got = render_for_completion(&conv, tok()).unwrap();
        let want = ids_of(&case["ids"]);
        if got != want {
            let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
            let lo = at.saturating_sub(8);
            failures.push(format!(
                "{name}: first difference at {at} (got {} ids, want {})\n  got:  {:?}\n  want: {:?}",
                got.len(),
                want.len(),
                tok().decode(&got[lo..(at + 8).min(got.len())]).unwrap(),
                tok().decode(&want[lo..(at + 8).min(want.len())]).unwrap(),
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} conversations differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
    println!("harmony render: {} of {} conversations identical to openai-harmony", cases.len(), cases.len());
}

fn message_json(m: &Message) -> Value {
    json!({
        "role": m.role.as_str(),
        "name": m.author_name,
        "channel": m.channel,
        "recipient": m.recipient,
        "content_type": m.content_type,
        "content": m.content,
    })
}

#[test]
fn parses_like_openai_harmony() {
    let cases = fixture("parse.json");
    let mut n_ok = 0;
    let mut n_err = 0;
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let role = case["role"].as_str().map(|r| Role::parse(r).unwrap());
        let tokens = ids_of(&case["tokens"]);
        let got = parse_completion_with_role(tok(), &tokens, role);
        if let Some(err) = case.get("error") {
            assert!(got.is_err(), "{name}: openai-harmony fails ({err}), got {got:?}");
            n_err += 1;
        } else {
            let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            let got: Vec<Value> = got.iter().map(message_json).collect();
            assert_eq!(&Value::Array(got), &case["messages"], "{name}");
            n_ok += 1;
        }
        if role == Some(Role::Assistant) {
            assert_eq!(
                parse_completion(tok(), &tokens).is_ok(),
                case.get("error").is_none(),
                "{name}: parse_completion starts after <|start|>assistant"
            );
        }
    }
    println!("harmony parse: {n_ok} completions with the same messages, {n_err} rejected as by openai-harmony");
}

/// Runs the lenient streaming parser and checks the event stream's invariants: every message
/// starts, its deltas add up to its text, it ends; `Done` comes last, once per turn end.
fn stream(tokens: &[u32], role: Option<Role>) -> Vec<Event> {
    let mut p = StreamParser::with_role(tok(), role).unwrap();
    let mut events = Vec::new();
    for &id in tokens {
        events.extend(p.push(id).unwrap());
    }
    events.extend(p.finish().unwrap());
    let mut open: Option<(Header, String)> = None;
    for e in &events {
        match e {
            Event::MessageStart(h) => {
                assert!(open.is_none(), "message started inside another: {events:?}");
                open = Some((h.clone(), String::new()));
            }
            Event::Delta { channel, text } => {
                let (h, acc) = open.as_mut().unwrap_or_else(|| panic!("delta outside a message: {events:?}"));
                assert_eq!(channel, &h.channel);
                assert!(!text.is_empty());
                acc.push_str(text);
            }
            Event::MessageEnd(m) => {
                let (h, acc) = open.take().unwrap_or_else(|| panic!("end without start: {events:?}"));
                assert_eq!((m.role, &m.channel, &m.recipient), (h.role, &h.channel, &h.recipient));
                assert_eq!(&m.content, &acc);
            }
            Event::ToolCall { .. } | Event::Error(_) | Event::Done(_) => {}
        }
    }
    assert!(open.is_none(), "message left open: {events:?}");
    assert!(matches!(events.last(), Some(Event::Done(_))), "no Done at the end: {events:?}");
    events
}

fn errors(events: &[Event]) -> Vec<&str> {
    events.iter().filter_map(|e| if let Event::Error(m) = e { Some(m.as_str()) } else { None }).collect()
}

fn messages(events: &[Event]) -> Vec<Message> {
    events.iter().filter_map(|e| if let Event::MessageEnd(m) = e { Some(m.clone()) } else { None }).collect()
}

#[test]
fn streaming_events_agree_with_the_fixtures() {
    for case in fixture("parse.json") {
        if case.get("error").is_some() {
            continue;
        }
        let name = case["name"].as_str().unwrap();
        let role = case["role"].as_str().map(|r| Role::parse(r).unwrap());
        let events = stream(&ids_of(&case["tokens"]), role);
        if name == "start_token_inside_content" {
            // The one deliberate difference: the lenient parser ends a message at <|start|>.
            assert!(errors(&events)[0].contains("<|start|>"), "{events:?}");
            let text: Vec<String> = messages(&events).into_iter().map(|m| m.content).collect();
            assert_eq!(text, ["a", "b<|channel|>c"]);
            continue;
        }
        let cut_off = name == "truncated_tool_call";
        assert_eq!(errors(&events).len(), cut_off as usize, "{name}: {events:?}");
        let got: Vec<Value> = messages(&events).iter().map(message_json).collect();
        assert_eq!(&Value::Array(got), &case["messages"], "{name}");
    }
}

#[test]
fn stream_of_analysis_then_final() {
    let toks = ids("<|channel|>analysis<|message|>User says hi.<|end|><|start|>assistant<|channel|>final<|message|>Hello 👋🏽!<|return|>");
    let events = stream(&toks, Some(Role::Assistant));
    assert!(errors(&events).is_empty());
    let starts: Vec<&Header> = events.iter().filter_map(|e| if let Event::MessageStart(h) = e { Some(h) } else { None }).collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[0].channel.as_deref(), Some("analysis"));
    assert_eq!(starts[1].channel.as_deref(), Some("final"));
    let finals: String = events
        .iter()
        .filter_map(|e| match e {
            Event::Delta { channel: Some(c), text } if c == "final" => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(finals, "Hello 👋🏽!");
    assert_eq!(events.last(), Some(&Event::Done(StopReason::Return)));
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Done(_))).count(), 1);
    assert_eq!(serde_json::to_value(events.last()).unwrap(), json!({"event": "done", "data": "return"}));
    let delta = serde_json::to_value(&events[1]).unwrap();
    assert_eq!(delta["event"], "delta");
    assert_eq!(delta["data"]["channel"], "analysis");
}

#[test]
fn stream_of_tool_calls_in_both_header_forms() {
    for text in [
        "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"location\":\"Oslo\"}<|call|>",
        " to=functions.get_weather<|channel|>commentary json<|message|>{\"location\":\"Oslo\"}<|call|>",
    ] {
        let events = stream(&ids(text), Some(Role::Assistant));
        assert!(errors(&events).is_empty(), "{events:?}");
        let call = events.iter().find_map(|e| match e {
            Event::ToolCall { recipient, arguments, channel, .. } => Some((recipient.as_str(), arguments.as_str(), channel.as_deref())),
            _ => None,
        });
        assert_eq!(call, Some(("functions.get_weather", "{\"location\":\"Oslo\"}", Some("commentary"))), "{text}");
        assert_eq!(events.last(), Some(&Event::Done(StopReason::Call)));
    }
}

#[test]
fn rendered_assistant_messages_parse_back() {
    let msgs = vec![
        Message::new(Role::Assistant, "Let me think… 🤔 日本語").with_channel("analysis"),
        Message::new(Role::Assistant, "Checking.").with_channel("commentary"),
        Message::new(Role::Assistant, "{\"q\": \"ünïcödé\"}")
            .with_channel("commentary")
            .with_recipient("functions.search")
            .with_content_type("<|constrain|>json"),
    ];
    let mut toks = Vec::new();
    for m in &msgs {
        toks.extend(render_message(m, tok()).unwrap());
    }
    assert_eq!(parse_completion_with_role(tok(), &toks, None).unwrap(), msgs);
    // After `<|start|>assistant`, as the model continues a prompt.
    let skip = 1 + tok().encode("assistant").unwrap().len();
    assert_eq!(parse_completion(tok(), &toks[skip..]).unwrap(), msgs);
    let tool_result = Message::from_tool("functions.search", "[]").with_recipient("assistant").with_channel("commentary");
    let toks = render_message(&tool_result, tok()).unwrap();
    assert_eq!(parse_completion_with_role(tok(), &toks, None).unwrap(), vec![tool_result]);
}

#[test]
fn malformed_output_is_reported_not_fatal() {
    let a = Some(Role::Assistant);

    // Truncated tool call: the partial message, an error, no ToolCall.
    let ev = stream(&ids("<|channel|>commentary to=functions.f <|constrain|>json<|message|>{\"a\": 1"), a);
    assert!(errors(&ev).iter().any(|e| e.contains("cut off")), "{ev:?}");
    assert!(!ev.iter().any(|e| matches!(e, Event::ToolCall { .. })));
    assert_eq!(messages(&ev)[0].content, "{\"a\": 1");
    assert_eq!(ev.last(), Some(&Event::Done(StopReason::EndOfStream)));

    // Unknown channel: accepted as is (openai-harmony does not check channel names).
    let ev = stream(&ids("<|channel|>scratchpad<|message|>notes<|end|>"), a);
    assert!(errors(&ev).is_empty());
    assert_eq!(messages(&ev)[0].channel.as_deref(), Some("scratchpad"));

    // Garbage header: an error, and the header text kept as message text.
    let ev = stream(&ids("<|channel|>final please ignore me<|message|>x<|return|>"), a);
    assert_eq!(errors(&ev).len(), 1, "{ev:?}");
    let m = &messages(&ev)[0];
    assert!(m.content.contains("please ignore me") && m.content.ends_with('x'), "{m:?}");
    assert_eq!(ev.last(), Some(&Event::Done(StopReason::Return)));

    // Text before <|start|>.
    let ev = stream(&ids("oops<|start|>assistant<|channel|>final<|message|>ok<|return|>"), None);
    assert!(errors(&ev)[0].contains("outside a message"), "{ev:?}");
    let ms = messages(&ev);
    assert_eq!((ms[0].content.as_str(), ms[1].content.as_str()), ("oops", "ok"));

    // <|start|> inside content: the message is closed and a new one begins.
    let ev = stream(&ids("<|channel|>final<|message|>a<|start|>assistant<|channel|>final<|message|>b<|return|>"), a);
    assert_eq!(errors(&ev).len(), 1);
    let ms = messages(&ev);
    assert_eq!((ms[0].content.as_str(), ms[1].content.as_str()), ("a", "b"));
    // ... while the strict parser keeps it as text, as openai-harmony does.
    let strict = parse_completion(tok(), &ids("<|channel|>final<|message|>a<|start|>b<|return|>")).unwrap();
    assert_eq!(strict[0].content, "a<|start|>b");

    // A stop token inside the header, unknown role, empty channel, a header that never ends.
    for (text, role) in [
        ("<|channel|>final<|return|>", a),
        ("<|start|>robot<|message|>x<|end|>", None),
        ("<|channel|><|message|>x<|end|>", a),
        ("<|channel|>final", a),
    ] {
        let ev = stream(&ids(text), role);
        assert!(!errors(&ev).is_empty(), "{text}: {ev:?}");
        assert!(parse_completion_with_role(tok(), &ids(text), role).is_err(), "{text}");
    }
    let long: Vec<u32> = std::iter::repeat_n(tok().encode(" word").unwrap()[0], 500).collect();
    let ev = stream(&long, a);
    assert!(errors(&ev).iter().any(|e| e.contains("too long")), "{ev:?}");

    // Ids outside the vocabulary, an empty output.
    let ev = stream(&[201088, u32::MAX], a);
    assert!(errors(&ev).iter().filter(|e| e.contains("vocabulary")).count() == 2);
    assert!(parse_completion(tok(), &[u32::MAX]).is_err());
    let ev = stream(&[], a);
    assert_eq!(ev.last(), Some(&Event::Done(StopReason::EndOfStream)));
    assert!(parse_completion(tok(), &[]).is_err());
}

#[test]
fn streaming_never_splits_characters() {
    let text = "नमस्ते 🧑🏾‍🚀 مرحبا 你好 ש";
    let mut toks = ids("<|channel|>final<|message|>");
    toks.extend(tok().encode(text).unwrap());
    toks.push(special("<|return|>"));
    let mut p = StreamParser::new(tok()).unwrap();
    let mut out = String::new();
    for id in toks {
        for e in p.push(id).unwrap() {
            if let Event::Delta { text, .. } = e {
                assert!(!text.contains('\u{FFFD}'), "{text:?}");
                out.push_str(&text);
            }
        }
    }
    assert_eq!(out, text);
}

#[test]
fn random_and_mutated_outputs_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x4841524d);
    let controls: Vec<u32> = ["<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>", "<|return|>", "<|call|>"]
        .iter()
        .map(|s| special(s))
        .collect();
    let words: Vec<u32> = ["assistant", "analysis", "final", "commentary", " to=functions.f", " json", "user", "functions.x", " ", "é", "🦀"]
        .iter()
        .flat_map(|w| tok().encode(w).unwrap())
        .collect();
    let random_id = |rng: &mut StdRng| -> u32 {
        match rng.random_range(0..10) {
            0..=3 => controls[rng.random_range(0..controls.len())],
            4..=6 => words[rng.random_range(0..words.len())],
            7 => rng.random_range(199_990..201_100),
            _ => rng.random_range(0..201_088),
        }
    };
    let valid: Vec<(Vec<u32>, Option<Role>)> = fixture("parse.json")
        .iter()
        .map(|c| (ids_of(&c["tokens"]), c["role"].as_str().map(|r| Role::parse(r).unwrap())))
        .collect();
    let mut runs = 0;
    for i in 0..1500 {
        let role = if rng.random_bool(0.5) { Some(Role::Assistant) } else { None };
        let (toks, role) = if i % 3 == 0 {
            let n = rng.random_range(0..80);
            ((0..n).map(|_| random_id(&mut rng)).collect::<Vec<u32>>(), role)
        } else {
            // A valid completion with a few tokens replaced, inserted, deleted, or cut short.
            let (mut t, role) = valid[rng.random_range(0..valid.len())].clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..=t.len());
                match rng.random_range(0..4) {
                    0 if at < t.len() => t[at] = random_id(&mut rng),
                    1 => t.insert(at, random_id(&mut rng)),
                    2 if at < t.len() => {
                        t.remove(at);
                    }
                    _ => t.truncate(at),
                }
            }
            (t, role)
        };
        stream(&toks, role);
        let _ = parse_completion_with_role(tok(), &toks, role);
        runs += 1;
    }
    // Every prefix of every fixture (outputs cut off anywhere).
    for (t, role) in &valid {
        for n in 0..=t.len() {
            stream(&t[..n], *role);
            let _ = parse_completion_with_role(tok(), &t[..n], *role);
            runs += 1;
        }
    }
    println!("harmony parser: {runs} random, mutated or truncated outputs, no panic");
}

/// The message of the request error a malformed request gets; its `param` must be the
/// top-level field at fault (`tools` for a tool, else `messages`).
fn input_error(request: Value) -> String {
    let tools_at_fault = request.get("tools").is_some_and(|t| !t.is_array() || !t.as_array().unwrap().is_empty());
    match Conversation::from_openai_chat(&request, ReasoningEffort::Medium, None) {
        Err(Error::Request { param, message }) => {
            assert_eq!(param, if tools_at_fault { "tools" } else { "messages" }, "{request}: {message}");
            message
        }
        other => panic!("expected a request error for {request}, got {other:?}"),
    }
}

#[test]
fn malformed_requests_are_input_errors() {
    let cases = [
        (json!([]), "JSON object"),
        (json!({}), "messages"),
        (json!({"messages": {}}), "messages"),
        (json!({"messages": [1]}), "messages[0]"),
        (json!({"messages": [{"content": "x"}]}), "role"),
        (json!({"messages": [{"role": "robot", "content": "x"}]}), "unknown role"),
        (json!({"messages": [{"role": "user", "content": 5}]}), "content"),
        (json!({"messages": [{"role": "user"}]}), "content is missing"),
        (json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}), "image_url"),
        (json!({"messages": [{"role": "user", "content": [{"type": "text"}]}]}), "text"),
        (json!({"messages": [{"role": "user", "content": ["x"]}]}), "content part 0"),
        (json!({"messages": [{"role": "user", "name": 3, "content": "x"}]}), "name"),
        (json!({"messages": [{"role": "assistant", "content": "x", "tool_calls": {}}]}), "tool_calls"),
        (json!({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}]}), "arguments"),
        (json!({"messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]}), "name"),
        (json!({"messages": [{"role": "assistant", "reasoning_content": 1}]}), "reasoning_content"),
        (json!({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}), "tool_call_id"),
        (json!({"messages": [], "tools": {}}), "tools"),
        (json!({"messages": [], "tools": [{"type": "retrieval"}]}), "retrieval"),
        (json!({"messages": [], "tools": [{"type": "function"}]}), "function"),
        (json!({"messages": [], "tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}), "parameters"),
    ];
    for (request, needle) in cases {
        let msg = input_error(request.clone());
        assert!(msg.contains(needle), "{request}: {msg:?} should mention {needle:?}");
    }
    assert!(matches!("extreme".parse::<ReasoningEffort>(), Err(Error::Input(_))));
    assert_eq!("HIGH".parse::<ReasoningEffort>().unwrap(), ReasoningEffort::High);
    // A tool message without its author name cannot be rendered.
    let conv = Conversation { messages: vec![Message::new(Role::Tool, "x")], ..Default::default() };
    assert!(matches!(render_for_completion(&conv, tok()), Err(Error::Input(_))));
}

#[test]
fn builds_conversations_by_hand() {
    // The same prompt from the struct API and from the OpenAI format.
    let conv = Conversation {
        system: SystemOptions { reasoning: ReasoningEffort::Low, current_date: Some("2025-08-05".into()), ..Default::default() },
        instructions: Some("Be nice.".into()),
        tools: vec![ToolDef { name: "ping".into(), description: "Pings.".into(), parameters: None }],
        messages: vec![Message::new(Role::User, "hi")],
    };
    let request = json!({
        "messages": [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "ping", "description": "Pings."}}],
    });
    let from_openai = Conversation::from_openai_chat(&request, ReasoningEffort::Low, Some("2025-08-05".into())).unwrap();
    assert_eq!(from_openai, conv);
    let text = tok().decode(&render_for_completion(&conv, tok()).unwrap()).unwrap();
    assert!(text.contains("Current date: 2025-08-05\n\nReasoning: low"), "{text}");
    assert!(text.contains("type ping = () => any;"), "{text}");
    assert!(text.ends_with("<|start|>user<|message|>hi<|end|><|start|>assistant"), "{text}");
}
