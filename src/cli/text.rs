//! `wgpt tokenize`: text to token ids, for checks and for people curious about the tokenizer.

use std::io::{BufRead, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use wgpt::tokenizer::Tokenizer;

/// Without `jsonl`: all of stdin is one text, printed as one JSON array of ids.
/// With `jsonl`: each stdin line is a JSON string; each output line the JSON array of its ids.
pub fn tokenize(tokenizer: &Path, jsonl: bool) -> Result<()> {
    let tok = Tokenizer::from_file(tokenizer)?;
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if jsonl {
        for (i, line) in stdin.lock().lines().enumerate() {
            let line = line.context("reading stdin")?;
            if line.trim().is_empty() {
                continue;
            }
            let text: String =
                serde_json::from_str(&line).with_context(|| format!("stdin line {}: expected a JSON string", i + 1))?;
            writeln!(out, "{}", serde_json::to_string(&tok.encode(&text)?)?)?;
        }
    } else {
        let mut text = String::new();
        stdin.lock().read_to_string(&mut text).context("reading stdin (expected UTF-8 text)")?;
        writeln!(out, "{}", serde_json::to_string(&tok.encode(&text)?)?)?;
    }
    out.flush()?;
    Ok(())
}
