//! A minimal terminal chat on the library API:
//! `cargo run --release --example chat -- [MODEL]` (a directory or a Hugging Face repo id).

use std::io::{BufRead, Write};
use std::sync::Arc;

use wgpt::chat::Event;
use wgpt::engine::{Budget, Engine, LoadEvent};
use wgpt::gpu::{Gpu, GpuOptions};

fn main() -> wgpt::Result<()> {
    let model = std::env::args().nth(1).unwrap_or_else(|| "openai/gpt-oss-20b".into());
    let gpu = Arc::new(pollster::block_on(Gpu::new(&GpuOptions::from_env()?))?);
    let engine = Engine::open(gpu, &model, &mut |ev| {
        if let LoadEvent::Upload { done, total } = ev {
            eprint!("\rloading {:3}%", done * 100 / total.max(1));
        }
    })?;
    eprintln!("\nType a message (an empty line quits).");
    let mut chat = engine.chat(8192)?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| wgpt::Error::Input(e.to_string()))?;
        if line.trim().is_empty() {
            break;
        }
        chat.send(&line)?;
        while chat.is_busy() {
            for ev in pollster::block_on(chat.step(Budget::tokens(1)))? {
                // Only the final answer is shown; the reasoning is on the "analysis" channel.
                if let Event::Delta { channel, text } = ev {
                    if channel.as_deref() == Some("final") {
                        print!("{text}");
                        std::io::stdout().flush().ok();
                    }
                }
            }
        }
        println!();
    }
    Ok(())
}
