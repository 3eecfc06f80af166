//! Writes small gpt-oss checkpoints with the real o200k_harmony vocabulary whose greedy answer is
//! known, for the browser chat tests: `cargo run --example scripted_chat_model -- OUT_DIR`.
//! `OUT_DIR/final` answers "Hello from wgpt!" and then keeps talking in the final channel (so an
//! answer can be stopped); `OUT_DIR/analysis` reasons without end in the analysis channel.

#[path = "../tests/common/synth.rs"]
#[allow(dead_code)]
mod synth;
#[path = "../tests/common/chat_model.rs"]
#[allow(dead_code)]
mod chat_model;

use std::collections::HashMap;
use std::path::Path;

use synth::{write_checkpoint, Fill, Shape};
use wgpt::tokenizer::Tokenizer;

/// Maps each token of `path` to the next one; the last one goes back to `path[loop_from]`.
fn script(path: &[u32], loop_from: usize) -> HashMap<u32, u32> {
    let mut next: HashMap<u32, u32> = path.windows(2).map(|w| (w[0], w[1])).collect();
    next.insert(*path.last().unwrap(), path[loop_from]);
    assert_eq!(next.len(), path.len(), "the script needs distinct tokens");
    next
}

fn main() -> wgpt::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "target/web-models".into());
    let tok = Tokenizer::o200k_harmony()?;
    let tokenizer_json = chat_model::tokenizer_json();
    let header = |channel: &str| -> wgpt::Result<Vec<u32>> {
        let mut s = vec![tok.encode("assistant")?[0], tok.special("<|channel|>")?];
        s.extend(tok.encode(channel)?);
        s.push(tok.special("<|message|>")?);
        Ok(s)
    };
    for (name, channel, text, loop_text) in [
        ("final", "final", "Hello from wgpt!", " One two three four five six seven eight nine ten."),
        ("analysis", "analysis", "Thinking", " about colours: red green blue yellow purple orange."),
    ] {
        let mut path = header(channel)?;
        path.extend(tok.encode(text)?);
        let loop_from = path.len();
        path.extend(tok.encode(loop_text)?);
        let dir = Path::new(&out).join(name);
        write_checkpoint(&dir, &Shape::tiny_real_vocab(), Fill::Script { next: &script(&path, loop_from) }, Some(&tokenizer_json));
        eprintln!("wrote {}", dir.display());
    }
    Ok(())
}
