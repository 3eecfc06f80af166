//! Decoder-only transformers on the GPU. One [`Model`] type runs every supported architecture:
//! gpt-oss (MoE with attention sinks, sliding windows, YaRN RoPE, MXFP4 experts, read from
//! Hugging Face safetensors or GGUF) and the dense Llama family (llama, qwen2, qwen3, read from
//! GGUF). The [`Config`] and the [`weights::Weights`] say which parts a layer has; a [`Session`]
//! holds one sequence's KV cache and runs prefill (chunked) and decode through the model.

use std::sync::Arc;

use crate::error::Result;
use crate::gpu::Gpu;
use crate::sampling::SamplingParams;

pub mod config;
pub mod gguf;
pub mod gpt_oss;
pub mod load;
pub mod rope;
mod session;
pub mod weights;

pub use config::{Arch, Config};
#[cfg(not(target_arch = "wasm32"))]
pub use load::MappedModel;
pub use load::{ModelHeader, Upload};
use rope::Rope;
pub use crate::ops::KvCache;
pub use session::{PassEvent, Session};
use weights::Weights;

/// Default KV-cache context in tokens.
pub const DEFAULT_CTX: u32 = 4096;
/// Default number of prompt tokens per prefill pass.
pub const DEFAULT_CHUNK: u32 = 128;

/// A model's weights on the GPU with its configuration. Shared: every session holds a reference.
pub struct Model {
    pub cfg: Config,
    pub gpu: Arc<Gpu>,
    weights: Weights,
    rope: Rope,
}

/// What a forward pass returns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Want<'a> {
    /// Logits at every position of the input, [n, vocab].
    AllLogits,
    /// Logits of the last position, [vocab].
    LastLogits,
    /// Only the argmax of the last position (greedy); reads back 4 bytes.
    Argmax,
    /// A token sampled on the GPU from the last position; reads back 4 bytes. The random draw
    /// is keyed by the seed and the position of the new token.
    Sample(&'a SamplingParams),
}

#[derive(Debug)]
pub enum Output {
    Logits(Vec<f32>),
    Token(u32),
}

impl Model {
    /// Loads a model onto the GPU: a Hugging Face gpt-oss checkpoint directory or a GGUF file
    /// (see [`load`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(gpu: Arc<Gpu>, path: &std::path::Path, progress: weights::Progress) -> Result<Arc<Model>> {
        MappedModel::open(path)?.load(gpu, progress)
    }

    /// The model from weights already on the GPU, with the RoPE frequencies its config names.
    pub fn from_weights(gpu: Arc<Gpu>, cfg: Config, weights: Weights) -> Arc<Model> {
        let rope = Rope::new(&cfg);
        Self::from_parts(gpu, cfg, weights, rope)
    }

    /// The model from weights already on the GPU and its RoPE frequencies.
    pub fn from_parts(gpu: Arc<Gpu>, cfg: Config, weights: Weights, rope: Rope) -> Arc<Model> {
        Arc::new(Model { cfg, gpu, weights, rope })
    }

    /// Bytes of weights one decoded token reads.
    pub fn weight_bytes_per_token(&self) -> u64 {
        if self.cfg.num_local_experts > 0 {
            self.cfg.moe_weight_bytes_per_token()
        } else {
            self.weights.dense_bytes_per_token()
        }
    }

    /// A new sequence with a KV cache of `ctx` tokens; prompts are processed `chunk` tokens at a
    /// time. Sessions of one model are independent and may live on other threads.
    pub fn session(self: &Arc<Self>, ctx: u32, chunk: u32) -> Result<Session> {
        Session::new(self.clone(), ctx, chunk, KvCache::F32)
    }

    /// `session` with the KV cache stored as `kv`: `KvCache::F16` halves its bytes per token
    /// (keys and values rounded to f16).
    pub fn session_with(self: &Arc<Self>, ctx: u32, chunk: u32, kv: KvCache) -> Result<Session> {
        Session::new(self.clone(), ctx, chunk, kv)
    }
}
