//! Models from GGUF files (llama.cpp's format): the Llama family — `llama` (Llama 2/3, SmolLM2,
//! Mistral-style), `qwen2` (q/k/v biases) and `qwen3` (per-head q/k norms). The metadata gives
//! the configuration; every tensor's name, shape and type is checked before anything is
//! allocated; then the file's bytes stream onto the GPU through the same [`StreamPlan`] as
//! safetensors checkpoints, quantized blocks as they are (they are decoded in the kernels).

use crate::error::{Error, Result};
use crate::gpu::{stacked_parts, Gpu};
use crate::loader::gguf::{Gguf, GgufTensor};
use crate::loader::stream::{StreamPlan, Widen};
use crate::ops::{QMatrix, QType};
use crate::tokenizer::{default_add_bos, GgufVocab};

use super::config::{Arch, Config};
use super::load::Planned;
use super::rope::Rope;
use super::weights::{Layer, Linear, Mlp, Qkv, Weights};

/// Architectures read from GGUF, by their `general.architecture` name.
pub const ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3", "gpt-oss"];

mod gpt_oss;

/// The configuration of a GGUF model from its metadata.
pub fn config(g: &Gguf) -> Result<Config> {
    let name = g.architecture()?;
    let arch = match name {
        "llama" => Arch::Llama,
        "qwen2" => Arch::Qwen2,
        "qwen3" => Arch::Qwen3,
        "gpt-oss" => return gpt_oss::config(g),
        other => {
            return Err(Error::Config(format!(
                "GGUF architecture {other:?} is not supported (supported: {})",
                ARCHITECTURES.join(", ")
            )))
        }
    };
    let key = |k: &str| format!("{name}.{k}");
    let need = |k: &str| -> Result<u32> {
        g.get_u32(&key(k))?.ok_or_else(|| Error::Config(format!("GGUF metadata has no {}", key(k))))
    };
    let hidden = need("embedding_length")?;
    let heads = need("attention.head_count")?;
    let kv_heads = g.get_u32(&key("attention.head_count_kv"))?.unwrap_or(heads);
    if heads == 0 || hidden % heads != 0 && g.get_u32(&key("attention.key_length"))?.is_none() {
        return Err(Error::Config(format!("{} heads do not divide the hidden size {hidden}", heads)));
    }
    let head_dim = g.get_u32(&key("attention.key_length"))?.unwrap_or(hidden / heads.max(1));
    if let Some(v) = g.get_u32(&key("attention.value_length"))? {
        if v != head_dim {
            return Err(Error::Config(format!("key length {head_dim} and value length {v} differ; not supported")));
        }
    }
    if let Some(rot) = g.get_u32(&key("rope.dimension_count"))? {
        if rot != head_dim {
            return Err(Error::Config(format!("partial rotary embeddings ({rot} of {head_dim} dims) are not supported")));
        }
    }
    let embed = tensor(g, "token_embd.weight")?;
    let vocab = vocab_rows(embed)?;
    let eps = g.get_f32(&key("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-5);
    let eos = g.get_u32("tokenizer.ggml.eos_token_id")?;
    let mut cfg = Config {
        arch,
        rope_interleaved: arch == Arch::Llama,
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: need("feed_forward_length")?,
        num_hidden_layers: need("block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        head_dim,
        num_local_experts: 0,
        num_experts_per_tok: 0,
        sliding_window: 0,
        sliding_layers: None,
        rms_norm_eps: eps,
        rope_theta: g.get_f32(&key("rope.freq_base"))?.unwrap_or(10000.0) as f64,
        rope_scaling: None,
        max_position_embeddings: g.get_u32(&key("context_length"))?.unwrap_or(4096),
        swiglu_limit: f32::INFINITY,
        swiglu_alpha: 1.0,
        tie_word_embeddings: g.tensor("output.weight").is_none(),
        eos_ids: eos.into_iter().collect(),
    };
    validate(&mut cfg, g)?;
    Ok(cfg)
}

fn validate(cfg: &mut Config, g: &Gguf) -> Result<()> {
    let bad = |m: String| Err(Error::Config(m));
    for (k, v) in [
        ("embedding_length", cfg.hidden_size),
        ("feed_forward_length", cfg.intermediate_size),
        ("block_count", cfg.num_hidden_layers),
        ("attention.head_count_kv", cfg.num_key_value_heads),
        ("context_length", cfg.max_position_embeddings),
    ] {
        if v == 0 {
            return bad(format!("GGUF metadata {k} must be positive"));
        }
    }
    if !cfg.num_attention_heads.is_multiple_of(cfg.num_key_value_heads) {
        return bad(format!("{} query heads are not a multiple of {} key/value heads", cfg.num_attention_heads, cfg.num_key_value_heads));
    }
    if !cfg.head_dim.is_multiple_of(2) || cfg.head_dim > 256 {
        return bad(format!("head dimension {} must be even and at most 256", cfg.head_dim));
    }
    if cfg.rms_norm_eps.is_nan() || cfg.rms_norm_eps <= 0.0 {
        return bad(format!("rms epsilon {} must be positive", cfg.rms_norm_eps));
    }
    let name = cfg.arch.name();
    cfg.check_ranges().map_err(|e| gguf_names(name, e))?;
    let scaling = g.get_str(&format!("{name}.rope.scaling.type"))?.unwrap_or("none");
    match scaling {
        "none" => {}
        "linear" => {
            let factor = g.get_f32(&format!("{name}.rope.scaling.factor"))?.unwrap_or(1.0);
            if !(factor.is_finite() && factor > 0.0) {
                return bad(format!("rope scaling factor {factor} must be positive"));
            }
        }
        other => return bad(format!("RoPE scaling {other:?} is not supported for {name} models (supported: none, linear)")),
    }
    Ok(())
}

/// A configuration error naming a `config.json` field rephrased with the GGUF metadata key it
/// was read from.
pub(crate) fn gguf_names(arch: &str, e: Error) -> Error {
    const KEYS: &[(&str, &str)] = &[
        ("vocab_size", "rows of token_embd.weight"),
        ("hidden_size", "embedding_length"),
        ("intermediate_size", "feed_forward_length"),
        ("num_hidden_layers", "block_count"),
        ("num_attention_heads", "attention.head_count"),
        ("num_key_value_heads", "attention.head_count_kv"),
        ("head_dim", "attention.key_length"),
        ("num_local_experts", "expert_count"),
        ("num_experts_per_tok", "expert_used_count"),
        ("sliding_window", "attention.sliding_window"),
        ("max_position_embeddings", "context_length"),
        ("rms_norm_eps", "attention.layer_norm_rms_epsilon"),
        ("rope_theta", "rope.freq_base"),
        ("rope_scaling.factor", "rope.scaling.factor"),
        ("rope_scaling.beta_fast", "rope.scaling.yarn_beta_fast"),
        ("rope_scaling.beta_slow", "rope.scaling.yarn_beta_slow"),
        ("rope_scaling.original_max_position_embeddings", "rope.scaling.original_context_length"),
    ];
    match e {
        Error::ConfigField { field, message } => match KEYS.iter().find(|(k, _)| *k == field) {
            Some((_, g)) if g.starts_with("rows") => Error::ConfigField { field: format!("GGUF {g}"), message },
            Some((_, g)) => Error::ConfigField { field: format!("GGUF metadata {arch}.{g}"), message },
            None => Error::ConfigField { field: format!("GGUF metadata: {field}"), message },
        },
        Error::Config(m) => Error::Config(format!("GGUF metadata: {m}")),
        other => other,
    }
}

/// RoPE frequencies of a GGUF model: base^(-2i/d), divided by a linear scaling factor
/// (per-frequency factors, `rope_freqs.weight` in Llama 3.1 and later, are applied once the
/// tensor has arrived: see `models::load`); gpt-oss files use the YaRN frequencies of their
/// configuration.
fn rope(cfg: &Config, g: &Gguf) -> Result<Rope> {
    if cfg.arch == Arch::GptOss {
        // YaRN from the configuration, as for the safetensors checkpoint.
        return Ok(Rope::new(cfg));
    }
    let d = cfg.head_dim as usize;
    let base = cfg.rope_theta as f32;
    let name = cfg.arch.name();
    let linear = match g.get_str(&format!("{name}.rope.scaling.type"))? {
        Some("linear") => g.get_f32(&format!("{name}.rope.scaling.factor"))?.unwrap_or(1.0),
        _ => 1.0,
    };
    let inv_freq = (0..d / 2).map(|i| 1.0 / base.powf((2 * i) as f32 / d as f32) / linear).collect();
    Ok(Rope { inv_freq, attention_factor: 1.0 })
}

/// The tensors of one layer (`blk.N.<part>`) that the architecture reads.
fn layer_parts(arch: Arch) -> &'static [&'static str] {
    const LLAMA: &[&str] = &[
        "attn_norm.weight",
        "attn_q.weight",
        "attn_k.weight",
        "attn_v.weight",
        "attn_output.weight",
        "ffn_norm.weight",
        "ffn_gate.weight",
        "ffn_up.weight",
        "ffn_down.weight",
    ];
    const QWEN2: &[&str] = &[
        "attn_norm.weight",
        "attn_q.weight",
        "attn_k.weight",
        "attn_v.weight",
        "attn_q.bias",
        "attn_k.bias",
        "attn_v.bias",
        "attn_output.weight",
        "ffn_norm.weight",
        "ffn_gate.weight",
        "ffn_up.weight",
        "ffn_down.weight",
    ];
    const QWEN3: &[&str] = &[
        "attn_norm.weight",
        "attn_q.weight",
        "attn_k.weight",
        "attn_v.weight",
        "attn_q_norm.weight",
        "attn_k_norm.weight",
        "attn_output.weight",
        "ffn_norm.weight",
        "ffn_gate.weight",
        "ffn_up.weight",
        "ffn_down.weight",
    ];
    const GPT_OSS: &[&str] = &[
        "attn_norm.weight",
        "attn_q.weight",
        "attn_k.weight",
        "attn_v.weight",
        "attn_q.bias",
        "attn_k.bias",
        "attn_v.bias",
        "attn_output.weight",
        "attn_output.bias",
        "attn_sinks.weight",
        "post_attention_norm.weight",
        "ffn_gate_inp.weight",
        "ffn_gate_inp.bias",
        "ffn_gate_exps.weight",
        "ffn_gate_exps.bias",
        "ffn_up_exps.weight",
        "ffn_up_exps.bias",
        "ffn_down_exps.weight",
        "ffn_down_exps.bias",
    ];
    match arch {
        Arch::Llama => LLAMA,
        Arch::Qwen2 => QWEN2,
        Arch::Qwen3 => QWEN3,
        Arch::GptOss => GPT_OSS,
    }
}

/// Refuses a file whose tensors the architecture would not all read, naming the first one in
/// file order (a `block_count` lower than the layers present, a part of another architecture),
/// and a `block_count` higher than the layers present, before anything is allocated.
fn check_tensor_set(cfg: &Config, g: &Gguf) -> Result<()> {
    let parts = layer_parts(cfg.arch);
    let layers = cfg.num_hidden_layers as u64;
    let name = cfg.arch.name();
    let used = |t: &str| -> bool {
        if let Some(rest) = t.strip_prefix("blk.") {
            let Some((l, part)) = rest.split_once('.') else { return false };
            // Digits only: "blk.+1" or "blk.01" name no layer.
            let canonical = !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) && (l == "0" || !l.starts_with('0'));
            return canonical && l.parse::<u64>().is_ok_and(|l| l < layers) && parts.contains(&part);
        }
        matches!(t, "token_embd.weight" | "output_norm.weight" | "output.weight")
            || (t == "rope_freqs.weight" && cfg.arch != Arch::GptOss)
    };
    if let Some(t) = g.tensors.iter().find(|t| !used(&t.name)) {
        return Err(Error::tensor(
            &t.name,
            format!("is not used by the {name} architecture with {name}.block_count {layers}; the file has unused tensors"),
        ));
    }
    if layers > 0 {
        let last = format!("blk.{}.{}", layers - 1, parts[0]);
        if g.tensor(&last).is_none() {
            return Err(Error::Config(format!(
                "GGUF metadata {name}.block_count is {layers}, but the file has no tensor {last} (fewer layers)"
            )));
        }
    }
    Ok(())
}

/// The vocabulary size: the embedding's rows, refused when they do not fit a token id.
pub(crate) fn vocab_rows(embed: &GgufTensor) -> Result<u32> {
    u32::try_from(embed.rows())
        .map_err(|_| Error::tensor(&embed.name, format!("has {} rows, more than any vocabulary", embed.rows())))
}

fn tensor<'a>(g: &'a Gguf, name: &str) -> Result<&'a GgufTensor> {
    g.tensor(name).ok_or_else(|| Error::tensor(name, "missing from the GGUF file"))
}

