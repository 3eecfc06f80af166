//! One function per kernel: each records its dispatch(es) into a command encoder.
//! Weights arrive as row slices (see `gpu::slices`); a sliced weight costs one dispatch per slice.
//! `cpu` holds the plain Rust reference of every kernel, used by the tests.

use crate::gpu::{Kernel, Recorder};
use params::*;


macro_rules! kernel {
    ($name:ident, $file:literal, $entry:literal, $params:ty) => {
        pub const $name: Kernel = Kernel {
            name: $entry,
            file: $file,
            source: include_str!(concat!("../../shaders/", $file)),
            entry: $entry,
            params: <$params as crate::gpu::KernelParams>::FIELDS,
        };
    };
}

mod attention;
pub mod cpu;
mod moe;
pub mod params;
pub mod quant;
pub mod sample;
mod tensors;
pub use attention::{
    attention, attention_max_parts, attention_partials_bytes, qkv_rope_store, rope_qk_store, AttnShape, KvCache, RopeStyle,
    ATTN_MERGE, ATTN_PARTIAL, ATTN_PARTIAL_GQA, MATVEC_QKV_ROPE, ROPE_QK_STORE,
};
pub use moe::{
    expert_accumulate, expert_down, expert_down_accumulate, expert_gate_up, moe_route, topk_softmax, RouteIo, Routed, Swiglu,
    GROUPED_MIN_TOKENS,
};
pub use quant::{qembed, qmatmul, QMatrix, QType};
pub use tensors::{Bf16Matrix, KvSegment, Mxfp4Experts};

kernel!(EMBED_GATHER, "embed.wgsl", "embed_gather", EmbedParams);
kernel!(RMSNORM, "rmsnorm.wgsl", "rmsnorm", RmsNormParams);
kernel!(MATVEC_BF16, "matmul_bf16.wgsl", "matvec", MatmulParams);
kernel!(MATVEC_NARROW_BF16, "matmul_bf16.wgsl", "matvec_narrow", MatmulParams);
kernel!(MATVEC_WIDE_BF16, "matmul_bf16.wgsl", "matvec_wide", MatmulParams);
kernel!(MATMAT_BF16, "matmul_bf16.wgsl", "matmat", MatmulParams);
kernel!(ARGMAX_PARTIAL, "argmax.wgsl", "argmax_partial", ArgmaxParams);
kernel!(ARGMAX_FINAL, "argmax.wgsl", "argmax_final", ArgmaxParams);
kernel!(SILU_MUL, "activation.wgsl", "silu_mul", SiluMulParams);
kernel!(FILL_RANDOM, "fill.wgsl", "fill_random", FillParams);
kernel!(READ_BANDWIDTH, "bandwidth.wgsl", "read_bandwidth", BandwidthParams);
kernel!(READ_BANDWIDTH_BLOCKED, "bandwidth.wgsl", "read_bandwidth_blocked", BandwidthParams);

/// Every kernel, for shader validation and translation tests.
pub fn all_kernels() -> Vec<Kernel> {
    CORE_KERNELS.iter().chain(moe::KERNELS).chain(attention::KERNELS).chain(sample::KERNELS).copied().chain(quant::kernels()).collect()
}

const CORE_KERNELS: &[Kernel] = &[
    EMBED_GATHER,
    RMSNORM,
    MATVEC_BF16,
    MATVEC_NARROW_BF16,
    MATVEC_WIDE_BF16,
    MATMAT_BF16,
    ARGMAX_PARTIAL,
    ARGMAX_FINAL,
    SILU_MUL,
    FILL_RANDOM,
    READ_BANDWIDTH,
    READ_BANDWIDTH_BLOCKED,
];

pub fn embed(rec: &mut Recorder, tokens: &wgpu::Buffer, n_tokens: u32, table: &Bf16Matrix, out: &wgpu::Buffer) {
    for s in &table.slices {
        rec.dispatch(&EMBED_GATHER,
            &EmbedParams { n_tokens, hidden: table.cols, row_start: s.row_start, row_end: s.row_end },
            &[tokens, &s.buffers[0], out],
            [(table.cols / 2).div_ceil(64), n_tokens, 1],
        );
    }
}

/// RMSNorm of `n_tokens` rows of x starting at row `first_token`, written to out rows 0...
#[allow(clippy::too_many_arguments)]
pub fn rmsnorm(
    rec: &mut Recorder,
    x: &wgpu::Buffer,
    first_token: u32,
    n_tokens: u32,
    hidden: u32,
    weight: &wgpu::Buffer,
    eps: f32,
    out: &wgpu::Buffer,
) {
    rec.dispatch(&RMSNORM,
        &RmsNormParams { n_tokens, hidden, eps, x_offset: first_token * hidden },
        &[x, weight, out],
        [n_tokens, 1, 1],
    );
}

