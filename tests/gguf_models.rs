//! Whole GGUF models against exact references: tiny random llama / qwen2 / qwen3 files in
//! llama.cpp's tensor layout, with weights in every supported quantization, checked against a
//! float64 numpy forward of the same dequantized tensors (tests/reference/tiny_gguf.py):
//! logits at every position of a teacher-forced pass, decode through the KV cache, and greedy
//! continuations — with tensors whole, and split across small bindings with chunked prefill.

mod common;

use common::*;
use serde::Deserialize;
use wgpt::models::{Model, Output, Want};

const TOL: f32 = 1e-3;

#[derive(Deserialize)]
struct TinyCase {
    name: String,
    prompt: Vec<u32>,
    continuation: Vec<u32>,
    rows: [usize; 2],
}

#[derive(Deserialize)]
struct Tiny {
    gguf: String,
    logits: String,
    cases: Vec<TinyCase>,
}

/// With whole tensors, each file is checked on the device's optional shader features and on the
/// portable paths only; split tensors use the default features.
fn check(name: &str, max_binding: Option<u64>, chunk: u32) {
    let gpus = if max_binding.is_none() { gpu_modes(None) } else { vec![gpu(max_binding)] };
    for gpu in gpus {
        check_on(gpu, name, max_binding, chunk);
    }
}

fn check_on(gpu: std::sync::Arc<wgpt::gpu::Gpu>, name: &str, max_binding: Option<u64>, chunk: u32) {
    let dir = fixture("gguf-tiny");
    let meta: Tiny = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let (shape, want) = read_npy(&dir.join(&meta.logits));
    let features = gpu.shader.name();
    let model = Model::load(gpu, &dir.join(&meta.gguf), &mut |_, _| {}).expect("load");
    let vocab = model.cfg.vocab_size as usize;
    assert_eq!(shape[1] as usize, vocab);
    let mut session = model.session(256, chunk).expect("session");
    let mut worst = 0f32;
    for case in &meta.cases {
        // Teacher-forced: the prompt in one pass, then the continuation one token at a time.
        let p = case.prompt.len();
        let rows = |i: usize| &want[(case.rows[0] + i) * vocab..][..vocab];
        session.reset();
        let Output::Logits(got) = pollster::block_on(session.forward(&case.prompt, Want::AllLogits)).unwrap() else { panic!() };
        for i in 0..p {
            let d = max_abs_diff(&got[i * vocab..][..vocab], rows(i));
            assert!(d <= TOL, "{name}/{}: prefill position {i}: max |dlogit| {d}", case.name);
            worst = worst.max(d);
        }
        for (j, &tok) in case.continuation[..case.continuation.len() - 1].iter().enumerate() {
            let Output::Logits(got) = pollster::block_on(session.forward(&[tok], Want::LastLogits)).unwrap() else { panic!() };
            let d = max_abs_diff(&got, rows(p + j));
            assert!(d <= TOL, "{name}/{}: decode position {}: max |dlogit| {d}", case.name, p + j);
            worst = worst.max(d);
        }
        assert_eq!(case.rows[1] - case.rows[0], p + case.continuation.len() - 1);
        // Greedy on the GPU.
        let ids = greedy(&mut session, &case.prompt, case.continuation.len());
        assert_eq!(ids, case.continuation, "{name}/{}: greedy continuation", case.name);
        let ids = greedy_ahead(&mut session, &case.prompt, case.continuation.len());
        assert_eq!(ids, case.continuation, "{name}/{}: greedy continuation, decoded ahead", case.name);
    }
    eprintln!("{name} (binding limit {max_binding:?}, chunk {chunk}, features {features}): max |dlogit| {worst:.3e}");
}

#[test]
fn llama_q8_0_q4_0_q4_1_f16_matches_float64_reference() {
    check("llama-q8", None, 128);
}

#[test]
fn llama_k_quants_and_bf16_match_float64_reference() {
    check("llama-kquants", None, 128);
}

#[test]
fn qwen2_with_qkv_biases_matches_float64_reference() {
    check("qwen2", None, 128);
}

#[test]
fn qwen3_with_qk_norms_matches_float64_reference() {
    check("qwen3", None, 128);
}

#[test]
fn llama_matches_with_tensors_split_and_chunked_prefill() {
    // 8 KiB per binding: every matrix split into many slices; prompts in chunks of 3.
    check("llama-q8", Some(8192), 3);
    check("llama-kquants", Some(8192), 5);
}