/// The tensor's format, or a clear error naming it.
fn qtype(t: &GgufTensor) -> Result<QType> {
    QType::from_ggml_id(t.ggml_type.0).ok_or_else(|| {
        Error::tensor(
            &t.name,
            format!("has type {}, which is not supported (supported: {})", t.ggml_type.name(), QType::supported()),
        )
    })
}

/// Checks a tensor's logical shape [rows, cols] (GGUF lists dims innermost first).
fn expect<'a>(g: &'a Gguf, name: &str, shape: &[u64]) -> Result<&'a GgufTensor> {
    let t = tensor(g, name)?;
    let mut dims = t.dims.clone();
    dims.reverse();
    if dims != shape {
        return Err(Error::tensor(name, format!("has shape {dims:?}, expected {shape:?} for this configuration")));
    }
    Ok(t)
}

/// Layer `l`'s q, k and v projections, and their biases when the architecture has them, each
/// checked against the configuration's shapes.
type Qkv3<'a> = [&'a GgufTensor; 3];
fn attn_qkv<'a>(g: &'a Gguf, cfg: &Config, l: u32, with_bias: bool) -> Result<(Qkv3<'a>, Option<Qkv3<'a>>)> {
    let (h, hq, hkv, d) =
        (cfg.hidden_size as u64, cfg.num_attention_heads as u64, cfg.num_key_value_heads as u64, cfg.head_dim as u64);
    let n = |s: &str| format!("blk.{l}.attn_{s}");
    let weights = [expect(g, &n("q.weight"), &[hq * d, h])?, expect(g, &n("k.weight"), &[hkv * d, h])?, expect(g, &n("v.weight"), &[hkv * d, h])?];
    let biases = match with_bias {
        true => Some([expect(g, &n("q.bias"), &[hq * d])?, expect(g, &n("k.bias"), &[hkv * d])?, expect(g, &n("v.bias"), &[hkv * d])?]),
        false => None,
    };
    Ok((weights, biases))
}

