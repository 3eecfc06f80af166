//! A model's hyperparameters, validated before any weight is read: from a gpt-oss `config.json`
//! (Hugging Face layout) or from GGUF metadata (see `models::gguf`).

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::ops::KvCache;

#[derive(Clone, Debug, Deserialize)]
pub struct RopeScaling {
    #[serde(default)]
    pub rope_type: Option<String>,
    #[serde(default)]
    pub factor: Option<f64>,
    #[serde(default)]
    pub beta_fast: Option<f64>,
    #[serde(default)]
    pub beta_slow: Option<f64>,
    #[serde(default)]
    pub original_max_position_embeddings: Option<u64>,
    #[serde(default)]
    pub truncate: Option<bool>,
    #[serde(default)]
    pub attention_factor: Option<f64>,
    #[serde(default)]
    pub rope_theta: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct QuantizationConfig {
    pub quant_method: String,
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

#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    /// gpt-oss for `config.json`; GGUF metadata names the others.
    #[serde(skip)]
    pub arch: Arch,
    /// RoPE rotates pairs (x[2i], x[2i+1]) instead of NeoX halves (llama as stored in GGUF).
    #[serde(skip)]
    pub rope_interleaved: bool,
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default)]
    pub architectures: Vec<String>,
    pub vocab_size: u32,
    pub hidden_size: u32,
    pub intermediate_size: u32,
    pub num_hidden_layers: u32,
    pub num_attention_heads: u32,
    pub num_key_value_heads: u32,
    pub head_dim: u32,
    pub num_local_experts: u32,
    #[serde(default)]
    pub num_experts_per_tok: u32,
    /// OpenAI's name for `num_experts_per_tok`; the hub config carries both.
    #[serde(default)]
    pub experts_per_token: Option<u32>,
    pub sliding_window: u32,
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f32,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default, alias = "rope_parameters")]
    pub rope_scaling: Option<RopeScaling>,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: u32,
    #[serde(default = "default_limit")]
    pub swiglu_limit: f32,
    #[serde(default = "default_alpha")]
    pub swiglu_alpha: f32,
    #[serde(default)]
    pub quantization_config: Option<QuantizationConfig>,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
}

/// Upper bounds of the sizes a configuration may give (see [`Config::check_ranges`]).
pub const MAX_VOCAB: u32 = 1 << 22;
pub const MAX_HIDDEN: u32 = 1 << 16;
pub const MAX_INTERMEDIATE: u32 = 1 << 18;
pub const MAX_LAYERS: u32 = 1024;
pub const MAX_HEADS: u32 = 1024;
pub const MAX_POSITIONS: u32 = 1 << 24;

/// The JSON type of every field that is read, checked before the configuration is decoded, so
/// that a wrong one is an error naming the field (serde's own names only the expected type).
fn check_types(raw: &serde_json::Value) -> Result<()> {
    use serde_json::Value;
    const COUNTS: &[&str] = &[
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "num_local_experts",
        "num_experts_per_tok",
        "experts_per_token",
        "sliding_window",
        "max_position_embeddings",
    ];
    const NUMBERS: &[&str] = &["rms_norm_eps", "rope_theta", "swiglu_limit", "swiglu_alpha"];
    const SCALING_NUMBERS: &[&str] = &["factor", "beta_fast", "beta_slow", "attention_factor", "rope_theta"];
    let Some(obj) = raw.as_object() else {
        return Err(Error::Config("the configuration must be a JSON object".into()));
    };
    let bad = |k: &str, what: &str, v: &Value| Err(Error::Config(format!("{k} must be {what}, not {}", short_json(v))));
    let count = |v: &Value| v.as_u64().is_some_and(|n| n <= u32::MAX as u64);
    for k in COUNTS {
        match obj.get(*k) {
            None => {}
            Some(v) if count(v) => {}
            // Optional counts may be null.
            Some(Value::Null) if *k == "experts_per_token" => {}
            Some(v) => return bad(k, "a non-negative integer (at most 4294967295)", v),
        }
    }
    for k in NUMBERS {
        match obj.get(*k) {
            None | Some(Value::Number(_)) => {}
            Some(v) => return bad(k, "a number", v),
        }
    }
    match obj.get("tie_word_embeddings") {
        None | Some(Value::Bool(_)) => {}
        Some(v) => return bad("tie_word_embeddings", "true or false", v),
    }
    match obj.get("layer_types") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
        Some(v) => return bad("layer_types", "a list of strings", v),
    }
    for k in ["rope_scaling", "rope_parameters"] {
        match obj.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::Object(rs)) => {
                for f in SCALING_NUMBERS {
                    match rs.get(*f) {
                        None | Some(Value::Null) | Some(Value::Number(_)) => {}
                        Some(v) => return bad(&format!("{k}.{f}"), "a number", v),
                    }
                }
                match rs.get("original_max_position_embeddings") {
                    None | Some(Value::Null) => {}
                    Some(v) if v.as_u64().is_some() => {}
                    Some(v) => return bad(&format!("{k}.original_max_position_embeddings"), "a non-negative integer", v),
                }
                match rs.get("rope_type").or_else(|| rs.get("type")) {
                    None | Some(Value::Null) | Some(Value::String(_)) => {}
                    Some(v) => return bad(&format!("{k}.rope_type"), "a string", v),
                }
            }
            Some(v) => return bad(k, "an object", v),
        }
    }
    match obj.get("quantization_config") {
        None | Some(Value::Null) => {}
        Some(Value::Object(q)) if q.get("quant_method").is_some_and(Value::is_string) => {}
        Some(v) => return bad("quantization_config", "an object with a quant_method string", v),
    }
    Ok(())
}