/// Where a matmul reads its input rows and writes its output rows.
#[derive(Clone, Copy, Debug)]
pub struct MatmulIo {
    pub n_tokens: u32,
    pub x_offset: u32,
    pub x_stride: u32,
    pub y_stride: u32,
    pub y_offset: u32,
    /// Add into y instead of overwriting it (residual connections).
    pub accumulate: bool,
}

/// Rows per workgroup of the decode mat-vec (`MV_ROWS` in matmul_bf16.wgsl).
const MATVEC_ROWS: u32 = 8;
/// Rows up to this many columns are short enough for one thread each in decode.
const NARROW_COLS: u32 = 512;

/// RMSNorm of a mat-vec's input rows, applied on the fly: x / sqrt(mean(x^2) + eps) * weight.
#[derive(Clone, Copy)]
pub struct InputNorm<'a> {
    pub weight: &'a wgpu::Buffer,
    pub eps: f32,
}

/// y[t, y_offset + r] (+)= x[t] . W[r] + bias[r], one dispatch per slice of W.
pub fn matmul(rec: &mut Recorder, x: &wgpu::Buffer, w: &Bf16Matrix, y: &wgpu::Buffer, io: MatmulIo) {
    matmul_with(rec, x, None, w, y, io)
}

/// Whether `matmul_normed` folds the norm into the mat-vec (decode shapes) instead of a
/// separate RMSNorm dispatch.
pub fn folds_input_norm(io: MatmulIo) -> bool {
    io.n_tokens <= 4
}

/// y = RMSNorm(x) . W^T (+ bias), like `rmsnorm` into `scratch` followed by `matmul`. Decode
/// mat-vecs normalize in each workgroup (no dispatch, no scratch); other shapes use `scratch`
/// ([n_tokens, cols] f32).
#[allow(clippy::too_many_arguments)]
pub fn matmul_normed(
    rec: &mut Recorder,
    x: &wgpu::Buffer,
    norm: InputNorm,
    scratch: &wgpu::Buffer,
    w: &Bf16Matrix,
    y: &wgpu::Buffer,
    io: MatmulIo,
) {
    if folds_input_norm(io) {
        return matmul_with(rec, x, Some(norm), w, y, io);
    }
    // The normalized rows are packed from row 0 of `scratch`.
    debug_assert!(io.x_stride == w.cols && io.x_offset.is_multiple_of(w.cols.max(1)), "input rows are whole, consecutive rows");
    rmsnorm(rec, x, io.x_offset / w.cols.max(1), io.n_tokens, w.cols, norm.weight, norm.eps, scratch);
    matmul_with(rec, scratch, None, w, y, MatmulIo { x_offset: 0, x_stride: w.cols, ..io })
}

fn matmul_with(rec: &mut Recorder, x: &wgpu::Buffer, norm: Option<InputNorm>, w: &Bf16Matrix, y: &wgpu::Buffer, io: MatmulIo) {
    for s in &w.slices {
        let rows = s.row_end - s.row_start;
        let bias = s.buffers.get(1);
        let flags = bias.is_some() as u32 | ((io.accumulate as u32) << 1) | ((norm.is_some() as u32) << 2);
        let eps = norm.map_or(0.0, |n| n.eps);
        let params = MatmulParams {
            n_tokens: io.n_tokens, rows, cols: w.cols, x_offset: io.x_offset, x_stride: io.x_stride,
            y_stride: io.y_stride, y_offset: io.y_offset + s.row_start, flags, norm_eps: eps,
        };
        let dummy = rec.gpu.dummy.clone();
        let norm_weight = norm.map_or(&dummy, |n| n.weight);
        let bufs = [x, &s.buffers[0], bias.unwrap_or(&dummy), y, norm_weight];
        rec.reads(rows as u64 * w.cols as u64 * 2 + io.n_tokens as u64 * w.cols as u64 * 4);
        if io.n_tokens <= 4 && w.cols <= NARROW_COLS {
            let (gx, gy) = rec.gpu.grid_2d(rows.div_ceil(64));
            rec.dispatch(&MATVEC_NARROW_BF16, &params, &bufs, [gx, gy, io.n_tokens]);
        } else if io.n_tokens <= 4 {
            // 16-byte loads when rows and input rows are 16-byte aligned.
            let wide = w.cols.is_multiple_of(8) && io.x_offset.is_multiple_of(4) && (io.x_stride.is_multiple_of(4) || io.n_tokens == 1);
            let kernel = if wide { &MATVEC_WIDE_BF16 } else { &MATVEC_BF16 };
            let (gx, gy) = rec.gpu.grid_2d(rows.div_ceil(MATVEC_ROWS));
            rec.dispatch(kernel, &params, &bufs, [gx, gy, io.n_tokens]);
        } else {
            assert!(norm.is_none(), "prefill GEMMs take normalized inputs from scratch");
            rec.dispatch(&MATMAT_BF16, &params, &bufs[..4], [rows.div_ceil(64), io.n_tokens.div_ceil(64), 1]);
        }
    }
}