struct Planner<'a> {
    gpu: &'a Gpu,
    g: &'a Gguf,
    plan: StreamPlan,
}

impl Planner<'_> {
    /// A matrix made of `parts` stacked by rows (all of one type), with optional per-part biases.
    fn matrix(&mut self, label: &str, parts: &[&GgufTensor], biases: Option<&[&GgufTensor]>) -> Result<QMatrix> {
        let q = qtype(parts[0])?;
        for p in parts {
            if qtype(p)? != q {
                return Err(Error::tensor(&p.name, "cannot be stacked with tensors of another type"));
            }
        }
        let cols = parts[0].cols();
        let part_rows: Vec<u64> = parts.iter().map(|p| p.rows()).collect();
        let rows: u64 = part_rows.iter().sum();
        let row_bytes = parts[0].bytes / part_rows[0].max(1);
        let m = QMatrix::allocate(self.gpu, label, q, rows as u32, cols as u32, biases.is_some())?;
        let placed = stacked_parts(&m.slices, &part_rows);
        for p in &placed {
            let offset = parts[p.part].offset;
            let range = offset + p.rows.start * row_bytes..offset + p.rows.end * row_bytes;
            self.plan.copy(0, range, &m.slices[p.slice].buffers[0], p.at * row_bytes)?;
        }
        if let Some(biases) = biases {
            for (pi, b) in biases.iter().enumerate() {
                let n = part_rows[pi];
                if b.n_values() != n {
                    return Err(Error::tensor(&b.name, format!("has {} values for {n} rows", b.n_values())));
                }
                for p in placed.iter().filter(|p| p.part == pi) {
                    let (e0, e1) = (p.rows.start as usize, p.rows.end as usize);
                    self.vector_into(b, e0, e1, &m.slices[p.slice].buffers[1], p.at * 4)?;
                }
            }
        }
        Ok(m)
    }

    /// The q, k and v projections (with optional biases): one stacked matrix when they share a
    /// type and every row starts 4-byte aligned in it, else three.
    fn qkv(&mut self, label: &str, [q, k, v]: [&GgufTensor; 3], biases: Option<[&GgufTensor; 3]>) -> Result<Qkv> {
        let same_type = qtype(q)? == qtype(k)? && qtype(k)? == qtype(v)?;
        let aligned = (q.bytes / q.rows().max(1)).is_multiple_of(4);
        if same_type && aligned {
            return Ok(Qkv::Stacked(Linear::Quant(self.matrix(label, &[q, k, v], biases.as_ref().map(|b| &b[..]))?)));
        }
        let mut one = |i: usize, t: &GgufTensor| -> Result<Linear> {
            let bias = biases.as_ref().map(|b| &b[i..i + 1]);
            Ok(Linear::Quant(self.matrix(&t.name, &[t], bias)?))
        };
        Ok(Qkv::Separate { q: one(0, q)?, k: one(1, k)?, v: one(2, v)? })
    }

    /// Elements [e0, e1) of a 1-D tensor as f32 into `buf` at `offset`.
    fn vector_into(&mut self, t: &GgufTensor, e0: usize, e1: usize, buf: &wgpu::Buffer, offset: u64) -> Result<()> {
        match qtype(t)? {
            QType::F32 => self.plan.copy(0, t.offset + e0 as u64 * 4..t.offset + e1 as u64 * 4, buf, offset),
            QType::F16 => self.plan.widen(0, t.offset..t.offset + t.bytes, Widen::F16, vec![(e0, e1, buf.clone(), offset)]),
            QType::BF16 => self.plan.widen(0, t.offset..t.offset + t.bytes, Widen::Bf16, vec![(e0, e1, buf.clone(), offset)]),
            other => Err(Error::tensor(&t.name, format!("a norm or bias vector must be F32, F16 or BF16, not {}", other.name()))),
        }
    }

    fn vector(&mut self, name: &str, len: u64) -> Result<wgpu::Buffer> {
        let t = expect(self.g, name, &[len])?;
        let buf = self.gpu.storage(name, len * 4);
        self.vector_into(t, 0, len as usize, &buf, 0)?;
        Ok(buf)
    }

    fn linear(&mut self, name: &str, rows: u64, cols: u64) -> Result<Linear> {
        let t = expect(self.g, name, &[rows, cols])?;
        Ok(Linear::Quant(self.matrix(name, &[t], None)?))
    }
}

