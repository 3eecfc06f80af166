//! `wgpt tokenize` and `wgpt render`: text and conversations to token ids.

use std::io::{BufRead, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use wgpt::chat::{Conversation, ReasoningEffort};
use wgpt::tokenizer::Tokenizer;

/// Without `jsonl`: all of stdin is one text, printed as one JSON array of ids.
/// With `jsonl`: each stdin line is a JSON string; each output line the JSON array of its ids.
pub fn tokenize(tokenizer: Option<&Path>, jsonl: bool) -> Result<()> {
    let tok = match tokenizer {
        Some(path) => Tokenizer::from_file(path)?,
        None => Tokenizer::o200k_harmony()?,
    };
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

/// Prints the harmony prompt ids (JSON array) of a chat-completions style request file.
pub fn render(messages: &Path, reasoning: &str, date: Option<String>) -> Result<()> {
    let effort = match reasoning.to_ascii_lowercase().as_str() {
        "low" => ReasoningEffort::Low,
        "medium" => ReasoningEffort::Medium,
        "high" => ReasoningEffort::High,
        other => anyhow::bail!("--reasoning {other:?}: expected low, medium or high"),
    };
    let text = std::fs::read_to_string(messages).with_context(|| format!("{}", messages.display()))?;
    let request: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", messages.display()))?;
    let conv = Conversation::from_openai_chat(&request, effort, date).with_context(|| format!("{}", messages.display()))?;
    let ids = conv.render_for_completion(&Tokenizer::o200k_harmony()?)?;
    println!("{}", serde_json::to_string(&ids)?);
    Ok(())
}
