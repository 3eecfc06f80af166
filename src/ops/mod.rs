//! One function per kernel: each records its dispatch(es) into a command encoder.
//! Weights arrive as row slices (see `gpu::slices`); a sliced weight costs one dispatch per slice.
//! `cpu` holds the plain Rust reference of every kernel, used by the tests.

use crate::gpu::{Kernel, Recorder};


macro_rules! kernel {
    ($name:ident, $file:literal, $entry:literal) => {
        pub const $name: Kernel = Kernel {
            name: $entry,
            file: $file,
            source: include_str!(concat!("../../shaders/", $file)),
            entry: $entry,
        };
    };
}

mod attention;
pub mod cpu;
pub mod quant;
pub mod sample;
mod tensors;
pub use attention::{
    attention, attention_max_parts, attention_partials_bytes, qkv_rope_store, rope_qk_store, AttnShape, KvCache, RopeStyle,
    ATTN_MERGE, ATTN_PARTIAL, ATTN_PARTIAL_GQA, MATVEC_QKV_ROPE, ROPE_QK_STORE,
};
pub use quant::{qembed, qmatmul, QMatrix, QType};
pub use tensors::{Bf16Matrix, KvSegment, Mxfp4Experts};

kernel!(EMBED_GATHER, "embed.wgsl", "embed_gather");
kernel!(RMSNORM, "rmsnorm.wgsl", "rmsnorm");
kernel!(MATVEC_BF16, "matmul_bf16.wgsl", "matvec");
kernel!(MATVEC_NARROW_BF16, "matmul_bf16.wgsl", "matvec_narrow");
kernel!(MATVEC_WIDE_BF16, "matmul_bf16.wgsl", "matvec_wide");
kernel!(MATMAT_BF16, "matmul_bf16.wgsl", "matmat");
kernel!(TOPK_SOFTMAX, "moe_route.wgsl", "topk_softmax");
kernel!(ROUTE, "moe_route.wgsl", "route");
kernel!(EXPERT_ACCUMULATE, "moe_route.wgsl", "expert_accumulate");
kernel!(EXPERT_GATE_UP_SWIGLU, "matmul_mxfp4.wgsl", "expert_gate_up_swiglu");
kernel!(EXPERT_DOWN, "matmul_mxfp4.wgsl", "expert_down");
kernel!(EXPERT_DOWN_ACCUMULATE, "matmul_mxfp4.wgsl", "expert_down_accumulate");
kernel!(EXPERT_GATE_UP_SWIGLU_GROUPED, "matmul_mxfp4.wgsl", "expert_gate_up_swiglu_grouped");
kernel!(EXPERT_DOWN_GROUPED, "matmul_mxfp4.wgsl", "expert_down_grouped");
kernel!(ARGMAX_PARTIAL, "argmax.wgsl", "argmax_partial");
kernel!(ARGMAX_FINAL, "argmax.wgsl", "argmax_final");
kernel!(SILU_MUL, "activation.wgsl", "silu_mul");
kernel!(FILL_RANDOM, "fill.wgsl", "fill_random");
kernel!(READ_BANDWIDTH, "bandwidth.wgsl", "read_bandwidth");
kernel!(READ_BANDWIDTH_BLOCKED, "bandwidth.wgsl", "read_bandwidth_blocked");

/// Every kernel, for shader validation and translation tests.
pub fn all_kernels() -> Vec<Kernel> {
    CORE_KERNELS.iter().chain(sample::KERNELS).chain(attention::KERNELS).copied().chain(quant::kernels()).collect()
}

