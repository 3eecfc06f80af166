//! The gpt-oss safetensors checkpoint's upload plan (see `models::load`): the checkpoint header
//! is validated against the config (name, dtype, shape of every tensor) before anything is
//! allocated, then [`plan`] maps each tensor's byte range in its file to its GPU destination(s) —
//! row slices that fit one binding, q/k/v stacked, biases widened to f32.

use crate::error::{Error, Result};
use crate::gpu::{stacked_parts, Gpu};
use crate::loader::stream::{StreamPlan, Widen, WidenTarget};
use crate::loader::{Dtype, Header, TensorEntry};
use crate::ops::{Bf16Matrix, Mxfp4Experts};

use crate::models::config::Config;
use crate::models::load::Planned;
use crate::models::rope::Rope;
use crate::models::weights::{Layer, Linear, Mlp, Qkv, Weights};

/// Every tensor a gpt-oss checkpoint must hold, with its dtype and shape from the config.
pub fn expected_tensors(cfg: &Config) -> Vec<(String, Dtype, Vec<usize>)> {
    let (v, h) = (cfg.vocab_size as usize, cfg.hidden_size as usize);
    let (hq, hkv, d) = (cfg.num_attention_heads as usize, cfg.num_key_value_heads as usize, cfg.head_dim as usize);
    let (e, i) = (cfg.num_local_experts as usize, cfg.intermediate_size as usize);
    let bf = Dtype::BF16;
    let mut t = vec![("model.embed_tokens.weight".to_string(), bf, vec![v, h])];
    for l in 0..cfg.num_hidden_layers as usize {
        let p = format!("model.layers.{l}");
        let x = format!("{p}.mlp.experts");
        t.extend([
            (format!("{p}.input_layernorm.weight"), bf, vec![h]),
            (format!("{p}.self_attn.q_proj.weight"), bf, vec![hq * d, h]),
            (format!("{p}.self_attn.k_proj.weight"), bf, vec![hkv * d, h]),
            (format!("{p}.self_attn.v_proj.weight"), bf, vec![hkv * d, h]),
            (format!("{p}.self_attn.q_proj.bias"), bf, vec![hq * d]),
            (format!("{p}.self_attn.k_proj.bias"), bf, vec![hkv * d]),
            (format!("{p}.self_attn.v_proj.bias"), bf, vec![hkv * d]),
            (format!("{p}.self_attn.o_proj.weight"), bf, vec![h, hq * d]),
            (format!("{p}.self_attn.o_proj.bias"), bf, vec![h]),
            (format!("{p}.self_attn.sinks"), bf, vec![hq]),
            (format!("{p}.post_attention_layernorm.weight"), bf, vec![h]),
            (format!("{p}.mlp.router.weight"), bf, vec![e, h]),
            (format!("{p}.mlp.router.bias"), bf, vec![e]),
            (format!("{x}.gate_up_proj_blocks"), Dtype::U8, vec![e, 2 * i, h / 32, 16]),
            (format!("{x}.gate_up_proj_scales"), Dtype::U8, vec![e, 2 * i, h / 32]),
            (format!("{x}.gate_up_proj_bias"), bf, vec![e, 2 * i]),
            (format!("{x}.down_proj_blocks"), Dtype::U8, vec![e, h, i / 32, 16]),
            (format!("{x}.down_proj_scales"), Dtype::U8, vec![e, h, i / 32]),
            (format!("{x}.down_proj_bias"), bf, vec![e, h]),
        ]);
    }
    t.push(("model.norm.weight".to_string(), bf, vec![h]));
    t.push(("lm_head.weight".to_string(), bf, vec![v, h]));
    t
}

/// Checks `num_hidden_layers` against the tensors the header holds before a name is built for
/// any layer, so that the work done is proportional to the file, not to a number in it.
fn check_layer_count(cfg: &Config, header: &Header) -> Result<()> {
    let layers = cfg.num_hidden_layers as usize;
    let n = header.tensors.len();
    if layers > n {
        return Err(Error::Config(format!("num_hidden_layers is {layers}, but the checkpoint holds only {n} tensors")));
    }
    let last = format!("model.layers.{}.input_layernorm.weight", layers.saturating_sub(1));
    if !header.tensors.contains_key(&last) {
        return Err(Error::Config(format!("num_hidden_layers is {layers}, but the checkpoint has no {last} (fewer layers)")));
    }
    Ok(())
}

/// Builds the segments of a bf16 matrix made of `parts` stacked by rows (q, k, v), split into
/// slices that fit one binding; biases (one per part, optional) are widened to f32.
struct Planner<'a> {
    gpu: &'a Gpu,
    header: &'a Header,
    plan: StreamPlan,
}

