//! gpt-oss from GGUF: the tiny gpt-oss fixture converted the way llama.cpp's converter lays it out
//! (tests/reference/gpt_oss_gguf.py: gate/up experts split, MXFP4 repacked into ggml blocks, F32
//! router and biases, BF16 matrices) must give the transformers references of the safetensors
//! fixture: logits at every prompt position, decode through the KV cache and greedy
//! continuations — whole, and with tensors split across 2 KiB bindings and chunked prefill.

mod common;

use common::*;
use wgpt::loader::gguf::Gguf;
use wgpt::models::{Arch, Model};

const TOL: f32 = common::budget::MODEL_LOGITS;

fn gguf_path() -> std::path::PathBuf {
    fixture("gguf-tiny").join("gpt-oss.gguf")
}

fn check(max_binding: Option<u64>, ctx: u32, chunk: u32) {
    let model = Model::load(gpu(max_binding), &gguf_path(), &mut |_, _| {}).expect("load");
    assert_eq!(model.cfg.arch, Arch::GptOss);
    assert!(cases(&fixture("tiny")).cases.len() >= 3);
    let worst = check_against_cases("gpt-oss.gguf", &model, &fixture("tiny"), ctx, chunk, TOL);
    eprintln!("gpt-oss.gguf (binding limit {max_binding:?}, ctx {ctx}, chunk {chunk}): max |dlogit| {worst:.3e}");
}

#[test]
fn gpt_oss_gguf_matches_transformers() {
    check(None, 4096, 128);
}

#[test]
fn gpt_oss_gguf_matches_transformers_with_tensors_split_and_chunked_prefill() {
    // 2 KiB per binding: embedding, LM head, experts (gate/up pairs kept together) split into many slices.
    check(Some(2048), 64, 5);
}

#[test]
fn gpt_oss_gguf_config_matches_the_checkpoint_config() {
    let (g, _map) = Gguf::open(&gguf_path()).unwrap();
    let cfg = wgpt::models::gguf::config(&g).unwrap();
    let hf = wgpt::models::gpt_oss::config::from_dir(&fixture("tiny")).unwrap();
    assert_eq!(cfg.arch, Arch::GptOss);
    assert_eq!(
        (cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim),
        (hf.hidden_size, hf.intermediate_size, hf.num_hidden_layers, hf.num_attention_heads, hf.num_key_value_heads, hf.head_dim)
    );
    assert_eq!((cfg.num_local_experts, cfg.num_experts_per_tok, cfg.sliding_window), (hf.num_local_experts, hf.num_experts_per_tok, hf.sliding_window));
    for l in 0..cfg.num_hidden_layers as usize {
        assert_eq!(cfg.is_sliding(l), hf.is_sliding(l), "layer {l}");
    }
    assert_eq!((cfg.swiglu_alpha, cfg.swiglu_limit), (hf.swiglu_alpha, hf.swiglu_limit));
    assert_eq!(cfg.eos_ids.clone(), hf.eos_ids.clone());
    // The same YaRN frequencies and concentration as the checkpoint's config.
    let (a, b) = (wgpt::models::rope::Rope::new(&cfg), wgpt::models::rope::Rope::new(&hf));
    assert_eq!(a.inv_freq, b.inv_freq);
    assert_eq!(a.attention_factor, b.attention_factor);
    assert!(a.attention_factor > 1.0, "YaRN concentration applied");
}

#[test]
fn gpt_oss_gguf_uses_the_harmony_chat_format() {
    let (g, _map) = Gguf::open(&gguf_path()).unwrap();
    let tok = wgpt::tokenizer::Tokenizer::from_gguf_vocab(&wgpt::models::gguf::vocab(&g).unwrap()).unwrap();
    let format = wgpt::chat::ChatFormat::from_gguf(&g, &tok).unwrap();
    assert!(matches!(format, wgpt::chat::ChatFormat::Harmony));
}

#[test]
fn gpt_oss_gguf_with_experts_that_are_not_mxfp4_is_refused_naming_the_type() {
    // Re-type blk.0.ffn_gate_exps.weight as Q8_0 in the header, with half the rows so that its
    // data keeps its size (34 bytes per 32 values instead of 17): the loader must name the type.
    let mut bytes = std::fs::read(gguf_path()).unwrap();
    let name = b"blk.0.ffn_gate_exps.weight";
    let at = bytes.windows(name.len()).position(|w| w == name).expect("tensor name in the header") + name.len();
    let n_dims = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(n_dims, 3);
    let ty = at + 4 + 8 * n_dims;
    assert_eq!(u32::from_le_bytes(bytes[ty..ty + 4].try_into().unwrap()), 39, "MXFP4 as written");
    let rows = at + 4 + 8;
    assert_eq!(u64::from_le_bytes(bytes[rows..rows + 8].try_into().unwrap()), 128);
    bytes[rows..rows + 8].copy_from_slice(&64u64.to_le_bytes());
    bytes[ty..ty + 4].copy_from_slice(&8u32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q8-experts.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let err = match Model::load(gpu(None), &path, &mut |_, _| {}) {
        Ok(_) => panic!("loaded experts of type Q8_0"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("blk.0.ffn_gate_exps.weight") && err.contains("Q8_0") && err.contains("MXFP4"), "{err}");
}