/// Validates every tensor the configuration needs, allocates the weights' buffers and plans
/// where each byte of the file goes.
pub(crate) fn plan(gpu: &Gpu, cfg: &Config, g: &Gguf) -> Result<Planned> {
    check_tensor_set(cfg, g)?;
    if cfg.arch == Arch::GptOss {
        return gpt_oss::plan(gpu, cfg, g);
    }
    let (h, v, f) = (cfg.hidden_size as u64, cfg.vocab_size as u64, cfg.intermediate_size as u64);
    let (hq, d) = (cfg.num_attention_heads as u64, cfg.head_dim as u64);
    let mut p = Planner { gpu, g, plan: StreamPlan::new([(g.file.clone(), g.file_size)]) };
    let embed = p.linear("token_embd.weight", v, h)?;
    // One buffer of "no sink" logits serves every layer.
    let no_sinks = gpu.storage_with("no sinks", bytemuck::cast_slice(&vec![NO_SINK; hq as usize]));
    let mut layers = Vec::new();
    for l in 0..cfg.num_hidden_layers {
        let n = |s: &str| format!("blk.{l}.{s}");
        let attn_norm = p.vector(&n("attn_norm.weight"), h)?;
        let (weights, biases) = attn_qkv(g, cfg, l, cfg.arch == Arch::Qwen2)?;
        let qkv = p.qkv(&n("attn_qkv"), weights, biases)?;
        let qk_norm = match cfg.arch {
            Arch::Qwen3 => Some((p.vector(&n("attn_q_norm.weight"), d)?, p.vector(&n("attn_k_norm.weight"), d)?)),
            _ => None,
        };
        let o = p.linear(&n("attn_output.weight"), h, hq * d)?;
        let mlp_norm = p.vector(&n("ffn_norm.weight"), h)?;
        let gate = p.linear(&n("ffn_gate.weight"), f, h)?;
        let up = p.linear(&n("ffn_up.weight"), f, h)?;
        let down = p.linear(&n("ffn_down.weight"), h, f)?;
        let sinks = no_sinks.clone();
        layers.push(Layer { attn_norm, qkv, qk_norm, o, sinks, mlp_norm, mlp: Mlp::Dense { gate, up, down } });
    }
    let norm = p.vector("output_norm.weight", h)?;
    let lm_head = match g.tensor("output.weight") {
        Some(_) => Some(p.linear("output.weight", v, h)?),
        None => None,
    };
    let freq_factors = match g.tensor("rope_freqs.weight") {
        Some(_) => Some(p.vector("rope_freqs.weight", d / 2)?),
        None => None,
    };
    gpu.take_error()?;
    Ok(Planned { weights: Weights { embed, layers, norm, lm_head }, plan: p.plan, rope: rope(cfg, g)?, freq_factors })
}