/// act[j] = silu(gate[j]) * act[j] for the first `n` values (the dense gated MLP).
pub fn silu_mul(rec: &mut Recorder, n: u32, gate: &wgpu::Buffer, act: &wgpu::Buffer) {
    let (gx, gy) = rec.gpu.grid_2d(n.div_ceil(256));
    rec.dispatch(&SILU_MUL, &SiluMulParams { n, row: gx * 256 }, &[gate, act], [gx, gy, 1]);
}

/// Logits per workgroup of `argmax_partial` (`CHUNK` in argmax.wgsl).
const ARGMAX_CHUNK: u32 = 1024;

/// Bytes of the scratch `argmax` needs for `n` logits.
pub fn argmax_scratch_bytes(n: u32) -> u64 {
    n.div_ceil(ARGMAX_CHUNK).max(1) as u64 * 8
}

/// out[0] = argmax of logits[offset .. offset + n] (lowest index on ties), in two dispatches:
/// one workgroup per 1,024 logits, then one over their results (`parts`, see
/// `argmax_scratch_bytes`).
pub fn argmax(rec: &mut Recorder, logits: &wgpu::Buffer, offset: u32, n: u32, parts: &wgpu::Buffer, out: &wgpu::Buffer) {
    let n_parts = n.div_ceil(ARGMAX_CHUNK).max(1);
    assert!(parts.size() >= argmax_scratch_bytes(n), "argmax scratch of {} bytes for {n} logits", parts.size());
    let (gx, gy) = rec.gpu.grid_2d(n_parts);
    rec.reads(n as u64 * 4);
    rec.dispatch(&ARGMAX_PARTIAL, &ArgmaxParams { n, offset, n_parts }, &[logits, parts], [gx, gy, 1]);
    rec.dispatch(&ARGMAX_FINAL, &ArgmaxParams { n, offset, n_parts }, &[parts, out], [1, 1, 1]);
}

/// What `fill_random` writes.
#[derive(Clone, Copy, Debug)]
pub enum Fill {
    /// bf16 pairs uniform in base ± scale.
    Bf16 { base: f32, scale: f32 },
    /// f32 uniform in base ± scale.
    F32 { base: f32, scale: f32 },
    /// Random bits (MXFP4 blocks).
    Bits,
    /// E8M0 scale bytes between 2^-9 and 2^-6.
    Mxfp4Scales,
}

/// Fills the first `bytes` (a multiple of 4) of `buf` with pseudo-random contents keyed by `seed`.
pub fn fill_random(rec: &mut Recorder, buf: &wgpu::Buffer, bytes: u64, fill: Fill, seed: u32) {
    let n_words = (bytes / 4) as u32;
    let (kind, base, scale) = match fill {
        Fill::Bf16 { base, scale } => (0, base, scale),
        Fill::F32 { base, scale } => (1, base, scale),
        Fill::Bits => (2, 0.0, 0.0),
        Fill::Mxfp4Scales => (3, 0.0, 0.0),
    };
    let (gx, gy) = rec.gpu.grid_2d(n_words.div_ceil(256));
    rec.dispatch(&FILL_RANDOM, &FillParams { n_words, kind, seed, base, scale }, &[buf], [gx, gy, 1]);
}

/// Reads the first `bytes` (a multiple of 16) of `buf` once: strided across the grid
/// (`blocked` false, the GPU layout) or a contiguous block per invocation (`blocked` true).
pub fn read_bandwidth(rec: &mut Recorder, buf: &wgpu::Buffer, bytes: u64, sink: &wgpu::Buffer, blocked: bool) {
    let n_vec4 = (bytes / 16) as u32;
    // Enough invocations to fill any GPU; blocks of 64 KiB per invocation for CPU drivers.
    let groups = if blocked { n_vec4.div_ceil(256 * 4096) } else { n_vec4.div_ceil(256 * 16) }.clamp(1, 65535);
    let (gx, gy) = rec.gpu.grid_2d(groups);
    let kernel = if blocked { &READ_BANDWIDTH_BLOCKED } else { &READ_BANDWIDTH };
    rec.reads(bytes);
    rec.dispatch(kernel, &BandwidthParams { n_vec4, threads: gx * gy * 256 }, &[buf, sink], [gx, gy, 1]);
}
