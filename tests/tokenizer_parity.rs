//! `Tokenizer::encode` against tiktoken's o200k_base `encode_ordinary` on a varied corpus
//! (`tests/fixtures/tokenizer/parity.jsonl`, written by `tests/reference/tokenizer_corpus.py`),
//! and `decode` back to the text.

use std::path::PathBuf;

use serde_json::Value;
use wgpt::tokenizer::Tokenizer;

#[test]
fn encodes_like_tiktoken_and_decodes_back() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tok = Tokenizer::o200k_harmony().unwrap();
    let corpus = std::fs::read_to_string(root.join("tests/fixtures/tokenizer/parity.jsonl")).unwrap();
    let (mut total, mut n_tokens) = (0, 0);
    let mut failures = Vec::new();
    for (line_no, line) in corpus.lines().enumerate() {
        let case: Value = serde_json::from_str(line).unwrap();
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        total += 1;
        n_tokens += want.len();
        let got = tok.encode(text).unwrap();
        if got != want {
            failures.push(format!("line {}: {text:?}\n  got  {got:?}\n  want {want:?}", line_no + 1));
            continue;
        }
        let back = tok.decode(&got).unwrap();
        if back != text {
            failures.push(format!("line {}: {text:?} decodes to {back:?}", line_no + 1));
        }
    }
    assert!(total >= 1500, "corpus too small: {total}");
    let shown: Vec<&String> = failures.iter().take(20).collect();
    assert!(
        failures.is_empty(),
        "{} of {total} strings differ from tiktoken o200k_base:\n{}",
        failures.len(),
        shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
    println!("tokenizer parity: {total} of {total} strings ({n_tokens} tokens) identical to tiktoken, all decode back");
}