const CORE_KERNELS: &[Kernel] = &[
    EMBED_GATHER,
    RMSNORM,
    MATVEC_BF16,
    MATVEC_NARROW_BF16,
    MATVEC_WIDE_BF16,
    MATMAT_BF16,
    TOPK_SOFTMAX,
    ROUTE,
    EXPERT_ACCUMULATE,
    EXPERT_DOWN_ACCUMULATE,
    EXPERT_GATE_UP_SWIGLU,
    EXPERT_DOWN,
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
            &[n_tokens, table.cols, s.row_start, s.row_end],
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
        &[n_tokens, hidden, eps.to_bits(), first_token * hidden],
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
    debug_assert!(io.x_stride == w.cols && io.x_offset % w.cols.max(1) == 0, "input rows are whole, consecutive rows");
    rmsnorm(rec, x, io.x_offset / w.cols.max(1), io.n_tokens, w.cols, norm.weight, norm.eps, scratch);
    matmul_with(rec, scratch, None, w, y, MatmulIo { x_offset: 0, x_stride: w.cols, ..io })
}

fn matmul_with(rec: &mut Recorder, x: &wgpu::Buffer, norm: Option<InputNorm>, w: &Bf16Matrix, y: &wgpu::Buffer, io: MatmulIo) {
    for s in &w.slices {
        let rows = s.row_end - s.row_start;
        let bias = s.buffers.get(1);
        let flags = bias.is_some() as u32 | ((io.accumulate as u32) << 1) | ((norm.is_some() as u32) << 2);
        let eps = norm.map_or(0.0, |n| n.eps);
        let params = [io.n_tokens, rows, w.cols, io.x_offset, io.x_stride, io.y_stride, io.y_offset + s.row_start, flags, eps.to_bits()];
        let dummy = rec.gpu.dummy.clone();
        let norm_weight = norm.map_or(&dummy, |n| n.weight);
        let bufs = [x, &s.buffers[0], bias.unwrap_or(&dummy), y, norm_weight];
        rec.reads(rows as u64 * w.cols as u64 * 2 + io.n_tokens as u64 * w.cols as u64 * 4);
        if io.n_tokens <= 4 && w.cols <= NARROW_COLS {
            let (gx, gy) = rec.gpu.grid_2d(rows.div_ceil(64));
            rec.dispatch(&MATVEC_NARROW_BF16, &params, &bufs, [gx, gy, io.n_tokens]);
        } else if io.n_tokens <= 4 {
            // 16-byte loads when rows and input rows are 16-byte aligned.
            let wide = w.cols % 8 == 0 && io.x_offset % 4 == 0 && (io.x_stride % 4 == 0 || io.n_tokens == 1);
            let kernel = if wide { &MATVEC_WIDE_BF16 } else { &MATVEC_BF16 };
            let (gx, gy) = rec.gpu.grid_2d(rows.div_ceil(MATVEC_ROWS));
            rec.dispatch(kernel, &params, &bufs, [gx, gy, io.n_tokens]);
        } else {
            assert!(norm.is_none(), "prefill GEMMs take normalized inputs from scratch");
            rec.dispatch(&MATMAT_BF16, &params, &bufs[..4], [rows.div_ceil(64), io.n_tokens.div_ceil(64), 1]);
        }
    }
}

/// Router top-k: expert ids [T, k] and their softmax weights [T, k] from router logits [T, E].
#[allow(clippy::too_many_arguments)]
pub fn topk_softmax(
    rec: &mut Recorder,
    n_tokens: u32,
    n_experts: u32,
    k: u32,
    logits: &wgpu::Buffer,
    ids: &wgpu::Buffer,
    weights: &wgpu::Buffer,
) {
    rec.dispatch(&TOPK_SOFTMAX, &[n_tokens, n_experts, k], &[logits, ids, weights], [n_tokens.div_ceil(64), 1, 1]);
}

/// Buffers of the MoE routing step of one layer.
pub struct RouteIo<'a> {
    /// The residual stream [T, hidden] (read).
    pub x: &'a wgpu::Buffer,
    /// RMSNorm(x) [T, hidden] (written: the experts' input).
    pub normed: &'a wgpu::Buffer,
    /// Router logits [T, n_experts] (scratch of the unfused path).
    pub logits: &'a wgpu::Buffer,
    /// Chosen experts [T, k] and their weights [T, k] (written).
    pub ids: &'a wgpu::Buffer,
    pub weights: &'a wgpu::Buffer,
}

