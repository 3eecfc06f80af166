//! Tokenizers built from GGUF tokenizer metadata (`Tokenizer::from_gguf_vocab`).
//!
//! - `llama` (SentencePiece BPE): a small model trained by `tests/reference/spm_vocab.py`, its
//!   pieces committed in `tests/fixtures/tokenizer/spm_bpe.json` with SentencePiece's own ids for a
//!   corpus; the ids here must be identical.
//! - `gpt2` (byte-level BPE): a small vocabulary trained by `tests/reference/bpe_pretokenizers.py`
//!   (`tests/fixtures/tokenizer/bpe_pre.json`) against Hugging Face `tokenizers` with the models'
//!   own pre-tokenizer patterns for seven `pre` values; and SmolLM2-135M-Instruct's vocabulary,
//!   read from its GGUF file, against llama.cpp's ids in `tests/fixtures/smollm2/tokenize.jsonl`
//!   and its chat prompts in `cases.json`.

mod common;

use std::path::PathBuf;

use serde_json::Value;
use wgpt::tokenizer::{GgufVocab, Tokenizer};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn spm_fixture() -> (GgufVocab, Vec<(String, Vec<u32>)>) {
    let text = std::fs::read_to_string(root().join("tests/fixtures/tokenizer/spm_bpe.json")).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let vocab: GgufVocab = serde_json::from_value(fixture["vocab"].clone()).unwrap();
    let cases = fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["text"].as_str().unwrap().to_string(), ids(&c["ids"])))
        .collect();
    (vocab, cases)
}

