//! gpt-oss from GGUF files (llama.cpp's `gpt-oss` architecture) on the same MoE path as the
//! safetensors checkpoint. The converter splits each layer's interleaved gate/up experts into
//! separate gate (`ffn_gate_exps`) and up (`ffn_up_exps`) tensors and repacks MXFP4 into ggml's
//! 17-byte blocks (scale byte, then 16 bytes holding elements j | j+16 << 4); while the file
//! streams in, every row is converted back to OpenAI's layout (scales apart, bytes holding
//! elements 2j | 2j+1 << 4, gate row i at row 2i and up row i at row 2i+1), which the kernels read.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::loader::gguf::{Gguf, GgufTensor};
use crate::loader::stream::StreamPlan;
use crate::models::config::{Arch, Config, Yarn};
use crate::models::weights::{Layer, Linear, Mlp, Weights};
use crate::ops::{Bf16Matrix, Mxfp4Experts, QType};

use super::{attn_qkv, expect, qtype, tensor, Planner};
use crate::models::load::Planned;
use crate::models::rope::Rope;

const ARCH: &str = "gpt-oss";

/// The configuration of a gpt-oss GGUF file from its metadata.
pub(super) fn config(g: &Gguf) -> Result<Config> {
    let key = |k: &str| format!("{ARCH}.{k}");
    let need = |k: &str| -> Result<u32> {
        g.get_u32(&key(k))?.ok_or_else(|| Error::Config(format!("GGUF metadata has no {}", key(k))))
    };
    let hidden = need("embedding_length")?;
    let heads = need("attention.head_count")?;
    let head_dim = match g.get_u32(&key("attention.key_length"))? {
        Some(d) => d,
        None if heads > 0 => hidden / heads,
        None => return Err(Error::Config("GGUF metadata attention.head_count must be positive".into())),
    };
    if let Some(v) = g.get_u32(&key("attention.value_length"))? {
        if v != head_dim {
            return Err(Error::Config(format!("key length {head_dim} and value length {v} differ; not supported")));
        }
    }
    let intermediate = match g.get_u32(&key("expert_feed_forward_length"))? {
        Some(f) => f,
        None => need("feed_forward_length")?,
    };
    let max_pos = g.get_u32(&key("context_length"))?.unwrap_or(131072);
    let rope_scaling = match g.get_str(&key("rope.scaling.type"))?.unwrap_or("none") {
        "none" => None,
        "yarn" => {
            let f = |k: &str| -> Result<Option<f64>> { Ok(g.get_f32(&key(k))?.map(f64::from)) };
            Some(Yarn {
                factor: f("rope.scaling.factor")?.unwrap_or(1.0),
                beta_fast: f("rope.scaling.yarn_beta_fast")?,
                beta_slow: f("rope.scaling.yarn_beta_slow")?,
                original_max_position_embeddings: g.get_u32(&key("rope.scaling.original_context_length"))?.map(u64::from),
                // gpt-oss blends the YaRN ramp without rounding its ends (truncate: false).
                truncate: false,
                attention_factor: None,
                rope_theta: None,
            })
        }
        other => return Err(Error::Config(format!("RoPE scaling {other:?} is not supported for gpt-oss (supported: none, yarn)"))),
    };
    let eos = g.get_u32("tokenizer.ggml.eos_token_id")?;
    if g.tensor("output.weight").is_none() {
        return Err(Error::tensor("output.weight", "missing from the GGUF file (gpt-oss keeps its output matrix apart from the embedding)"));
    }
    let cfg = Config {
        arch: Arch::GptOss,
        rope_interleaved: false,
        vocab_size: super::vocab_rows(tensor(g, "token_embd.weight")?)?,
        hidden_size: hidden,
        intermediate_size: intermediate,
        num_hidden_layers: need("block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: g.get_u32(&key("attention.head_count_kv"))?.unwrap_or(heads),
        head_dim,
        num_local_experts: need("expert_count")?,
        num_experts_per_tok: need("expert_used_count")?,
        sliding_window: need("attention.sliding_window")?,
        // Even layers slide (llama.cpp's pattern of 2; the hub config's layer_types).
        sliding_layers: None,
        rms_norm_eps: g.get_f32(&key("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-5),
        rope_theta: g.get_f32(&key("rope.freq_base"))?.unwrap_or(150000.0) as f64,
        rope_scaling,
        max_position_embeddings: max_pos,
        // The converter writes neither; llama.cpp fixes them for this architecture too.
        swiglu_limit: 7.0,
        swiglu_alpha: 1.702,
        tie_word_embeddings: false,
        eos_ids: eos.into_iter().collect(),
    };
    cfg.validate().map_err(|e| super::gguf_names(ARCH, e))?;
    Ok(cfg)
}

/// Scales and biases of one expert matrix, gathered on the host (1/16 of the blocks' size, and
/// scales of single rows cannot be written 4-byte aligned) and written once every part arrived.
/// Allocated when its first bytes arrive, so only the matrices being streamed hold memory.
struct Stage {
    scales: Vec<u8>,
    bias: Vec<f32>,
    rows: usize,
    pending: usize,
    /// (row_start, row_end, scales buffer, bias buffer) of every slice.
    targets: Vec<(usize, usize, wgpu::Buffer, wgpu::Buffer)>,
    scale_bytes: usize,
}

impl Stage {
    fn ready(&mut self) -> &mut Self {
        if self.bias.is_empty() {
            self.scales = vec![0; self.rows * self.scale_bytes];
            self.bias = vec![0.0; self.rows];
        }
        self
    }

    fn part_done(&mut self, gpu: &Gpu) {
        self.pending -= 1;
        if self.pending == 0 {
            for (a, b, s, bias) in &self.targets {
                gpu.write(s, 0, &self.scales[a * self.scale_bytes..b * self.scale_bytes]);
                gpu.write(bias, 0, bytemuck::cast_slice(&self.bias[*a..*b]));
            }
            self.scales = Vec::new();
            self.bias = Vec::new();
        }
    }
}

/// One ggml MXFP4 row (17-byte blocks) to OpenAI's layout: nibble bytes into `blocks`, the
/// E8M0 scale bytes into `scales`.
fn convert_row(src: &[u8], blocks: &mut [u8], scales: &mut [u8]) {
    for (b, block) in src.chunks_exact(17).enumerate() {
        scales[b] = block[0];
        let q = &block[1..];
        let e = |k: usize| if k < 16 { q[k] & 0x0F } else { q[k - 16] >> 4 };
        for j in 0..16 {
            blocks[b * 16 + j] = e(2 * j) | (e(2 * j + 1) << 4);
        }
    }
}

impl Planner<'_> {
    /// Experts of `parts` (gate then up for the interleaved gate_up, or down alone): part p's row
    /// r of expert e becomes row e * rows_per_expert + r * parts.len() + p.
    fn experts(&mut self, label: &str, parts: &[(&GgufTensor, &GgufTensor)], n_experts: u32, part_rows: u32, cols: u32) -> Result<Mxfp4Experts> {
        let np = parts.len() as u32;
        let rows_per_expert = part_rows * np;
        for (w, b) in parts {
            if w.ggml_type != crate::loader::gguf::GgmlType::MXFP4 {
                return Err(Error::tensor(
                    &w.name,
                    format!("has type {}; gpt-oss experts are read from MXFP4 tensors only", w.ggml_type.name()),
                ));
            }
            expect_dims(w, &[n_experts as u64, part_rows as u64, cols as u64])?;
            expect_dims(b, &[n_experts as u64, part_rows as u64])?;
        }
        let x = Mxfp4Experts::allocate(self.gpu, label, n_experts, rows_per_expert, cols, np)?;
        let (bb, sb) = (cols as usize / 2, cols as usize / 32);
        let total_rows = (n_experts * rows_per_expert) as usize;
        let stage = Arc::new(Mutex::new(Stage {
            scales: Vec::new(),
            bias: Vec::new(),
            rows: total_rows,
            pending: 2 * parts.len(),
            targets: x.slices.iter().map(|s| (s.row_start as usize, s.row_end as usize, s.buffers[1].clone(), s.buffers[2].clone())).collect(),
            scale_bytes: sb,
        }));
        // Destination row -> (slice blocks buffer, byte offset in it).
        let slots: Vec<(usize, usize, wgpu::Buffer)> = x.slices.iter().map(|s| (s.row_start as usize, s.row_end as usize, s.buffers[0].clone())).collect();
        let dest = move |e: usize, r: usize, p: usize| e * (rows_per_expert as usize) + r * np as usize + p;
        for (p, (w, b)) in parts.iter().enumerate() {
            let unit = sb * 17;
            let (stage_w, slots) = (stage.clone(), slots.clone());
            let rows = part_rows as usize;
            let mut out = vec![0u8; bb];
            let mut sc = vec![0u8; sb];
            let f = move |gpu: &Gpu, i: u64, src: &[u8]| {
                let (e, r) = (i as usize / rows, i as usize % rows);
                let d = dest(e, r, p);
                convert_row(src, &mut out, &mut sc);
                let (a, _, buf) = slots.iter().find(|(a, z, _)| (*a..*z).contains(&d)).expect("every row has a slice");
                gpu.write(buf, ((d - a) * bb) as u64, &out);
                let mut guard = stage_w.lock().unwrap_or_else(|e| e.into_inner());
                let st = guard.ready();
                st.scales[d * sb..(d + 1) * sb].copy_from_slice(&sc);
                if i as usize + 1 == n_experts as usize * rows {
                    st.part_done(gpu);
                }
            };
            self.plan.transform(0, w.offset..w.offset + w.bytes, unit, Box::new(f))?;
            // Biases: the whole (small) tensor, widened and scattered to its rows.
            let widen = bias_reader(b)?;
            let stage_b = stage.clone();
            let n = (n_experts as usize) * rows;
            let f = move |gpu: &Gpu, _: u64, src: &[u8]| {
                let v = widen(src);
                let mut guard = stage_b.lock().unwrap_or_else(|e| e.into_inner());
                let st = guard.ready();
                for (k, val) in v.into_iter().enumerate().take(n) {
                    st.bias[dest(k / rows, k % rows, p)] = val;
                }
                st.part_done(gpu);
            };
            self.plan.transform(0, b.offset..b.offset + b.bytes, b.bytes as usize, Box::new(f))?;
        }
        Ok(x)
    }

    /// The router: a bf16 matrix for the MoE kernels. F32 routers (the converter's choice) are
    /// rounded to bf16, which is exact for gpt-oss, whose router was trained in bf16.
    fn router(&mut self, w: &GgufTensor, bias: &GgufTensor, experts: u32, cols: u32) -> Result<Bf16Matrix> {
        let m = Bf16Matrix::allocate(self.gpu, &w.name, experts, cols, true)?;
        let row = cols as u64;
        for s in &m.slices {
            let (a, b) = (s.row_start as u64, s.row_end as u64);
            match qtype(w)? {
                QType::BF16 => self.plan.copy(0, w.offset + a * row * 2..w.offset + b * row * 2, &s.buffers[0], 0)?,
                QType::F32 => {
                    let buf = s.buffers[0].clone();
                    let f = move |gpu: &Gpu, _: u64, src: &[u8]| {
                        let v: Vec<u16> = src.chunks_exact(4).map(|c| f32_to_bf16(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect();
                        gpu.write(&buf, 0, bytemuck::cast_slice(&v));
                    };
                    let range = w.offset + a * row * 4..w.offset + b * row * 4;
                    let len = (range.end - range.start) as usize;
                    self.plan.transform(0, range, len, Box::new(f))?;
                }
                other => return Err(Error::tensor(&w.name, format!("has type {}; the router must be BF16 or F32", other.name()))),
            }
            self.vector_into(bias, a as usize, b as usize, &s.buffers[1], 0)?;
        }
        Ok(m)
    }
}

/// Round to nearest even, as torch does.
fn f32_to_bf16(x: f32) -> u16 {
    if x.is_nan() {
        return 0x7FC0;
    }
    let b = x.to_bits();
    ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// Reads F32, F16 or BF16 bias values as f32.
fn bias_reader(t: &GgufTensor) -> Result<impl Fn(&[u8]) -> Vec<f32> + Send + 'static> {
    let q = qtype(t)?;
    if !matches!(q, QType::F32 | QType::F16 | QType::BF16) {
        return Err(Error::tensor(&t.name, format!("a bias must be F32, F16 or BF16, not {}", q.name())));
    }
    Ok(move |src: &[u8]| -> Vec<f32> {
        match q {
            QType::F32 => src.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            QType::F16 => src.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            _ => src.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect(),
        }
    })
}

/// Checks a tensor's logical shape (outermost first).
fn expect_dims(t: &GgufTensor, shape: &[u64]) -> Result<()> {
    let mut dims = t.dims.clone();
    dims.reverse();
    if dims != shape {
        return Err(Error::tensor(&t.name, format!("has shape {dims:?}, expected {shape:?} for this configuration")));
    }
    Ok(())
}

/// Validates every tensor, allocates the weights and plans where each byte of the file goes.
pub(super) fn plan(gpu: &Gpu, cfg: &Config, g: &Gguf) -> Result<Planned> {
    let (h, v, f) = (cfg.hidden_size as u64, cfg.vocab_size as u64, cfg.intermediate_size as u64);
    let (hq, d) = (cfg.num_attention_heads as u64, cfg.head_dim as u64);
    let e = cfg.num_local_experts as u64;
    let mut p = Planner { gpu, g, plan: StreamPlan::new([(g.file.clone(), g.file_size)]) };
    let embed = p.linear("token_embd.weight", v, h)?;
    let mut layers = Vec::new();
    for l in 0..cfg.num_hidden_layers {
        let n = |s: &str| format!("blk.{l}.{s}");
        let attn_norm = p.vector(&n("attn_norm.weight"), h)?;
        let (weights, biases) = attn_qkv(g, cfg, l, true)?;
        let qkv = p.qkv(&n("attn_qkv"), weights, biases)?;
        let o = expect(g, &n("attn_output.weight"), &[h, hq * d])?;
        let o_bias = expect(g, &n("attn_output.bias"), &[h])?;
        let o = Linear::Quant(p.matrix(&o.name, &[o], Some(&[o_bias]))?);
        let sinks = p.vector(&n("attn_sinks.weight"), hq)?;
        let mlp_norm = p.vector(&n("post_attention_norm.weight"), h)?;
        let router = p.router(
            expect(g, &n("ffn_gate_inp.weight"), &[e, h])?,
            expect(g, &n("ffn_gate_inp.bias"), &[e])?,
            e as u32,
            h as u32,
        )?;
        let t = |s: &str| tensor(g, &n(s));
        let gate_up = p.experts(
            &n("ffn_gate_up_exps"),
            &[(t("ffn_gate_exps.weight")?, t("ffn_gate_exps.bias")?), (t("ffn_up_exps.weight")?, t("ffn_up_exps.bias")?)],
            e as u32,
            f as u32,
            h as u32,
        )?;
        let down = p.experts(&n("ffn_down_exps"), &[(t("ffn_down_exps.weight")?, t("ffn_down_exps.bias")?)], e as u32, h as u32, f as u32)?;
        layers.push(Layer { attn_norm, qkv, qk_norm: None, o, sinks, mlp_norm, mlp: Mlp::Moe { router, gate_up, down } });
    }
    let norm = p.vector("output_norm.weight", h)?;
    let lm_head = match g.tensor("output.weight") {
        Some(_) => Some(p.linear("output.weight", v, h)?),
        None => None,
    };
    gpu.take_error()?;
    Ok(Planned { weights: Weights { embed, layers, norm, lm_head }, plan: p.plan, rope: Rope::new(cfg), freq_factors: None })
}
