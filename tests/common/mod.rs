//! Shared helpers for tests that run whole models against the transformers fixtures.
#![allow(dead_code)]

pub mod budget;
pub mod chat_model;
pub mod check;
pub mod synth;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use wgpt::gpu::{Gpu, GpuOptions, ShaderFeatures};

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

/// The device twice: with every optional shader feature it has, and with the portable paths
/// only (`WGPT_FEATURES=none`), so each check covers both variants of every kernel.
pub fn gpu_modes(max_binding: Option<u64>) -> Vec<Arc<Gpu>> {
    [None, Some(ShaderFeatures::NONE)]
        .into_iter()
        .map(|features| {
            let opts = GpuOptions { max_binding_bytes: max_binding, features, ..Default::default() };
            Arc::new(pollster::block_on(Gpu::new(&opts)).expect("GPU adapter"))
        })
        .collect()
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

/// `n` greedy ids after `prompt`, from position 0: argmax on the GPU, one id read back per step.
pub fn greedy(session: &mut wgpt::models::Session, prompt: &[u32], n: usize) -> Vec<u32> {
    use wgpt::models::{Output, Want};
    session.reset();
    let mut ids = vec![];
    let mut out = pollster::block_on(session.forward(prompt, Want::Argmax)).unwrap();
    while let Output::Token(id) = out {
        ids.push(id);
        if ids.len() == n {
            break;
        }
        out = pollster::block_on(session.forward(&[id], Want::Argmax)).unwrap();
    }
    ids
}

/// `n` greedy ids after `prompt` with each next pass queued before the previous id is read
/// (`Session::decode_next`); must equal `greedy`.
pub fn greedy_ahead(session: &mut wgpt::models::Session, prompt: &[u32], n: usize) -> Vec<u32> {
    use wgpt::models::{Output, Want};
    session.reset();
    let Output::Token(mut id) = pollster::block_on(session.forward(prompt, Want::Argmax)).unwrap() else { panic!() };
    let mut ids = vec![id];
    while ids.len() < n {
        let ahead = ids.len() + 1 < n;
        id = pollster::block_on(session.decode_next(id, Want::Argmax, ahead)).unwrap();
        ids.push(id);
    }
    ids
}

/// A model against a transformers fixture's cases (`dir/reference/cases.json`): logits at every
/// prompt position, at every decode step through the KV cache, and the greedy continuation.
/// Returns the largest |Δlogit| seen.
pub fn check_against_cases(what: &str, model: &Arc<wgpt::models::Model>, dir: &Path, ctx: u32, chunk: u32, tol: f32) -> f32 {
    let mut session = model.session(ctx, chunk).expect("session");
    check_session_against_cases(what, model, &mut session, dir, tol, true).0
}

/// `check_against_cases` on a given session; the greedy continuations are asserted only when
/// `assert_greedy`. Returns the largest |Δlogit| and whether every greedy continuation matched.
pub fn check_session_against_cases(
    what: &str,
    model: &Arc<wgpt::models::Model>,
    session: &mut wgpt::models::Session,
    dir: &Path,
    tol: f32,
    assert_greedy: bool,
) -> (f32, bool) {
    use wgpt::models::{Output, Want};
    let vocab = model.cfg.vocab_size as usize;
    let mut worst = 0f32;
    let mut greedy_same = true;
    let all = cases(dir).cases;
    assert!(!all.is_empty(), "{what}: no cases");
    for case in all {
        let (shape, want) = read_npy(&dir.join("reference").join(&case.logits));
        let p = case.prompt.len();
        assert_eq!(shape, vec![(p + case.continuation.len()) as u64, vocab as u64]);

        // Prefill: logits at every prompt position.
        session.reset();
        let Output::Logits(got) = pollster::block_on(session.forward(&case.prompt, Want::AllLogits)).unwrap() else { panic!() };
        for row in 0..p {
            let d = max_abs_diff(&got[row * vocab..][..vocab], &want[row * vocab..][..vocab]);
            assert!(d <= tol, "{what}/{}: prefill position {row}: max |dlogit| {d}", case.name);
            worst = worst.max(d);
        }
        // Decode: one token at a time through the cache, past the sliding window.
        for (i, &tok) in case.continuation.iter().enumerate() {
            let Output::Logits(got) = pollster::block_on(session.forward(&[tok], Want::LastLogits)).unwrap() else { panic!() };
            let row = p + i;
            let d = max_abs_diff(&got, &want[row * vocab..][..vocab]);
            assert!(d <= tol, "{what}/{}: decode position {row}: max |dlogit| {d}", case.name);
            worst = worst.max(d);
        }
        let ids = greedy(session, &case.prompt, case.continuation.len());
        if assert_greedy {
            assert_eq!(ids, case.continuation, "{what}/{}: greedy continuation", case.name);
        }
        greedy_same &= ids == case.continuation;
        // Each next pass queued before the previous token is read: the same tokens.
        let ahead = greedy_ahead(session, &case.prompt, case.continuation.len());
        assert_eq!(ahead, ids, "{what}/{}: greedy continuation, decoded ahead", case.name);
    }
    (worst, greedy_same)
}