#[test]
fn sentencepiece_bpe_encodes_like_sentencepiece() {
    let (vocab, cases) = spm_fixture();
    let tok = Tokenizer::from_gguf_vocab(&vocab).unwrap();
    assert_eq!(tok.vocab_size(), vocab.tokens.len());
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    let mut byte_fallbacks = 0;
    for (text, want) in &cases {
        let got = tok.encode(text).unwrap();
        byte_fallbacks += got.iter().filter(|&&id| vocab.token_types[id as usize] == 6).count();
        if &got != want {
            failures.push(format!("{text:?}\n  got  {got:?}\n  want {want:?}"));
            continue;
        }
        // Decoding gives the text back behind the space that SentencePiece puts in front (a
        // written `▁` reads as the space it stands for, as in llama.cpp).
        let back = tok.decode(&got).unwrap();
        let expected = if text.is_empty() { String::new() } else { format!(" {}", text.replace('▁', " ")) };
        if back != expected {
            failures.push(format!("{text:?} decodes to {back:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert!(byte_fallbacks > 0, "the corpus should exercise byte fallback");
}

#[test]
fn sentencepiece_special_tokens() {
    let (vocab, _) = spm_fixture();
    let tok = Tokenizer::from_gguf_vocab(&vocab).unwrap();
    let (bos, eos) = (vocab.bos.unwrap(), vocab.eos.unwrap());
    assert_eq!((tok.bos(), tok.eos(), tok.add_bos()), (Some(bos), Some(eos), true));
    assert_eq!(tok.special("</s>").unwrap(), eos);
    assert_eq!(tok.token_text(bos).as_deref(), Some("<s>"));
    assert_eq!(tok.token_text(vocab.tokens.len() as u32), None);
    // "</s>" ends generation (by name and as eos).
    assert_eq!(tok.end_of_generation(), vec![eos]);

    // Typed control text stays text; a template's is recognised, and the text after a special
    // token gets its own leading space (llama.cpp's SPM behaviour).
    let typed = tok.encode("hi</s>").unwrap();
    assert!(!typed.contains(&eos), "{typed:?}");
    let mut want = tok.encode("hi").unwrap();
    want.push(eos);
    assert_eq!(tok.encode_with_special("hi</s>").unwrap(), want);
    let mut want = vec![bos];
    want.extend(tok.encode("hi").unwrap());
    assert_eq!(tok.encode_with_special("<s>hi").unwrap(), want);

    // A user-defined piece is matched even in ordinary text.
    let tool = tok.special("<tool>").unwrap();
    let mut want = tok.encode("a").unwrap();
    want.push(tool);
    want.extend(tok.encode("b").unwrap());
    assert_eq!(tok.encode("a<tool>b").unwrap(), want);
    assert_eq!(tok.decode(&[bos, tool, eos]).unwrap(), "<s><tool></s>");
}

#[test]
fn sentencepiece_without_space_prefix() {
    let (mut vocab, _) = spm_fixture();
    let with = Tokenizer::from_gguf_vocab(&vocab).unwrap();
    vocab.add_space_prefix = Some(false);
    let without = Tokenizer::from_gguf_vocab(&vocab).unwrap();
    // Without the prefix, a written leading space plays its part.
    assert_eq!(without.encode(" hello world").unwrap(), with.encode("hello world").unwrap());
    assert_ne!(without.encode("hello world").unwrap(), with.encode("hello world").unwrap());
}

/// SmolLM2's vocabulary, read from the GGUF file in the model cache.
fn smollm2() -> (GgufVocab, Tokenizer) {
    let (gguf, _map) = wgpt::loader::gguf::Gguf::open(&common::smollm2()).unwrap();
    let vocab = wgpt::models::gguf::vocab(&gguf).unwrap();
    assert_eq!((vocab.model.as_str(), vocab.pre.as_deref()), ("gpt2", Some("smollm")));
    let start = std::time::Instant::now();
    let tok = Tokenizer::from_gguf_vocab(&vocab).unwrap();
    println!("built the {}-token tokenizer in {:?}", vocab.tokens.len(), start.elapsed());
    (vocab, tok)
}

#[test]
fn gpt2_bpe_encodes_like_llama_cpp() {
    let (_, tok) = smollm2();
    let reference = smollm2_fixtures().join("tokenize.jsonl");
    let lines = std::fs::read_to_string(&reference).unwrap_or_else(|e| panic!("{}: {e}", reference.display()));
    let (mut total, mut failures) = (0, Vec::new());
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let text = case["text"].as_str().unwrap();
        let want = ids(&case["ids"]);
        total += 1;
        let got = tok.encode(text).unwrap();
        if got != want {
            failures.push(format!("{text:?}\n  got  {got:?}\n  want {want:?}"));
        } else if tok.decode(&got).unwrap() != text {
            failures.push(format!("{text:?} decodes to {:?}", tok.decode(&got).unwrap()));
        }
    }
    assert!(total >= 10, "{}: only {total} cases", reference.display());
    let shown: Vec<&str> = failures.iter().take(20).map(|s| s.as_str()).collect();
    assert!(failures.is_empty(), "{} of {total} differ:\n{}", failures.len(), shown.join("\n"));
}

#[test]
fn gpt2_special_tokens() {
    let (vocab, tok) = smollm2();
    let (start, end) = (tok.special("<|im_start|>").unwrap(), tok.special("<|im_end|>").unwrap());
    assert_eq!((start, end), (1, 2));
    let typed = tok.encode("<|im_start|>user").unwrap();
    assert!(!typed.contains(&start) && typed.len() > 2, "{typed:?}");
    let mut want = vec![start];
    want.extend(tok.encode("user\nhi").unwrap());
    want.push(end);
    assert_eq!(tok.encode_with_special("<|im_start|>user\nhi<|im_end|>").unwrap(), want);
    assert_eq!(tok.decode(&want).unwrap(), "<|im_start|>user\nhi<|im_end|>");
    // eos, <|endoftext|> and (as llama.cpp's FIM repo-name token) <reponame>.
    assert_eq!(tok.eos(), vocab.eos);
    assert_eq!(tok.end_of_generation(), vec![0, 2, 4]);
    assert!(!tok.add_bos());
}

#[test]
fn bad_vocabularies_are_clear_errors() {
    let (vocab, _) = spm_fixture();
    let err = |v: &GgufVocab| Tokenizer::from_gguf_vocab(v).err().expect("should fail").to_string();

    let mut v = vocab.clone();
    v.model = "bert".into();
    assert!(err(&v).contains("'bert'"), "{}", err(&v));

    let mut v = vocab.clone();
    v.model = "gpt2".into();
    v.pre = Some("mystery".into());
    assert!(err(&v).contains("'mystery'"), "{}", err(&v));

    let mut v = vocab.clone();
    v.tokens[10] = v.tokens[11].clone();
    assert!(err(&v).contains("duplicate token"), "{}", err(&v));

    let mut v = vocab.clone();
    v.eos = Some(v.tokens.len() as u32);
    assert!(err(&v).contains("eos"), "{}", err(&v));

    let mut v = vocab.clone();
    v.token_types.truncate(5);
    assert!(err(&v).contains("token types"), "{}", err(&v));

    let mut v = vocab;
    v.model = "gpt2".into();
    v.pre = Some("gpt-2".into());
    v.merges = vec!["nospace".into()];
    assert!(err(&v).contains("nospace"), "{}", err(&v));
}

/// llama.cpp's SmolLM2 references.
fn smollm2_fixtures() -> PathBuf {
    root().join("tests/fixtures/smollm2")
}

#[test]
fn smollm2_chat_prompts_match_llama_cpp() {
    use wgpt::chat::template::{concat, encode_chat, ChatTemplate, TemplateMessage};
    let (vocab, tok) = smollm2();
    let template = std::fs::read_to_string(root().join("tests/fixtures/chat/templates.json")).unwrap();
    let template: Value = serde_json::from_str(&template).unwrap();
    let source = template["templates"]["smollm2"]["source"].as_str().unwrap();
    let name = |id: Option<u32>| vocab.tokens[id.unwrap() as usize].clone();
    let tmpl = ChatTemplate::new(source, &name(vocab.bos), &name(vocab.eos)).unwrap();
    let path = smollm2_fixtures().join("cases.json");
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            .unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let msgs: Vec<TemplateMessage> = case["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| TemplateMessage::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
            .collect();
        let pieces = tmpl.render(&msgs, true).unwrap();
        assert_eq!(concat(&pieces), case["rendered"].as_str().unwrap(), "{}", case["name"]);
        assert_eq!(encode_chat(&tok, &pieces).unwrap(), ids(&case["prompt"]), "{}", case["name"]);
    }
}

#[test]
fn sentencepiece_streaming_decode_never_splits_a_character() {
    use wgpt::tokenizer::TextStream;
    let (vocab, _) = spm_fixture();
    let tok = Tokenizer::from_gguf_vocab(&vocab).unwrap();
    // Emoji and CJK go through byte fallback here: one character spans several tokens.
    let text = "emoji 🦀🎉 日本語 naïve";
    let ids = tok.encode(text).unwrap();
    assert!(ids.iter().filter(|&&id| vocab.token_types[id as usize] == 6).count() >= 8, "{ids:?}");
    let mut stream = TextStream::default();
    let mut out = String::new();
    for &id in &ids {
        let piece = stream.push(&tok, id).unwrap();
        assert!(!piece.contains('\u{FFFD}'), "broken piece {piece:?}");
        out.push_str(&piece);
    }
    out.push_str(&stream.finish(&tok).unwrap());
    assert_eq!(out, format!(" {text}"));
    assert!(tok.decode(&[vocab.tokens.len() as u32]).is_err());
}

#[test]
fn byte_level_bpe_pre_tokenizers_match_hugging_face() {
    let text = std::fs::read_to_string(root().join("tests/fixtures/tokenizer/bpe_pre.json")).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let base: GgufVocab = serde_json::from_value(fixture["vocab"].clone()).unwrap();
    let pres = fixture["cases"].as_object().unwrap();
    assert!(pres.len() >= 7);
    let mut failures = Vec::new();
    for (pre, cases) in pres {
        let vocab = GgufVocab { pre: Some(pre.clone()), ..base.clone() };
        let tok = Tokenizer::from_gguf_vocab(&vocab).unwrap();
        for case in cases.as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want = ids(&case["ids"]);
            let got = tok.encode(text).unwrap();
            if got != want {
                failures.push(format!("{pre}: {text:?}\n  got  {got:?}\n  want {want:?}"));
            } else if tok.decode(&got).unwrap() != text {
                failures.push(format!("{pre}: {text:?} decodes to {:?}", tok.decode(&got).unwrap()));
            }
        }
    }
    assert!(failures.is_empty(), "{} differ:\n{}", failures.len(), failures.join("\n"));
}
