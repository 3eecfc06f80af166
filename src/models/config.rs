//! A model's hyperparameters, validated before any weight is read: from a gpt-oss `config.json`
//! (Hugging Face layout) or from GGUF metadata (see `models::gguf`).

use crate::error::{Error, Result};
use crate::ops::KvCache;

/// YaRN scaling of RoPE frequencies (gpt-oss): the hub config's `rope_scaling`, or the
/// `rope.scaling.*` metadata of a GGUF file.
#[derive(Clone, Debug, PartialEq)]
pub struct Yarn {
    pub factor: f64,
    pub beta_fast: Option<f64>,
    pub beta_slow: Option<f64>,
    pub original_max_position_embeddings: Option<u64>,
    /// Whether the ramp's ends are rounded to whole dimensions (gpt-oss: false).
    pub truncate: bool,
    pub attention_factor: Option<f64>,
    /// A base that replaces `rope_theta` for the scaled frequencies.
    pub rope_theta: Option<f64>,
}

/// The architecture family, which decides the parts of a layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Arch {
    #[default]
    GptOss,
    Llama,
    Qwen2,
    Qwen3,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::GptOss => "gpt-oss",
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }
}

/// The runtime hyperparameters of a model, built by each format's reader (a gpt-oss
/// `config.json`: `gpt_oss::config`; GGUF metadata: `gguf::config`) and validated there.
#[derive(Clone, Debug)]
pub struct Config {
    pub arch: Arch,
    /// RoPE rotates pairs (x[2i], x[2i+1]) instead of NeoX halves (llama as stored in GGUF).
    pub rope_interleaved: bool,
    pub vocab_size: u32,
    pub hidden_size: u32,
    pub intermediate_size: u32,
    pub num_hidden_layers: u32,
    pub num_attention_heads: u32,
    pub num_key_value_heads: u32,
    pub head_dim: u32,
    /// 0 for dense models.
    pub num_local_experts: u32,
    pub num_experts_per_tok: u32,
    /// 0 when no layer slides.
    pub sliding_window: u32,
    /// Which layers use the sliding window, one entry per layer; None: the even layers
    /// (gpt-oss's pattern).
    pub sliding_layers: Option<Vec<bool>>,
    pub rms_norm_eps: f32,
    pub rope_theta: f64,
    pub rope_scaling: Option<Yarn>,
    pub max_position_embeddings: u32,
    pub swiglu_limit: f32,
    pub swiglu_alpha: f32,
    /// The LM head is the embedding matrix.
    pub tie_word_embeddings: bool,
    /// End-of-sequence ids the model's files name.
    pub eos_ids: Vec<u32>,
}

/// Upper bounds of the sizes a configuration may give (see [`Config::check_ranges`]).
pub const MAX_VOCAB: u32 = 1 << 22;
pub const MAX_HIDDEN: u32 = 1 << 16;
pub const MAX_INTERMEDIATE: u32 = 1 << 18;
pub const MAX_LAYERS: u32 = 1024;
pub const MAX_HEADS: u32 = 1024;
pub const MAX_POSITIONS: u32 = 1 << 24;

