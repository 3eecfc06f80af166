//! gpt-oss models with random weights of the real shapes, made directly on the GPU: no file,
//! no download and no host copy of the weights. They measure speed at full size on any device
//! (`wgpt bench --synthetic gpt-oss-20b`); their output is meaningless text.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder};
use crate::ops::{self, Bf16Matrix, Fill, Mxfp4Experts};

use crate::models::config::Config;
use crate::models::weights::{Layer, Linear, Mlp, Progress, Qkv, Weights};
use crate::models::Model;

/// Names accepted by [`preset`].
pub const PRESETS: &[&str] = &["gpt-oss-20b", "gpt-oss-120b"];

/// The published configuration of gpt-oss-20b or gpt-oss-120b, optionally cut to `layers`.
pub fn preset(name: &str, layers: Option<u32>) -> Result<Config> {
    let (n_layers, n_experts) = match name {
        "gpt-oss-20b" => (24, 32),
        "gpt-oss-120b" => (36, 128),
        other => return Err(Error::Input(format!("unknown model {other:?}: expected one of {}", PRESETS.join(", ")))),
    };
    let n_layers = match layers {
        Some(0) => return Err(Error::Input("--layers must be at least 1".into())),
        Some(n) => n,
        None => n_layers,
    };
    let json = serde_json::json!({
        "model_type": "gpt_oss",
        "architectures": ["GptOssForCausalLM"],
        "vocab_size": 201088, "hidden_size": 2880, "intermediate_size": 2880,
        "num_hidden_layers": n_layers, "num_attention_heads": 64, "num_key_value_heads": 8,
        "head_dim": 64, "num_local_experts": n_experts, "num_experts_per_tok": 4,
        "sliding_window": 128, "rms_norm_eps": 1e-5, "rope_theta": 150000.0,
        "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                         "original_max_position_embeddings": 4096, "truncate": false},
        "max_position_embeddings": 131072, "swiglu_limit": 7.0,
        "quantization_config": {"quant_method": "mxfp4"},
        "eos_token_id": 200002,
    });
    super::config::from_json(&json.to_string())
}

/// Fills buffers a few at a time, submitting now and then so no command buffer grows large.
struct Filler<'a> {
    gpu: &'a Gpu,
    rec: Option<Recorder<'a>>,
    seed: u32,
    pending: u64,
}

impl<'a> Filler<'a> {
    fn fill(&mut self, buf: &wgpu::Buffer, fill: Fill) {
        let gpu = self.gpu;
        let rec = self.rec.get_or_insert_with(|| Recorder::new(gpu));
        self.seed = self.seed.wrapping_add(0x9e37_79b9);
        ops::fill_random(rec, buf, buf.size(), fill, self.seed);
        self.pending += buf.size();
        if self.pending >= 1 << 30 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Some(rec) = self.rec.take() {
            rec.submit();
            let _ = self.gpu.wait();
        }
        self.pending = 0;
    }

    fn matrix(&mut self, m: &Bf16Matrix) {
        let scale = 1.0 / (m.cols as f32).sqrt();
        for s in &m.slices {
            self.fill(&s.buffers[0], Fill::Bf16 { base: 0.0, scale });
            if let Some(b) = s.buffers.get(1) {
                self.fill(b, Fill::F32 { base: 0.0, scale: 0.02 });
            }
        }
    }

    fn experts(&mut self, x: &Mxfp4Experts) {
        for s in &x.slices {
            self.fill(&s.buffers[0], Fill::Bits);
            self.fill(&s.buffers[1], Fill::Mxfp4Scales);
            self.fill(&s.buffers[2], Fill::F32 { base: 0.0, scale: 0.02 });
        }
    }

    fn vector(&mut self, name: &str, len: u32, fill: Fill) -> wgpu::Buffer {
        let b = self.gpu.storage(name, len as u64 * 4);
        self.fill(&b, fill);
        b
    }
}

impl Model {
    /// A model of `cfg`'s shapes with random weights written on the GPU (`progress` gets layers
    /// done of the total).
    pub fn synthetic(gpu: Arc<Gpu>, cfg: Config, seed: u32, progress: Progress) -> Result<Arc<Model>> {
        let g = &*gpu;
        let (v, h) = (cfg.vocab_size, cfg.hidden_size);
        let (hq, d) = (cfg.num_attention_heads, cfg.head_dim);
        let (e, i) = (cfg.num_local_experts, cfg.intermediate_size);
        let mut f = Filler { gpu: g, rec: None, seed, pending: 0 };
        let total = cfg.num_hidden_layers as u64 + 2;
        let embed = Bf16Matrix::allocate(g, "embed", v, h, false)?;
        f.matrix(&embed);
        progress(1, total);
        let norm_fill = Fill::F32 { base: 1.0, scale: 0.1 };
        let mut layers = Vec::new();
        for l in 0..cfg.num_hidden_layers {
            let qkv = Bf16Matrix::allocate(g, "qkv", cfg.qkv_width(), h, true)?;
            let o = Bf16Matrix::allocate(g, "o", h, hq * d, true)?;
            let router = Bf16Matrix::allocate(g, "router", e, h, true)?;
            let gate_up = Mxfp4Experts::allocate(g, "gate_up", e, 2 * i, h, 2)?;
            let down = Mxfp4Experts::allocate(g, "down", e, h, i, 1)?;
            f.matrix(&qkv);
            f.matrix(&o);
            f.matrix(&router);
            f.experts(&gate_up);
            f.experts(&down);
            layers.push(Layer {
                attn_norm: f.vector("attn norm", h, norm_fill),
                qkv: Qkv::Stacked(Linear::Bf16(qkv)),
                qk_norm: None,
                o: Linear::Bf16(o),
                sinks: f.vector("sinks", hq, Fill::F32 { base: 0.0, scale: 1.0 }),
                mlp_norm: f.vector("mlp norm", h, norm_fill),
                mlp: Mlp::Moe { router, gate_up, down },
            });
            g.take_error()?;
            progress(l as u64 + 2, total);
        }
        let norm = f.vector("final norm", h, norm_fill);
        let lm_head = Bf16Matrix::allocate(g, "lm_head", v, h, false)?;
        f.matrix(&lm_head);
        f.flush();
        g.wait()?;
        progress(total, total);
        let weights = Weights { embed: Linear::Bf16(embed), layers, norm, lm_head: Some(Linear::Bf16(lm_head)) };
        Ok(Model::from_weights(gpu, cfg, weights))
    }
}
