//! Chat templates rendered by `ChatTemplate` against transformers' `apply_chat_template`
//! rendering (`tests/fixtures/chat/templates.json`, written by
//! `tests/reference/chat_templates.py`), and prompts tokenized by `encode_chat`.

use std::path::PathBuf;

use serde_json::Value;
use wgpt::chat::template::{concat, content_forms, encode_chat, ChatTemplate, Piece, TemplateMessage};
use wgpt::tokenizer::{GgufVocab, Tokenizer};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> Value {
    let text = std::fs::read_to_string(root().join("tests/fixtures/chat/templates.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn messages(v: &Value) -> Vec<TemplateMessage> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| TemplateMessage::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

#[test]
fn renders_like_transformers() {
    let fx = fixture();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 32, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let name = case["template"].as_str().unwrap();
        let t = &fx["templates"][name];
        let tmpl =
            ChatTemplate::new(t["source"].as_str().unwrap(), t["bos"].as_str().unwrap(), t["eos"].as_str().unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        let conv = case["conversation"].as_str().unwrap();
        let msgs = messages(&fx["conversations"][conv]);
        let gen = case["add_generation_prompt"].as_bool().unwrap();
        let label = format!("{name}/{conv}/gen={gen}");
        match (tmpl.render(&msgs, gen), case.get("output")) {
            (Ok(pieces), Some(want)) => {
                let got = concat(&pieces);
                if got != want.as_str().unwrap() {
                    failures.push(format!("{label}:\n  got  {got:?}\n  want {want:?}"));
                }
                // Every content piece is a message's content (as written, trimmed or
                // JSON-escaped), and every non-empty content shows up as content.
                for p in &pieces {
                    if let Piece::Content(c) = p {
                        if !msgs.iter().any(|m| content_forms(&m.content).contains(c)) {
                            failures.push(format!("{label}: content piece {c:?} is no message"));
                        }
                    }
                }
                for m in msgs.iter().filter(|m| !m.content.trim().is_empty()) {
                    let forms = content_forms(&m.content);
                    let shown = pieces.iter().any(|p| matches!(p, Piece::Content(c) if forms.contains(c)));
                    if !shown {
                        failures.push(format!("{label}: {:?} is not a content piece in {pieces:?}", m.content));
                    }
                }
            }
            (Err(e), None) => {
                let want = case["error"].as_str().unwrap();
                if !e.to_string().contains(want) {
                    failures.push(format!("{label}: error {e} does not say {want:?}"));
                }
            }
            (Ok(pieces), None) => failures.push(format!("{label}: rendered {:?}, want an error", concat(&pieces))),
            (Err(e), Some(_)) => failures.push(format!("{label}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn user_text_that_looks_like_control_tokens_stays_content() {
    let fx = fixture();
    let t = &fx["templates"]["chatml"];
    let tmpl = ChatTemplate::new(t["source"].as_str().unwrap(), "", "<|im_end|>").unwrap();
    let msgs = vec![TemplateMessage::new("user", "a<|im_end|>b")];
    let pieces = tmpl.render(&msgs, true).unwrap();
    assert_eq!(
        pieces,
        vec![
            Piece::Template("<|im_start|>user\n".into()),
            Piece::Content("a<|im_end|>b".into()),
            Piece::Template("<|im_end|>\n<|im_start|>assistant\n".into()),
        ]
    );
}

#[test]
fn template_errors_are_clear() {
    let err = ChatTemplate::new("{% for x in %}", "", "").err().unwrap().to_string();
    assert!(err.contains("chat template"), "{err}");
    let tmpl = ChatTemplate::new("{{ raise_exception('no system messages') }}", "", "").unwrap();
    let err = tmpl.render(&[], false).unwrap_err().to_string();
    assert!(err.contains("no system messages"), "{err}");
}

#[test]
fn strftime_now_and_python_methods() {
    let tmpl = ChatTemplate::new(
        "{{ strftime_now('%Y') }}|{{ ' x '.strip() }}|{{ 'a,b'.split(',') | join('+') }}|{{ 'Hi'.lower() }}|{{ tools is none }}",
        "",
        "",
    )
    .unwrap();
    let out = tmpl.render_text(&[], false).unwrap();
    let (year, rest) = out.split_once('|').unwrap();
    let year: i32 = year.parse().unwrap();
    assert!((2024..2200).contains(&year), "{out}");
    assert_eq!(rest, "x|a+b|hi|True");
}

fn spm_tokenizer() -> (GgufVocab, Tokenizer) {
    let text = std::fs::read_to_string(root().join("tests/fixtures/tokenizer/spm_bpe.json")).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let vocab: GgufVocab = serde_json::from_value(fixture["vocab"].clone()).unwrap();
    let tok = Tokenizer::from_gguf_vocab(&vocab).unwrap();
    (vocab, tok)
}

#[test]
fn encode_chat_places_template_tokens_and_keeps_contents_text() {
    let (vocab, tok) = spm_tokenizer();
    let (bos, eos) = (vocab.bos.unwrap(), vocab.eos.unwrap());
    let fx = fixture();
    let tmpl = ChatTemplate::new(fx["templates"]["namespace"]["source"].as_str().unwrap(), "<s>", "</s>").unwrap();

    // Plain contents: the same ids as tokenizing the whole rendered prompt with special tokens
    // recognised (what llama.cpp does).
    let msgs = vec![
        TemplateMessage::new("system", "Be brief."),
        TemplateMessage::new("user", "What is WebGPU?"),
        TemplateMessage::new("assistant", "A graphics API."),
        TemplateMessage::new("user", "Thanks"),
    ];
    let pieces = tmpl.render(&msgs, true).unwrap();
    let ids = encode_chat(&tok, &pieces).unwrap();
    // The template starts with the system text, so the bos the tokenizer asks for comes first.
    assert_eq!(ids[0], bos);
    assert_eq!(ids[1..].to_vec(), tok.encode_with_special(&concat(&pieces)).unwrap());
    assert_eq!(ids[1..].iter().filter(|&&i| i == bos).count(), 2, "template writes <s> per user turn");
    assert_eq!(ids.iter().filter(|&&i| i == eos).count(), 1);

    // A user typing </s> gets text, not the end-of-sequence token.
    let msgs = vec![TemplateMessage::new("user", "stop</s>now")];
    let pieces = tmpl.render(&msgs, false).unwrap();
    let ids = encode_chat(&tok, &pieces).unwrap();
    assert!(!ids.contains(&eos), "{ids:?}");
    assert!(tok.encode_with_special(&concat(&pieces)).unwrap().contains(&eos));
    // The template wrote <s> first: no second one.
    assert_eq!(ids.iter().filter(|&&i| i == bos).count(), 1);

    // The tokenizer asks for bos: it is put first when the template does not write it.
    let chatml = ChatTemplate::new(fx["templates"]["chatml"]["source"].as_str().unwrap(), "<s>", "</s>").unwrap();
    let pieces = chatml.render(&[TemplateMessage::new("user", "hi")], true).unwrap();
    let ids = encode_chat(&tok, &pieces).unwrap();
    assert_eq!(ids[0], bos);
    assert_eq!(ids[1..].to_vec(), tok.encode_with_special(&concat(&pieces)).unwrap());
}

#[test]
fn runaway_templates_are_stopped_with_an_error_naming_the_chat_template() {
    // 10^12 iterations: stopped by the step budget, quickly.
    let t0 = std::time::Instant::now();
    let tmpl = ChatTemplate::new(
        "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}{% endfor %}{% endfor %}{% endfor %}",
        "",
        "",
    )
    .unwrap();
    let err = tmpl.render(&[TemplateMessage::new("user", "hi")], true).unwrap_err().to_string();
    assert!(err.contains("chat template") && err.contains("steps"), "{err}");
    assert!(t0.elapsed().as_secs() < 30, "took {:?}", t0.elapsed());
    // Output far larger than any prompt: stopped by the size cap.
    let tmpl = ChatTemplate::new("{% for a in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "", "").unwrap();
    let err = tmpl.render_text(&[], true).unwrap_err().to_string();
    assert!(err.contains("chat template") && err.contains("wrote more than"), "{err}");
    // An ordinary template over many messages stays well within both.
    let many: Vec<TemplateMessage> = (0..2000).map(|i| TemplateMessage::new(if i % 2 == 0 { "user" } else { "assistant" }, format!("message {i}"))).collect();
    let fx = fixture();
    let source = fx["templates"]["namespace"]["source"].as_str().unwrap();
    let tmpl = ChatTemplate::new(source, "<s>", "</s>").unwrap();
    let text = tmpl.render_text(&many, true).unwrap();
    assert!(text.contains("message 1999"), "{}", &text[text.len().saturating_sub(200)..]);
}

#[test]
fn a_conversation_without_a_user_message_asks_for_one() {
    use wgpt::chat::{ChatFormat, Conversation, Message, Role};
    let (_, tok) = spm_tokenizer();
    let template = ChatFormat::Template { template: std::sync::Arc::new(ChatTemplate::new("{% for m in messages %}{{ m.content }}{% endfor %}", "<s>", "</s>").unwrap()), stop: vec![] };
    for format in [template, ChatFormat::Harmony] {
        let conv = Conversation { messages: vec![Message::new(Role::System, "You are terse.")], ..Default::default() };
        let err = format.render(&tok, &conv).unwrap_err().to_string();
        assert!(err.contains("user message"), "{err}");
        let conv = Conversation { instructions: Some("Be terse.".into()), ..Default::default() };
        let err = format.render(&tok, &conv).unwrap_err().to_string();
        assert!(err.contains("user message"), "{err}");
    }
}

#[test]
fn syntax_errors_are_one_line_even_where_minijinja_debug_output_breaks() {
    // minijinja's alternate (debug) error form underflows on this span.
    let src = "{% for in messages %}{{ message['content'] }}{% endfor %}";
    let err = match ChatTemplate::new(src, "", "") {
        Err(e) => e.to_string(),
        Ok(t) => t.render(&[TemplateMessage::new("user", "hi")], true).unwrap_err().to_string(),
    };
    assert!(err.contains("chat template") && !err.contains('\n'), "{err}");
}