impl Planner<'_> {
    fn entry(&self, name: &str) -> &TensorEntry {
        // Every name was validated before planning.
        &self.header.tensors[name]
    }

    fn copy(&mut self, t: &TensorEntry, byte0: u64, byte1: u64, buf: &wgpu::Buffer, offset: u64) -> Result<()> {
        if !offset.is_multiple_of(4) {
            return Err(Error::tensor(&t.name, format!("rows of this width cannot be stacked at byte offset {offset} (not a multiple of 4)")));
        }
        self.plan.copy(t.file, t.range.start + byte0..t.range.start + byte1, buf, offset)
    }

    fn matrix(&mut self, label: &str, cols: u32, parts: &[&str], biases: Option<&[&str]>) -> Result<Bf16Matrix> {
        let row_bytes = cols as u64 * 2;
        let part_rows: Vec<u64> = parts.iter().map(|p| self.entry(p).shape[0] as u64).collect();
        let rows: u64 = part_rows.iter().sum();
        let m = Bf16Matrix::allocate(self.gpu, label, rows as u32, cols, biases.is_some())?;
        let placed = stacked_parts(&m.slices, &part_rows);
        for p in &placed {
            let t = self.entry(parts[p.part]).clone();
            let buf = &m.slices[p.slice].buffers[0];
            self.copy(&t, p.rows.start * row_bytes, p.rows.end * row_bytes, buf, p.at * row_bytes)?;
        }
        if let Some(biases) = biases {
            for (pi, name) in biases.iter().enumerate() {
                let targets = placed
                    .iter()
                    .filter(|p| p.part == pi)
                    .map(|p| (p.rows.start as usize, p.rows.end as usize, m.slices[p.slice].buffers[1].clone(), p.at * 4))
                    .collect();
                self.widen(name, targets)?;
            }
        }
        Ok(m)
    }

    fn widen(&mut self, name: &str, targets: Vec<WidenTarget>) -> Result<()> {
        let t = self.entry(name).clone();
        self.plan.widen(t.file, t.range.clone(), Widen::Bf16, targets)
    }

    fn vector(&mut self, name: &str) -> Result<wgpu::Buffer> {
        let n = self.entry(name).shape[0];
        let buf = self.gpu.storage(name, n as u64 * 4);
        self.widen(name, vec![(0, n, buf.clone(), 0)])?;
        Ok(buf)
    }

    fn experts(&mut self, prefix: &str, n_experts: u32, rows_per_expert: u32, cols: u32, granule: u32) -> Result<Mxfp4Experts> {
        let (blocks, scales, bias) = (format!("{prefix}_blocks"), format!("{prefix}_scales"), format!("{prefix}_bias"));
        let (bb, sb) = (cols as u64 / 2, cols as u64 / 32);
        let (tb, ts) = (self.entry(&blocks).clone(), self.entry(&scales).clone());
        let x = Mxfp4Experts::allocate(self.gpu, &blocks, n_experts, rows_per_expert, cols, granule)?;
        let mut targets = Vec::new();
        for s in &x.slices {
            let (a, b) = (s.row_start as u64, s.row_end as u64);
            self.copy(&tb, a * bb, b * bb, &s.buffers[0], 0)?;
            self.copy(&ts, a * sb, b * sb, &s.buffers[1], 0)?;
            targets.push((a as usize, b as usize, s.buffers[2].clone(), 0));
        }
        self.widen(&bias, targets)?;
        Ok(x)
    }
}

/// Validates the checkpoint's tensors against the config, allocates the weights' buffers and
/// plans where every byte of every file goes.
pub(crate) fn plan(gpu: &Gpu, cfg: &Config, header: &Header) -> Result<Planned> {
    check_layer_count(cfg, header)?;
    let expected = expected_tensors(cfg);
    for (name, dtype, shape) in &expected {
        header.expect(name, *dtype, shape)?;
    }
    if header.tensors.len() > expected.len() {
        let known: std::collections::BTreeSet<&str> = expected.iter().map(|(n, _, _)| n.as_str()).collect();
        if let Some(extra) = header.tensors.keys().find(|n| !known.contains(n.as_str())) {
            return Err(Error::tensor(
                extra,
                format!("is not part of a gpt-oss checkpoint with num_hidden_layers {}; the checkpoint has unused tensors", cfg.num_hidden_layers),
            ));
        }
    }
    let (h, hq, d) = (cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim);
    let (e, i) = (cfg.num_local_experts, cfg.intermediate_size);
    let files = header.files.iter().map(|f| (f.name.clone(), f.size));
    let mut p = Planner { gpu, header, plan: StreamPlan::new(files) };
    let embed = p.matrix("model.embed_tokens.weight", h, &["model.embed_tokens.weight"], None)?;
    let mut layers = Vec::new();
    for l in 0..cfg.num_hidden_layers as usize {
        let a = format!("model.layers.{l}.self_attn");
        let n = |s: &str| format!("{a}.{s}");
        let attn_norm = p.vector(&format!("model.layers.{l}.input_layernorm.weight"))?;
        let qkv = p.matrix(
            &n("qkv"),
            h,
            &[&n("q_proj.weight"), &n("k_proj.weight"), &n("v_proj.weight")],
            Some(&[&n("q_proj.bias"), &n("k_proj.bias"), &n("v_proj.bias")]),
        )?;
        let o = p.matrix(&n("o_proj.weight"), hq * d, &[&n("o_proj.weight")], Some(&[&n("o_proj.bias")]))?;
        let sinks = p.vector(&n("sinks"))?;
        let mlp_norm = p.vector(&format!("model.layers.{l}.post_attention_layernorm.weight"))?;
        let m = format!("model.layers.{l}.mlp");
        let router = p.matrix(&format!("{m}.router.weight"), h, &[&format!("{m}.router.weight")], Some(&[&format!("{m}.router.bias")]))?;
        let gate_up = p.experts(&format!("{m}.experts.gate_up_proj"), e, 2 * i, h, 2)?;
        let down = p.experts(&format!("{m}.experts.down_proj"), e, h, i, 1)?;
        layers.push(Layer {
            attn_norm,
            qkv: Qkv::Stacked(Linear::Bf16(qkv)),
            qk_norm: None,
            o: Linear::Bf16(o),
            sinks,
            mlp_norm,
            mlp: Mlp::Moe { router, gate_up, down },
        });
    }
    let norm = p.vector("model.norm.weight")?;
    let lm_head = p.matrix("lm_head.weight", h, &["lm_head.weight"], None)?;
    gpu.take_error()?;
    let (embed, lm_head) = (Linear::Bf16(embed), Some(Linear::Bf16(lm_head)));
    Ok(Planned { weights: Weights { embed, layers, norm, lm_head }, plan: p.plan, rope: Rope::new(cfg), freq_factors: None })
}
