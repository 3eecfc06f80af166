//! gpt-oss weights on the GPU, read tensor by tensor from a Hugging Face checkpoint and
//! validated against the config (name, dtype, shape) before upload.

use crate::error::Result;
use crate::gpu::Gpu;
use crate::loader::{Dtype, TensorSource};
use crate::ops::{Bf16Matrix, Mxfp4Experts};

use super::config::Config;

pub struct Layer {
    pub attn_norm: wgpu::Buffer,
    /// q, k and v projections stacked by rows, with their biases.
    pub qkv: Bf16Matrix,
    pub o: Bf16Matrix,
    pub sinks: wgpu::Buffer,
    pub mlp_norm: wgpu::Buffer,
    pub router: Bf16Matrix,
    pub gate_up: Mxfp4Experts,
    pub down: Mxfp4Experts,
}

pub struct Weights {
    pub embed: Bf16Matrix,
    pub layers: Vec<Layer>,
    pub norm: wgpu::Buffer,
    pub lm_head: Bf16Matrix,
}

/// bf16 little-endian bytes to f32 values.
pub fn bf16_to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(2).map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)).collect()
}

/// Progress of a load: bytes uploaded so far, of the total.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

struct Reader<'a, 'p> {
    ckpt: &'a dyn TensorSource,
    gpu: &'a Gpu,
    done: u64,
    total: u64,
    progress: Progress<'p>,
}

impl<'a> Reader<'a, '_> {
    fn bf16(&mut self, name: &str, shape: &[usize]) -> Result<&'a [u8]> {
        let b = self.ckpt.expect(name, Dtype::BF16, shape)?;
        self.advance(b.len());
        Ok(b)
    }
    fn u8(&mut self, name: &str, shape: &[usize]) -> Result<&'a [u8]> {
        let b = self.ckpt.expect(name, Dtype::U8, shape)?;
        self.advance(b.len());
        Ok(b)
    }
    fn vector(&mut self, name: &str, len: usize) -> Result<wgpu::Buffer> {
        let v = bf16_to_f32(self.bf16(name, &[len])?);
        Ok(self.gpu.storage_with(name, bytemuck::cast_slice(&v)))
    }
    fn advance(&mut self, n: usize) {
        self.done += n as u64;
        (self.progress)(self.done, self.total);
    }
}

impl Weights {
    pub fn load(gpu: &Gpu, cfg: &Config, ckpt: &dyn TensorSource, progress: Progress) -> Result<Weights> {
        let total = ckpt.total_bytes();
        let mut r = Reader { ckpt, gpu, done: 0, total, progress };
        let (v, h) = (cfg.vocab_size as usize, cfg.hidden_size as usize);
        let (hq, hkv, d) = (cfg.num_attention_heads as usize, cfg.num_key_value_heads as usize, cfg.head_dim as usize);
        let (e, i) = (cfg.num_local_experts as usize, cfg.intermediate_size as usize);

        let embed = Bf16Matrix::upload(gpu, "model.embed_tokens.weight", h as u32, &[r.bf16("model.embed_tokens.weight", &[v, h])?], None)?;
        let mut layers = Vec::new();
        for l in 0..cfg.num_hidden_layers as usize {
            let p = format!("model.layers.{l}");
            let attn_norm = r.vector(&format!("{p}.input_layernorm.weight"), h)?;
            let q = r.bf16(&format!("{p}.self_attn.q_proj.weight"), &[hq * d, h])?;
            let k = r.bf16(&format!("{p}.self_attn.k_proj.weight"), &[hkv * d, h])?;
            let vv = r.bf16(&format!("{p}.self_attn.v_proj.weight"), &[hkv * d, h])?;
            let mut qkv_bias = bf16_to_f32(r.bf16(&format!("{p}.self_attn.q_proj.bias"), &[hq * d])?);
            qkv_bias.extend(bf16_to_f32(r.bf16(&format!("{p}.self_attn.k_proj.bias"), &[hkv * d])?));
            qkv_bias.extend(bf16_to_f32(r.bf16(&format!("{p}.self_attn.v_proj.bias"), &[hkv * d])?));
            let qkv = Bf16Matrix::upload(gpu, &format!("{p}.self_attn.qkv"), h as u32, &[q, k, vv], Some(&qkv_bias))?;
            let o_w = r.bf16(&format!("{p}.self_attn.o_proj.weight"), &[h, hq * d])?;
            let o_b = bf16_to_f32(r.bf16(&format!("{p}.self_attn.o_proj.bias"), &[h])?);
            let o = Bf16Matrix::upload(gpu, &format!("{p}.self_attn.o_proj.weight"), (hq * d) as u32, &[o_w], Some(&o_b))?;
            let sinks = r.vector(&format!("{p}.self_attn.sinks"), hq)?;
            let mlp_norm = r.vector(&format!("{p}.post_attention_layernorm.weight"), h)?;
            let rw = r.bf16(&format!("{p}.mlp.router.weight"), &[e, h])?;
            let rb = bf16_to_f32(r.bf16(&format!("{p}.mlp.router.bias"), &[e])?);
            let router = Bf16Matrix::upload(gpu, &format!("{p}.mlp.router.weight"), h as u32, &[rw], Some(&rb))?;

            let x = format!("{p}.mlp.experts");
            let gub = r.u8(&format!("{x}.gate_up_proj_blocks"), &[e, 2 * i, h / 32, 16])?;
            let gus = r.u8(&format!("{x}.gate_up_proj_scales"), &[e, 2 * i, h / 32])?;
            let gubias = bf16_to_f32(r.bf16(&format!("{x}.gate_up_proj_bias"), &[e, 2 * i])?);
            let gate_up =
                Mxfp4Experts::upload(gpu, &format!("{x}.gate_up_proj_blocks"), e as u32, 2 * i as u32, h as u32, gub, gus, &gubias, 2)?;
            let db = r.u8(&format!("{x}.down_proj_blocks"), &[e, h, i / 32, 16])?;
            let ds = r.u8(&format!("{x}.down_proj_scales"), &[e, h, i / 32])?;
            let dbias = bf16_to_f32(r.bf16(&format!("{x}.down_proj_bias"), &[e, h])?);
            let down = Mxfp4Experts::upload(gpu, &format!("{x}.down_proj_blocks"), e as u32, h as u32, i as u32, db, ds, &dbias, 1)?;
            layers.push(Layer { attn_norm, qkv, o, sinks, mlp_norm, router, gate_up, down });
            gpu.take_error()?;
        }
        let norm = r.vector("model.norm.weight", h)?;
        let lm_head = Bf16Matrix::upload(gpu, "lm_head.weight", h as u32, &[r.bf16("lm_head.weight", &[v, h])?], None)?;
        gpu.queue.submit([]);
        gpu.wait()?;
        Ok(Weights { embed, layers, norm, lm_head })
    }
}