/// A JSON value for an error message, cut short.
fn short_json(v: &serde_json::Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

fn default_eps() -> f32 {
    1e-5
}
fn default_theta() -> f64 {
    150000.0
}
fn default_max_pos() -> u32 {
    131072
}
fn default_limit() -> f32 {
    7.0
}
fn default_alpha() -> f32 {
    1.702
}

impl Config {
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: &std::path::Path) -> Result<Config> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        Self::from_json(&text).map_err(|e| match e {
            Error::Config(m) => Error::checkpoint(&path, m),
            other => other,
        })
    }

    pub fn from_json(text: &str) -> Result<Config> {
        let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Config(format!("not valid JSON: {e}")))?;
        let model_type = raw.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
        if model_type != "gpt_oss" {
            return Err(Error::Config(format!(
                "model_type is {model_type:?}; this loader reads gpt-oss checkpoints (model_type \"gpt_oss\")"
            )));
        }
        check_types(&raw)?;
        let mut cfg: Config = serde_json::from_value(raw).map_err(|e| Error::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub(crate) fn validate(&mut self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        match (self.num_experts_per_tok, self.experts_per_token) {
            (0, Some(k)) => self.num_experts_per_tok = k,
            (n, Some(k)) if n != k => return bad(format!("num_experts_per_tok {n} disagrees with experts_per_token {k}")),
            _ => {}
        }
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
                return bad(format!("{k} must be positive"));
            }
        }
        self.check_ranges()?;
        if !self.hidden_size.is_multiple_of(32) || !self.intermediate_size.is_multiple_of(32) {
            return bad(format!(
                "hidden_size {} and intermediate_size {} must be multiples of 32 (MXFP4 blocks)",
                self.hidden_size, self.intermediate_size
            ));
        }
        if !self.head_dim.is_multiple_of(2) || self.head_dim > 256 {
            return bad(format!("head_dim {} must be even and at most 256", self.head_dim));
        }
        if !self.num_attention_heads.is_multiple_of(self.num_key_value_heads) {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if self.num_local_experts > 256 || self.num_experts_per_tok > 16 || self.num_experts_per_tok > self.num_local_experts {
            return bad(format!(
                "{} experts with {} per token is not supported (at most 256 experts and 16 per token)",
                self.num_local_experts, self.num_experts_per_tok
            ));
        }
        if let Some(types) = &self.layer_types {
            if types.len() != self.num_hidden_layers as usize {
                return bad(format!("layer_types has {} entries for {} layers", types.len(), self.num_hidden_layers));
            }
            for t in types {
                if t != "sliding_attention" && t != "full_attention" {
                    return bad(format!("unknown layer type {t:?}"));
                }
            }
        }
        match self.quantization_config.as_ref().map(|q| q.quant_method.as_str()) {
            Some("mxfp4") => {}
            Some(other) => return bad(format!("quantization method {other:?} is not supported (expected mxfp4)")),
            None => return bad("experts without quantization_config (dequantized bf16 experts) are not supported; use the published MXFP4 checkpoint".into()),
        }
        if self.tie_word_embeddings {
            return bad("tie_word_embeddings=true is not a gpt-oss layout".into());
        }
        if let Some(rs) = &self.rope_scaling {
            match rs.rope_type.as_deref() {
                Some("yarn") | None => {}
                Some(other) => return bad(format!("rope_scaling type {other:?} is not supported (expected yarn)")),
            }
        }
        Ok(())
    }

    /// Every size and constant of the configuration within sane bounds, so that nothing is
    /// sized from an absurd number before the tensors that should match it are looked at. The
    /// bounds are generous (several times the largest published models) but keep every count
    /// that the loader or the sessions iterate over small.
    pub(crate) fn check_ranges(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
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
                return bad(format!("{k} {v} is out of range (at most {max})"));
            }
        }
        if self.max_position_embeddings == 0 {
            return bad("max_position_embeddings must be positive".into());
        }
        if self.num_key_value_heads > self.num_attention_heads {
            return bad(format!(
                "num_key_value_heads {} is more than num_attention_heads {}",
                self.num_key_value_heads, self.num_attention_heads
            ));
        }
        let eps = self.rms_norm_eps;
        if !(eps > 0.0 && eps < 1.0) {
            return bad(format!("rms_norm_eps {eps} is out of range (between 0 and 1, exclusive)"));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return bad(format!("rope_theta {} must be a finite number above 1", self.rope_theta));
        }
        if self.swiglu_limit.is_nan() || self.swiglu_limit <= 0.0 {
            return bad(format!("swiglu_limit {} must be positive", self.swiglu_limit));
        }
        if !(self.swiglu_alpha.is_finite() && self.swiglu_alpha > 0.0) {
            return bad(format!("swiglu_alpha {} must be a positive finite number", self.swiglu_alpha));
        }
        if let Some(rs) = &self.rope_scaling {
            let positive = [
                ("factor", rs.factor),
                ("beta_fast", rs.beta_fast),
                ("beta_slow", rs.beta_slow),
                ("attention_factor", rs.attention_factor),
                ("rope_theta", rs.rope_theta),
            ];
            for (k, v) in positive {
                if let Some(v) = v {
                    if !(v.is_finite() && v > 0.0) {
                        return bad(format!("rope_scaling.{k} {v} must be a positive finite number"));
                    }
                }
            }
            if let Some(o) = rs.original_max_position_embeddings {
                if o == 0 || o > MAX_POSITIONS as u64 {
                    return bad(format!("rope_scaling.original_max_position_embeddings {o} is out of range (1 to {MAX_POSITIONS})"));
                }
            }
        }
        let id_ok = |v: &serde_json::Value| v.as_u64().is_some_and(|id| id <= u32::MAX as u64);
        match &self.eos_token_id {
            None | Some(serde_json::Value::Null) => {}
            Some(v @ serde_json::Value::Number(_)) if id_ok(v) => {}
            Some(serde_json::Value::Array(a)) if a.len() <= 64 && a.iter().all(id_ok) => {}
            Some(other) => {
                return bad(format!(
                    "eos_token_id {} must be a token id (a non-negative integer) or a list of them",
                    short_json(other)
                ))
            }
        }
        Ok(())
    }

    /// Whether layer `i` uses the sliding window (even layers in gpt-oss).
    pub fn is_sliding(&self, i: usize) -> bool {
        if self.sliding_window == 0 {
            return false;
        }
        match &self.layer_types {
            Some(t) => t[i] == "sliding_attention",
            None => i.is_multiple_of(2),
        }
    }

    pub fn qkv_width(&self) -> u32 {
        (self.num_attention_heads + 2 * self.num_key_value_heads) * self.head_dim
    }

    /// End-of-sequence ids named by config.json.
    pub fn eos_ids(&self) -> Vec<u32> {
        match &self.eos_token_id {
            Some(serde_json::Value::Number(n)) => n.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_u64()).map(|v| v as u32).collect(),
            _ => vec![],
        }
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
