//! A 2-layer checkpoint at gpt-oss-20b's real widths (hidden 2880, 64/8 heads, 32 experts,
//! vocab 201088; 3.3 GB) against transformers at several positions of a prompt longer than the
//! 128-token window. Its LM head (1.16 GB) and expert tensors exceed lavapipe's 128 MiB binding
//! limit, so this exercises tensor splitting at full scale. Too large to commit or to run in CI:
//!
//!   python tests/reference/real_widths.py --out DIR
//!   WGPT_REAL_WIDTHS_DIR=DIR cargo test --release --test real_widths -- --ignored --nocapture

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::*;
use wgpt::models::{Model, Output, Want};

#[test]
#[ignore = "needs the 3.3 GB checkpoint from tests/reference/real_widths.py (WGPT_REAL_WIDTHS_DIR)"]
fn real_widths_match_transformers() {
    let dir = PathBuf::from(std::env::var("WGPT_REAL_WIDTHS_DIR").expect("set WGPT_REAL_WIDTHS_DIR"));
    let gpu = gpu(None);
    let t0 = Instant::now();
    let model = Model::load(gpu.clone(), &dir, &mut |_, _| {}).expect("load");
    eprintln!("loaded in {:.1}s on {}; binding limit {} bytes", t0.elapsed().as_secs_f64(), gpu.info.name, gpu.max_binding);
    assert_eq!(model.cfg.hidden_size, 2880);
    assert_eq!(model.cfg.vocab_size, 201088);
    let vocab = model.cfg.vocab_size as usize;
    for case in cases(&dir).cases {
        let positions = case.positions.clone().expect("positions");
        let (shape, want) = read_npy(&dir.join("reference").join(&case.logits));
        assert_eq!(shape, vec![positions.len() as u64, vocab as u64]);
        let mut session = model.session(4096, 128).unwrap();
        let t1 = Instant::now();
        let Output::Logits(got) = pollster::block_on(session.forward(&case.prompt, Want::AllLogits)).unwrap() else { panic!() };
        eprintln!("prefill of {} tokens: {:.1}s", case.prompt.len(), t1.elapsed().as_secs_f64());
        for (r, &pos) in positions.iter().enumerate() {
            let d = max_abs_diff(&got[pos * vocab..][..vocab], &want[r * vocab..][..vocab]);
            eprintln!("position {pos}: max |dlogit| {d:.3e}");
            assert!(d <= common::budget::MODEL_LOGITS, "position {pos}: max |dlogit| {d}");
        }
        session.reset();
        let mut ids = vec![];
        let mut out = pollster::block_on(session.forward(&case.prompt, Want::Argmax)).unwrap();
        let t2 = Instant::now();
        while let Output::Token(id) = out {
            ids.push(id);
            if ids.len() == case.continuation.len() {
                break;
            }
            out = pollster::block_on(session.forward(&[id], Want::Argmax)).unwrap();
        }
        eprintln!("decode: {:.2} tok/s", (ids.len() - 1) as f64 / t2.elapsed().as_secs_f64());
        assert_eq!(ids, case.continuation);
    }
}