impl Config {
    /// Checks the hyperparameters of a mixture-of-experts (gpt-oss) model, whatever file they came from.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: String| Err(Error::ConfigField { field: field.to_string(), message });
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
            ("num_local_experts", self.num_local_experts),
            ("num_experts_per_tok", self.num_experts_per_tok),
            ("sliding_window", self.sliding_window),
        ];
        for (k, v) in positive {
            if v == 0 {
                return bad(k, "must be positive".into());
            }
        }
        self.check_ranges()?;
        if !self.hidden_size.is_multiple_of(32) || !self.intermediate_size.is_multiple_of(32) {
            return bad("hidden_size", format!(
                "{} and intermediate_size {} must be multiples of 32 (MXFP4 blocks)",
                self.hidden_size, self.intermediate_size
            ));
        }
        if !self.head_dim.is_multiple_of(2) || self.head_dim > 256 {
            return bad("head_dim", format!("{} must be even and at most 256", self.head_dim));
        }
        if !self.num_attention_heads.is_multiple_of(self.num_key_value_heads) {
            return bad("num_attention_heads", format!(
                "{} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if self.num_local_experts > 256 || self.num_experts_per_tok > 16 || self.num_experts_per_tok > self.num_local_experts {
            return bad("num_local_experts", format!(
                "{} with {} per token is not supported (at most 256 experts and 16 per token)",
                self.num_local_experts, self.num_experts_per_tok
            ));
        }
        if let Some(sliding) = &self.sliding_layers {
            if sliding.len() != self.num_hidden_layers as usize {
                return bad("layer_types", format!("has {} entries for {} layers", sliding.len(), self.num_hidden_layers));
            }
        }
        Ok(())
    }

    /// Every size and constant of the configuration within sane bounds, so that nothing is
    /// sized from an absurd number before the tensors that should match it are looked at. The
    /// bounds are generous (several times the largest published models) but keep every count
    /// that the loader or the sessions iterate over small.
    pub(crate) fn check_ranges(&self) -> Result<()> {
        let bad = |field: &str, message: String| Err(Error::ConfigField { field: field.to_string(), message });
        let upper: [(&str, u32, u32); 11] = [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_HIDDEN),
            ("intermediate_size", self.intermediate_size, MAX_INTERMEDIATE),
            ("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS),
            ("num_attention_heads", self.num_attention_heads, MAX_HEADS),
            ("num_key_value_heads", self.num_key_value_heads, MAX_HEADS),
            ("head_dim", self.head_dim, 256),
            ("num_local_experts", self.num_local_experts, 256),
            ("num_experts_per_tok", self.num_experts_per_tok, 16),
            ("sliding_window", self.sliding_window, MAX_POSITIONS),
            ("max_position_embeddings", self.max_position_embeddings, MAX_POSITIONS),
        ];
        for (k, v, max) in upper {
            if v > max {
                return bad(k, format!("{v} is out of range (at most {max})"));
            }
        }
        if self.max_position_embeddings == 0 {
            return bad("max_position_embeddings", "must be positive".into());
        }
        if self.num_key_value_heads > self.num_attention_heads {
            return bad("num_key_value_heads", format!(
                "{} is more than num_attention_heads {}",
                self.num_key_value_heads, self.num_attention_heads
            ));
        }
        let eps = self.rms_norm_eps;
        if !(eps > 0.0 && eps < 1.0) {
            return bad("rms_norm_eps", format!("{eps} is out of range (between 0 and 1, exclusive)"));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return bad("rope_theta", format!("{} must be a finite number above 1", self.rope_theta));
        }
        if self.swiglu_limit.is_nan() || self.swiglu_limit <= 0.0 {
            return bad("swiglu_limit", format!("{} must be positive", self.swiglu_limit));
        }
        if !(self.swiglu_alpha.is_finite() && self.swiglu_alpha > 0.0) {
            return bad("swiglu_alpha", format!("{} must be a positive finite number", self.swiglu_alpha));
        }
        if let Some(rs) = &self.rope_scaling {
            let positive = [
                ("factor", Some(rs.factor)),
                ("beta_fast", rs.beta_fast),
                ("beta_slow", rs.beta_slow),
                ("attention_factor", rs.attention_factor),
                ("rope_theta", rs.rope_theta),
            ];
            for (k, v) in positive {
                if let Some(v) = v {
                    if !(v.is_finite() && v > 0.0) {
                        return bad(&format!("rope_scaling.{k}"), format!("{v} must be a positive finite number"));
                    }
                }
            }
            if let Some(o) = rs.original_max_position_embeddings {
                if o == 0 || o > MAX_POSITIONS as u64 {
                    return bad("rope_scaling.original_max_position_embeddings", format!("{o} is out of range (1 to {MAX_POSITIONS})"));
                }
            }
        }
        if self.eos_ids.len() > 64 {
            return bad("eos_token_id", format!("lists {} ids: at most 64", self.eos_ids.len()));
        }
        Ok(())
    }

    /// Whether layer `i` uses the sliding window (even layers in gpt-oss).
    pub fn is_sliding(&self, i: usize) -> bool {
        if self.sliding_window == 0 {
            return false;
        }
        match &self.sliding_layers {
            Some(t) => t[i],
            None => i.is_multiple_of(2),
        }
    }

    pub fn qkv_width(&self) -> u32 {
        (self.num_attention_heads + 2 * self.num_key_value_heads) * self.head_dim
    }

    /// Bytes of weights one decoded token of a gpt-oss (MoE) model reads, as the kernels read
    /// them: every attention weight and norm (bf16 matrices, f32 biases), the router, `k` MXFP4
    /// experts of every layer, the LM head and one embedding row.
    pub fn moe_weight_bytes_per_token(&self) -> u64 {
        let (h, v) = (self.hidden_size as u64, self.vocab_size as u64);
        let (hq, d, e, k, i) = (
            self.num_attention_heads as u64,
            self.head_dim as u64,
            self.num_local_experts as u64,
            self.num_experts_per_tok as u64,
            self.intermediate_size as u64,
        );
        let qkv = self.qkv_width() as u64;
        let attention = qkv * h * 2 + qkv * 4 + h * hq * d * 2 + h * 4 + hq * 4;
        let norms = 2 * h * 4;
        let router = e * h * 2 + e * 4;
        let mxfp4_row = |cols: u64| cols / 2 + cols / 32 + 4;
        let experts = k * (2 * i * mxfp4_row(h) + h * mxfp4_row(i));
        let layer = attention + norms + router + experts;
        self.num_hidden_layers as u64 * layer + v * h * 2 + h * 2 + h * 4
    }

    /// Bytes of keys and values one token reads at position `pos` (f32 cache; sliding layers
    /// read at most their window).
    pub fn kv_bytes_per_token(&self, pos: u32) -> u64 {
        self.kv_bytes_per_token_as(pos, KvCache::F32)
    }

    /// `kv_bytes_per_token` with the cache stored as `kv`.
    pub fn kv_bytes_per_token_as(&self, pos: u32, kv: KvCache) -> u64 {
        let slot = self.num_key_value_heads as u64 * self.head_dim as u64 * kv.bytes_per_value() * 2;
        (0..self.num_hidden_layers as usize)
            .map(|l| {
                let seen = pos as u64 + 1;
                let used = if self.is_sliding(l) { seen.min(self.sliding_window as u64) } else { seen };
                used * slot
            })
            .sum()
    }
}