/// The sink logit of models without attention sinks: exp(NO_SINK - max) is 0.
const NO_SINK: f32 = -1.0e30;

/// The tokenizer description in a GGUF file's metadata.
pub fn vocab(g: &Gguf) -> Result<GgufVocab> {
    let missing = |k: &str| Error::Tokenizer(format!("the GGUF file has no {k}"));
    let tokens = g.get_str_array("tokenizer.ggml.tokens")?.ok_or_else(|| missing("tokenizer.ggml.tokens"))?.to_vec();
    let n = tokens.len();
    let model = g.get_str("tokenizer.ggml.model")?.ok_or_else(|| missing("tokenizer.ggml.model"))?.to_string();
    let pre = g.get_str("tokenizer.ggml.pre")?.map(str::to_string);
    let add_bos = g.get_bool("tokenizer.ggml.add_bos_token")?.unwrap_or_else(|| default_add_bos(&model, pre.as_deref()));
    Ok(GgufVocab {
        model,
        pre,
        token_types: g.get_i32_array("tokenizer.ggml.token_type")?.map(<[i32]>::to_vec).unwrap_or_else(|| vec![1; n]),
        merges: g.get_str_array("tokenizer.ggml.merges")?.map(<[String]>::to_vec).unwrap_or_default(),
        scores: g.get_f32_array("tokenizer.ggml.scores")?.map(<[f32]>::to_vec).unwrap_or_default(),
        tokens,
        bos: g.get_u32("tokenizer.ggml.bos_token_id")?,
        eos: g.get_u32("tokenizer.ggml.eos_token_id")?,
        unk: g.get_u32("tokenizer.ggml.unknown_token_id")?,
        add_bos,
        add_space_prefix: g.get_bool("tokenizer.ggml.add_space_prefix")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::gguf::GgmlType;

    fn tensor_of(id: u32) -> GgufTensor {
        GgufTensor { name: "blk.0.ffn_up.weight".into(), ggml_type: GgmlType(id), dims: vec![256, 4], offset: 0, bytes: 0 }
    }

    #[test]
    fn a_vocabulary_past_the_token_id_range_is_refused() {
        let mut t = tensor_of(0);
        t.dims = vec![64, 1 << 33];
        assert!(vocab_rows(&t).unwrap_err().to_string().contains("8589934592 rows"));
        t.dims = vec![64, 49152];
        assert_eq!(vocab_rows(&t).unwrap(), 49152);
    }

    #[test]
    fn tensor_types_come_from_the_type_table() {
        assert_eq!(qtype(&tensor_of(23)).unwrap(), QType::IQ4_XS);
        assert_eq!(qtype(&tensor_of(11)).unwrap(), QType::Q3_K);
        // IQ2_XXS and an unknown id: refused, naming the tensor, its type and every supported one.
        for (id, name) in [(16, "IQ2_XXS"), (99, "type 99")] {
            let msg = qtype(&tensor_of(id)).unwrap_err().to_string();
            assert!(msg.contains("blk.0.ffn_up.weight") && msg.contains(&format!("has type {name},")), "{msg}");
            for t in QType::ALL {
                assert!(msg.contains(t.name()), "{msg} lacks {}", t.name());
            }
            assert!(msg.contains("Q5_0, Q5_1, Q2_K, Q3_K, IQ4_NL, IQ4_XS"), "{msg}");
        }
    }
}
