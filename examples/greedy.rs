//! Greedy continuation of a few token ids with the library API:
//! `cargo run --release --example greedy -- tests/fixtures/tiny 1 2 3`

use std::sync::Arc;

use wgpt::gpu::{Gpu, GpuOptions};
use wgpt::models::{Model, Output, Want};

fn main() -> wgpt::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "tests/fixtures/tiny".into());
    let prompt: Vec<u32> = args.filter_map(|a| a.parse().ok()).collect();
    let prompt = if prompt.is_empty() { vec![1, 2, 3] } else { prompt };

    let gpu = Arc::new(pollster::block_on(Gpu::new(&GpuOptions::from_env()?))?);
    let model = Model::load(gpu, std::path::Path::new(&dir), &mut |_, _| {})?;
    let mut session = model.session(1024, 128)?;
    let mut out = pollster::block_on(session.forward(&prompt, Want::Argmax))?;
    let mut ids = Vec::new();
    while let Output::Token(id) = out {
        ids.push(id);
        if ids.len() == 16 {
            break;
        }
        out = pollster::block_on(session.forward(&[id], Want::Argmax))?;
    }
    println!("{ids:?}");
    Ok(())
}
