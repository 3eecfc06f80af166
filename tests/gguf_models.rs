//! Whole GGUF models against exact references: tiny random llama / qwen2 / qwen3 files in
//! llama.cpp's tensor layout, with weights in every supported quantization, checked against a
//! float64 numpy forward of the same dequantized tensors (tests/reference/tiny_gguf.py):
//! logits at every position of a teacher-forced pass, decode through the KV cache, and greedy
//! continuations — with tensors whole, and split across small bindings with chunked prefill.

mod common;

use common::*;
use serde::Deserialize;
use wgpt::models::{KvCache, Model, Output, Want};

const TOL: f32 = common::budget::MODEL_LOGITS;

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
        check_kv(gpu, name, max_binding, chunk, KvCache::F32, TOL, true);
    }
}

/// Returns the largest |Δlogit| and whether every greedy continuation matched.
fn check_kv(
    gpu: std::sync::Arc<wgpt::gpu::Gpu>,
    name: &str,
    max_binding: Option<u64>,
    chunk: u32,
    kv: KvCache,
    tol: f32,
    assert_greedy: bool,
) -> (f32, bool) {
    let dir = fixture("gguf-tiny");
    let meta: Tiny = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let (shape, want) = read_npy(&dir.join(&meta.logits));
    let features = gpu.shader.name();
    let model = Model::load(gpu, &dir.join(&meta.gguf), &mut |_, _| {}).expect("load");
    let vocab = model.cfg.vocab_size as usize;
    assert_eq!(shape[1] as usize, vocab);
    let mut session = model.session_with(256, chunk, kv).expect("session");
    let mut worst = 0f32;
    let mut greedy_same = true;
    for case in &meta.cases {
        // Teacher-forced: the prompt in one pass, then the continuation one token at a time.
        let p = case.prompt.len();
        let rows = |i: usize| &want[(case.rows[0] + i) * vocab..][..vocab];
        session.reset();
        let Output::Logits(got) = pollster::block_on(session.forward(&case.prompt, Want::AllLogits)).unwrap() else { panic!() };
        for i in 0..p {
            let d = max_abs_diff(&got[i * vocab..][..vocab], rows(i));
            assert!(d <= tol, "{name}/{}: prefill position {i}: max |dlogit| {d}", case.name);
            worst = worst.max(d);
        }
        for (j, &tok) in case.continuation[..case.continuation.len() - 1].iter().enumerate() {
            let Output::Logits(got) = pollster::block_on(session.forward(&[tok], Want::LastLogits)).unwrap() else { panic!() };
            let d = max_abs_diff(&got, rows(p + j));
            assert!(d <= tol, "{name}/{}: decode position {}: max |dlogit| {d}", case.name, p + j);
            worst = worst.max(d);
        }
        assert_eq!(case.rows[1] - case.rows[0], p + case.continuation.len() - 1);
        // Greedy on the GPU, one pass at a time and with each next pass queued ahead.
        let ids = greedy(&mut session, &case.prompt, case.continuation.len());
        if assert_greedy {
            assert_eq!(ids, case.continuation, "{name}/{}: greedy continuation", case.name);
        }
        greedy_same &= ids == case.continuation;
        let ahead = greedy_ahead(&mut session, &case.prompt, case.continuation.len());
        assert_eq!(ahead, ids, "{name}/{}: greedy continuation, decoded ahead", case.name);
    }
    eprintln!(
        "{name} ({} KV cache, binding limit {max_binding:?}, chunk {chunk}, features {features}): max |dlogit| {worst:.3e}",
        kv.name()
    );
    (worst, greedy_same)
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
fn llama_q5_q2_k_q3_k_iq4_match_float64_reference() {
    check("llama-q2-iq4", None, 128);
}

#[test]
fn qwen2_with_qkv_biases_matches_float64_reference() {
    check("qwen2", None, 128);
}

#[test]
fn qwen3_with_qk_norms_matches_float64_reference() {
    check("qwen3", None, 128);
}

/// Largest |Δlogit| against the float64 reference allowed with the f16 KV cache.
const F16_KV_TOL: f32 = common::budget::F16_KV_DENSE_LOGITS;

#[test]
fn llama_with_f16_kv_cache_stays_close_to_float64_reference() {
    for (limit, chunk) in [(None, 128), (Some(8192), 3)] {
        let (f32_worst, _) = check_kv(gpu(limit), "llama-q8", limit, chunk, KvCache::F32, TOL, true);
        let (worst, greedy_same) = check_kv(gpu(limit), "llama-q8", limit, chunk, KvCache::F16, F16_KV_TOL, false);
        eprintln!("llama-q8 (limit {limit:?}, chunk {chunk}): f32 cache {f32_worst:.3e}, f16 cache {worst:.3e}, greedy identical with f16: {greedy_same}");
        assert!(greedy_same, "greedy continuation changed with the f16 cache");
        assert!(worst > f32_worst, "the f16 cache changed nothing");
    }
}

#[test]
fn llama_matches_with_tensors_split_and_chunked_prefill() {
    // 8 KiB per binding: every matrix split into many slices; prompts in chunks of 3.
    check("llama-q8", Some(8192), 3);
    check("llama-kquants", Some(8192), 5);
    check("llama-q2-iq4", Some(8192), 7);
}
