//! Weights of a model on the GPU, by part: each layer has an attention block and either a
//! mixture of experts (gpt-oss) or a dense gated MLP (the Llama family).

use crate::gpu::Recorder;
use crate::ops::{self, Bf16Matrix, InputNorm, MatmulIo, Mxfp4Experts, QMatrix};

/// Progress of a load: bytes uploaded so far, of the total.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// A weight matrix [rows, cols] applied as y = W x (+ b).
pub enum Linear {
    Bf16(Bf16Matrix),
    /// Any GGUF type (F32, F16, BF16, the block quantizations), decoded in the kernels.
    Quant(QMatrix),
}

impl Linear {
    pub fn rows(&self) -> u32 {
        match self {
            Linear::Bf16(m) => m.rows,
            Linear::Quant(m) => m.rows,
        }
    }

    pub fn cols(&self) -> u32 {
        match self {
            Linear::Bf16(m) => m.cols,
            Linear::Quant(m) => m.cols,
        }
    }

    /// Bytes of one row as stored (weights only).
    pub fn row_bytes(&self) -> u64 {
        match self {
            Linear::Bf16(m) => m.cols as u64 * 2,
            Linear::Quant(m) => m.row_bytes(),
        }
    }

    /// Bytes a mat-vec reads: every row and the biases.
    pub fn bytes(&self) -> u64 {
        let bias = |slices: &[crate::gpu::RowSlice]| if slices.iter().any(|s| s.buffers.len() > 1) { 4 } else { 0 };
        let per_row = match self {
            Linear::Bf16(m) => bias(&m.slices),
            Linear::Quant(m) => bias(&m.slices),
        };
        self.rows() as u64 * (self.row_bytes() + per_row)
    }

    /// y[t, y_offset + r] (+)= x[t] . W[r] + bias[r].
    pub fn apply(&self, rec: &mut Recorder, x: &wgpu::Buffer, y: &wgpu::Buffer, io: MatmulIo) {
        match self {
            Linear::Bf16(m) => ops::matmul(rec, x, m, y, io),
            Linear::Quant(m) => ops::qmatmul(rec, x, m, y, io),
        }
    }

    /// y = RMSNorm(x) . W^T (+ bias): the norm folded into the mat-vec where the kernel can,
    /// else computed into `scratch` ([n_tokens, cols] f32) first.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_normed(&self, rec: &mut Recorder, x: &wgpu::Buffer, norm: InputNorm, scratch: &wgpu::Buffer, y: &wgpu::Buffer, io: MatmulIo) {
        match self {
            Linear::Bf16(m) => ops::matmul_normed(rec, x, norm, scratch, m, y, io),
            Linear::Quant(m) => {
                let first = io.x_offset / m.cols.max(1);
                ops::rmsnorm(rec, x, first, io.n_tokens, m.cols, norm.weight, norm.eps, scratch);
                ops::qmatmul(rec, scratch, m, y, MatmulIo { x_offset: 0, x_stride: m.cols, ..io });
            }
        }
    }

    /// out[t] = row tokens[t] of the matrix (an embedding table).
    pub fn gather(&self, rec: &mut Recorder, tokens: &wgpu::Buffer, n_tokens: u32, out: &wgpu::Buffer) {
        match self {
            Linear::Bf16(m) => ops::embed(rec, tokens, n_tokens, m, out),
            Linear::Quant(m) => ops::qembed(rec, tokens, n_tokens, m, out),
        }
    }
}

/// The q, k and v projections: stacked by rows in one matrix when they share a format (with the
/// fused decode kernel), or three matrices writing into the rows of one [q | k | v] buffer.
pub enum Qkv {
    Stacked(Linear),
    Separate { q: Linear, k: Linear, v: Linear },
}

/// The MLP of a layer.
pub enum Mlp {
    /// gpt-oss: router, then top-k MXFP4 experts with interleaved gate/up rows and clamped SwiGLU.
    Moe { router: Bf16Matrix, gate_up: Mxfp4Experts, down: Mxfp4Experts },
    /// Llama family: down(silu(gate x) * up x).
    Dense { gate: Linear, up: Linear, down: Linear },
}

pub struct Layer {
    pub attn_norm: wgpu::Buffer,
    pub qkv: Qkv,
    /// Per-head RMSNorm weights of q and k, applied before RoPE (qwen3).
    pub qk_norm: Option<(wgpu::Buffer, wgpu::Buffer)>,
    pub o: Linear,
    /// One logit per query head that joins every softmax (gpt-oss); models without sinks get a
    /// large negative value, which adds nothing.
    pub sinks: wgpu::Buffer,
    pub mlp_norm: wgpu::Buffer,
    pub mlp: Mlp,
}

pub struct Weights {
    pub embed: Linear,
    pub layers: Vec<Layer>,
    pub norm: wgpu::Buffer,
    /// The output projection; `None` when it is the embedding table (tied).
    pub lm_head: Option<Linear>,
}

impl Weights {
    pub fn lm_head(&self) -> &Linear {
        self.lm_head.as_ref().unwrap_or(&self.embed)
    }

    /// Bytes of weights one decoded token reads in a dense model: every matrix, norm and bias,
    /// the LM head and one embedding row (experts are counted from the config instead, see
    /// `Config::moe_weight_bytes_per_token`).
    pub fn dense_bytes_per_token(&self) -> u64 {
        let mut total = self.embed.row_bytes() + self.lm_head().bytes() + self.norm.size();
        for l in &self.layers {
            total += l.attn_norm.size() + l.mlp_norm.size() + l.o.bytes();
            total += match &l.qkv {
                Qkv::Stacked(m) => m.bytes(),
                Qkv::Separate { q, k, v } => q.bytes() + k.bytes() + v.bytes(),
            };
            if let Some((q, k)) = &l.qk_norm {
                total += q.size() + k.size();
            }
            if let Mlp::Dense { gate, up, down } = &l.mlp {
                total += gate.bytes() + up.bytes() + down.bytes();
            }
        }
        total
    }
}