/// The MLP's RMSNorm, router and top-k softmax. One fused dispatch when the router sits in
/// one binding (always, at real sizes); otherwise rmsnorm, a sliced mat-vec and top-k.
#[allow(clippy::too_many_arguments)]
pub fn moe_route(rec: &mut Recorder, n_tokens: u32, norm_weight: &wgpu::Buffer, eps: f32, router: &Bf16Matrix, k: u32, io: RouteIo) {
    let (h, e) = (router.cols, router.rows);
    if router.slices.len() == 1 && e <= 256 && h % 2 == 0 {
        let s = &router.slices[0];
        let bias = s.buffers.get(1);
        let (gx, gy) = rec.gpu.grid_2d(n_tokens);
        rec.reads(n_tokens as u64 * h as u64 * 8 + router.rows as u64 * h as u64 * 2);
        rec.dispatch(
            &ROUTE,
            &[n_tokens, h, e, k, eps.to_bits(), bias.is_some() as u32],
            &[io.x, norm_weight, &s.buffers[0], bias.unwrap_or(&rec.gpu.dummy), io.normed, io.ids, io.weights],
            [gx, gy, 1],
        );
        return;
    }
    rmsnorm(rec, io.x, 0, n_tokens, h, norm_weight, eps, io.normed);
    let mio = MatmulIo { n_tokens, x_offset: 0, x_stride: h, y_stride: e, y_offset: 0, accumulate: false };
    matmul(rec, io.normed, router, io.logits, mio);
    topk_softmax(rec, n_tokens, e, k, io.logits, io.ids, io.weights);
}

/// From this many tokens on, expert kernels run grouped by expert: one workgroup per (expert,
/// rows) serves all tokens routed there, reading those weights once instead of once per token.
pub const GROUPED_MIN_TOKENS: u32 = 8;

/// The grid of an expert kernel: per (rows, slot, token), or per (rows, expert) when grouped.
fn expert_grid(w: &Mxfp4Experts, n_tokens: u32, k: u32) -> [u32; 3] {
    if n_tokens >= GROUPED_MIN_TOKENS {
        [w.rows_per_expert.div_ceil(4), w.n_experts, 1]
    } else {
        [w.rows_per_expert.div_ceil(4), k, n_tokens]
    }
}

/// The clamped-SwiGLU activation parameters of the expert MLP.
#[derive(Clone, Copy, Debug)]
pub struct Swiglu {
    pub alpha: f32,
    pub limit: f32,
}

/// a[t, slot] = SwiGLU(W_gate_up[e] . x[t] + b) for the expert e chosen for each (token, slot).
#[allow(clippy::too_many_arguments)]
pub fn expert_gate_up(
    rec: &mut Recorder,
    n_tokens: u32,
    k: u32,
    x: &wgpu::Buffer,
    ids: &wgpu::Buffer,
    w: &Mxfp4Experts,
    act: Swiglu,
    out: &wgpu::Buffer,
) {
    let per_slice = n_tokens as u64 * k as u64 * w.rows_per_expert as u64 * (w.cols as u64 * 17 / 32 + 4) / w.slices.len() as u64;
    for s in &w.slices {
        rec.reads(per_slice);
        let kernel = if n_tokens >= GROUPED_MIN_TOKENS { &EXPERT_GATE_UP_SWIGLU_GROUPED } else { &EXPERT_GATE_UP_SWIGLU };
        let grid = expert_grid(w, n_tokens, k);
        rec.dispatch(kernel,
            &[n_tokens, k, w.rows_per_expert, w.cols, s.row_start, s.row_end, act.limit.to_bits(), act.alpha.to_bits()],
            &[x, ids, &s.buffers[0], &s.buffers[1], &s.buffers[2], out],
            grid,
        );
    }
}

