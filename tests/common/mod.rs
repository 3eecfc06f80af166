//! Shared helpers for tests that run whole models against the transformers fixtures.
#![allow(dead_code)]

pub mod chat_model;
pub mod synth;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use wgpt::gpu::{Gpu, GpuOptions};

#[derive(Deserialize)]
pub struct Case {
    pub name: String,
    pub prompt: Vec<u32>,
    pub continuation: Vec<u32>,
    pub logits: String,
    /// When present, the logits file holds only these positions of a forward over the prompt.
    #[serde(default)]
    pub positions: Option<Vec<usize>>,
}

#[derive(Deserialize)]
pub struct Cases {
    pub cases: Vec<Case>,
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn cases(dir: &Path) -> Cases {
    let text = std::fs::read_to_string(dir.join("reference/cases.json")).expect("reference/cases.json");
    serde_json::from_str(&text).expect("cases.json")
}

/// Reads a float32 .npy file as (shape, values).
pub fn read_npy(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).expect("npy");
    let shape = npy.shape().to_vec();
    let data: Vec<f32> = npy.into_vec().expect("f32 npy");
    (shape, data)
}

pub fn gpu(max_binding: Option<u64>) -> Arc<Gpu> {
    Arc::new(pollster::block_on(Gpu::new(&GpuOptions { max_binding_bytes: max_binding, ..Default::default() })).expect("GPU adapter"))
}

/// Largest |a - b| over two logit rows.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// SmolLM2-135M-Instruct (Q4_1 GGUF) in the model cache, fetched by `scripts/fetch-models.sh`
/// (`.ci/run` fetches it before the tests).
pub fn smollm2() -> PathBuf {
    let dir = std::env::var_os("WGPT_MODELS").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from);
        cache.unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache")).join("wgpt/models")
    });
    let path = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(path.is_file(), "{} is missing: run scripts/fetch-models.sh first", path.display());
    path
}