/// y[t, slot] = W_down[e] . a[t, slot] + b for the expert e chosen for each (token, slot).
#[allow(clippy::too_many_arguments)]
pub fn expert_down(
    rec: &mut Recorder,
    n_tokens: u32,
    k: u32,
    a: &wgpu::Buffer,
    ids: &wgpu::Buffer,
    w: &Mxfp4Experts,
    out: &wgpu::Buffer,
) {
    for s in &w.slices {
        let kernel = if n_tokens >= GROUPED_MIN_TOKENS { &EXPERT_DOWN_GROUPED } else { &EXPERT_DOWN };
        let grid = expert_grid(w, n_tokens, k);
        rec.dispatch(kernel,
            &[n_tokens, k, w.rows_per_expert, w.cols, s.row_start, s.row_end, 0, 0],
            &[a, ids, &s.buffers[0], &s.buffers[1], &s.buffers[2], out],
            grid,
        );
    }
}

/// residual[t] += sum_slot weights[t, slot] * (W_down[e] . a[t, slot] + b): one fused dispatch
/// when all experts sit in one binding; otherwise `expert_down` into `y` and `expert_accumulate`.
#[allow(clippy::too_many_arguments)]
pub fn expert_down_accumulate(
    rec: &mut Recorder,
    n_tokens: u32,
    k: u32,
    a: &wgpu::Buffer,
    ids: &wgpu::Buffer,
    w: &Mxfp4Experts,
    weights: &wgpu::Buffer,
    y: &wgpu::Buffer,
    residual: &wgpu::Buffer,
) {
    if let ([s], true) = (&w.slices[..], n_tokens < GROUPED_MIN_TOKENS) {
        rec.reads(n_tokens as u64 * k as u64 * w.rows_per_expert as u64 * (w.cols as u64 * 17 / 32 + 4));
        rec.dispatch(
            &EXPERT_DOWN_ACCUMULATE,
            &[n_tokens, k, w.rows_per_expert, w.cols, s.row_start, s.row_end, 0, 0],
            &[a, ids, &s.buffers[0], &s.buffers[1], &s.buffers[2], residual, weights],
            [w.rows_per_expert.div_ceil(4), n_tokens, 1],
        );
        return;
    }
    expert_down(rec, n_tokens, k, a, ids, w, y);
    expert_accumulate(rec, n_tokens, k, w.rows_per_expert, y, weights, residual);
}

/// residual[t] += sum_slot weights[t, slot] * y[t, slot].
#[allow(clippy::too_many_arguments)]
pub fn expert_accumulate(
    rec: &mut Recorder,
    n_tokens: u32,
    k: u32,
    hidden: u32,
    y: &wgpu::Buffer,
    weights: &wgpu::Buffer,
    residual: &wgpu::Buffer,
) {
    rec.dispatch(&EXPERT_ACCUMULATE, &[n_tokens, k, hidden], &[y, weights, residual], [hidden.div_ceil(64), n_tokens, 1]);
}

/// act[j] = silu(gate[j]) * act[j] for the first `n` values (the dense gated MLP).
pub fn silu_mul(rec: &mut Recorder, n: u32, gate: &wgpu::Buffer, act: &wgpu::Buffer) {
    let (gx, gy) = rec.gpu.grid_2d(n.div_ceil(256));
    rec.dispatch(&SILU_MUL, &[n, gx * 256], &[gate, act], [gx, gy, 1]);
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
    rec.dispatch(&ARGMAX_PARTIAL, &[n, offset, n_parts], &[logits, parts], [gx, gy, 1]);
    rec.dispatch(&ARGMAX_FINAL, &[n, offset, n_parts], &[parts, out], [1, 1, 1]);
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
    rec.dispatch(&FILL_RANDOM, &[n_words, kind, seed, base.to_bits(), scale.to_bits()], &[buf], [gx, gy, 1]);
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
    rec.dispatch(kernel, &[n_vec4, gx * gy * 256], &[buf, sink], [gx, gy, 1]);
}
