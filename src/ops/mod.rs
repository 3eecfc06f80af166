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

pub mod cpu;
mod moe;
pub mod quant;
pub mod sample;
mod tensors;
pub use moe::{
    expert_accumulate, expert_down, expert_down_accumulate, expert_gate_up, moe_route, topk_softmax, RouteIo, Routed, Swiglu,
    GROUPED_MIN_TOKENS,
};
pub use quant::{qembed, qmatmul, QMatrix, QType};
pub use tensors::{Bf16Matrix, KvSegment, Mxfp4Experts};

kernel!(EMBED_GATHER, "embed.wgsl", "embed_gather");
kernel!(RMSNORM, "rmsnorm.wgsl", "rmsnorm");
kernel!(MATVEC_BF16, "matmul_bf16.wgsl", "matvec");
kernel!(MATVEC_NARROW_BF16, "matmul_bf16.wgsl", "matvec_narrow");
kernel!(MATVEC_WIDE_BF16, "matmul_bf16.wgsl", "matvec_wide");
kernel!(MATMAT_BF16, "matmul_bf16.wgsl", "matmat");
kernel!(MATVEC_QKV_ROPE, "matmul_bf16.wgsl", "matvec_qkv_rope");
kernel!(ROPE_QK_STORE, "rope.wgsl", "rope_qk_store");
kernel!(ATTN_PARTIAL, "attention.wgsl", "attn_partial");
kernel!(ATTN_PARTIAL_GQA, "attention.wgsl", "attn_partial_gqa");
kernel!(ATTN_MERGE, "attention.wgsl", "attn_merge");
kernel!(ARGMAX, "argmax.wgsl", "argmax");
kernel!(SILU_MUL, "activation.wgsl", "silu_mul");
kernel!(FILL_RANDOM, "fill.wgsl", "fill_random");
kernel!(READ_BANDWIDTH, "bandwidth.wgsl", "read_bandwidth");
kernel!(READ_BANDWIDTH_BLOCKED, "bandwidth.wgsl", "read_bandwidth_blocked");

/// Every kernel, for shader validation and translation tests.
pub fn all_kernels() -> Vec<Kernel> {
    CORE_KERNELS.iter().chain(moe::KERNELS).chain(sample::KERNELS).copied().chain(quant::kernels()).collect()
}

const CORE_KERNELS: &[Kernel] = &[
    EMBED_GATHER,
    RMSNORM,
    MATVEC_BF16,
    MATVEC_NARROW_BF16,
    MATVEC_WIDE_BF16,
    MATMAT_BF16,
    MATVEC_QKV_ROPE,
    ROPE_QK_STORE,
    ATTN_PARTIAL,
    ATTN_PARTIAL_GQA,
    ATTN_MERGE,
    ARGMAX,
    SILU_MUL,
    FILL_RANDOM,
    READ_BANDWIDTH,
    READ_BANDWIDTH_BLOCKED,
];

/// Positions and shapes shared by the attention kernels of one layer and one chunk.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_tokens: u32,
    pub n_q_heads: u32,
    pub n_kv_heads: u32,
    pub head_dim: u32,
    /// Absolute position of the chunk's first token.
    pub pos0: u32,
    /// Slots in the cache: the context for full layers, a ring for sliding layers.
    pub ring: u32,
    /// Sliding window in tokens (the current one included), 0 for full attention.
    pub window: u32,
}

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

/// y[t, y_offset + r] (+)= x[t] . W[r] + bias[r], one dispatch per slice of W.
pub fn matmul(rec: &mut Recorder, x: &wgpu::Buffer, w: &Bf16Matrix, y: &wgpu::Buffer, io: MatmulIo) {
    for s in &w.slices {
        let rows = s.row_end - s.row_start;
        let bias = s.buffers.get(1);
        let flags = bias.is_some() as u32 | ((io.accumulate as u32) << 1);
        let params = [io.n_tokens, rows, w.cols, io.x_offset, io.x_stride, io.y_stride, io.y_offset + s.row_start, flags];
        let bufs = [x, &s.buffers[0], bias.unwrap_or(&rec.gpu.dummy), y];
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
            rec.dispatch(&MATMAT_BF16, &params, &bufs, [rows.div_ceil(64), io.n_tokens.div_ceil(16), 1]);
        }
    }
}

/// How a layer's q and k are rotated: NeoX halves or interleaved pairs, optionally after a
/// per-head RMSNorm with (q, k) weights.
#[derive(Clone, Copy)]
pub struct RopeStyle<'a> {
    pub interleaved: bool,
    pub qk_norm: Option<&'a (wgpu::Buffer, wgpu::Buffer)>,
    pub eps: f32,
}

impl RopeStyle<'_> {
    /// NeoX halves without norms: what the fused q/k/v kernel does.
    pub fn is_plain(&self) -> bool {
        !self.interleaved && self.qk_norm.is_none()
    }
}

/// Rotates q and k of a chunk (qkv rows of [q heads | k heads | v heads]) and stores k, v in the cache.
pub fn rope_qk_store(
    rec: &mut Recorder,
    a: AttnShape,
    style: RopeStyle,
    qkv: &wgpu::Buffer,
    cos_sin: &wgpu::Buffer,
    q_out: &wgpu::Buffer,
    cache: &[KvSegment],
) {
    let mut wrote_q = false;
    let dummy = &rec.gpu.dummy.clone();
    let (q_norm, k_norm) = style.qk_norm.map(|(q, k)| (q, k)).unwrap_or((dummy, dummy));
    for seg in cache {
        // Only segments that receive one of this chunk's slots (and the first, for q).
        let hit = (0..a.n_tokens).any(|t| {
            let slot = (a.pos0 + t) % a.ring;
            slot >= seg.start && slot < seg.start + seg.slots
        });
        if !hit && wrote_q {
            continue;
        }
        rec.dispatch(&ROPE_QK_STORE,
            &[
                a.n_tokens, a.n_q_heads, a.n_kv_heads, a.head_dim,
                a.pos0, a.ring, seg.start, seg.slots,
                !wrote_q as u32, style.interleaved as u32, style.qk_norm.is_some() as u32, style.eps.to_bits(),
            ],
            &[qkv, cos_sin, q_out, &seg.k, &seg.v, q_norm, k_norm],
            [a.n_q_heads + a.n_kv_heads, a.n_tokens, 1],
        );
        wrote_q = true;
    }
}

/// The q/k/v projection of a chunk followed by RoPE and the KV-cache write. Decode batches
/// (up to 4 tokens) with the weights and the cache each in one binding take one fused
/// dispatch; otherwise `matmul` into `qkv` and `rope_qk_store`.
#[allow(clippy::too_many_arguments)]
pub fn qkv_rope_store(
    rec: &mut Recorder,
    a: AttnShape,
    x: &wgpu::Buffer,
    w: &Bf16Matrix,
    qkv: &wgpu::Buffer,
    cos_sin: &wgpu::Buffer,
    q_out: &wgpu::Buffer,
    cache: &[KvSegment],
) {
    let d = a.head_dim;
    if let ([s], [seg], true) = (&w.slices[..], cache, a.n_tokens <= 4 && d % 2 == 0 && w.cols % 2 == 0) {
        let bias = s.buffers.get(1);
        let blocks = (a.n_q_heads + 2 * a.n_kv_heads) * (d / 2).div_ceil(4);
        let (gx, gy) = rec.gpu.grid_2d(blocks);
        rec.reads(w.rows as u64 * w.cols as u64 * 2 + a.n_tokens as u64 * w.cols as u64 * 4);
        rec.dispatch(
            &MATVEC_QKV_ROPE,
            &[a.n_tokens, w.cols, w.cols, bias.is_some() as u32, a.n_q_heads, a.n_kv_heads, d, a.pos0, a.ring],
            &[x, &s.buffers[0], bias.unwrap_or(&rec.gpu.dummy), q_out, cos_sin, &seg.k, &seg.v],
            [gx, gy, a.n_tokens],
        );
        return;
    }
    let io = MatmulIo { n_tokens: a.n_tokens, x_offset: 0, x_stride: w.cols, y_stride: w.rows, y_offset: 0, accumulate: false };
    matmul(rec, x, w, qkv, io);
    rope_qk_store(rec, a, RopeStyle { interleaved: false, qk_norm: None, eps: 0.0 }, qkv, cos_sin, q_out, cache);
}

/// Whether a whole GQA group fits one workgroup of `attn_partial_gqa` (64 invocations split
/// evenly over the group's query heads, at most 16 heads, 2048 query values and 32 output
/// values per invocation): gpt-oss's 8 heads of 64 dims do.
fn gqa_fits(a: AttnShape) -> bool {
    let group = a.n_q_heads / a.n_kv_heads;
    group > 1 && group <= 16 && 64 % group == 0 && group * a.head_dim <= 2048 && a.head_dim.div_ceil(64 / group) <= 32
}

/// Number of partial results `attention` writes per (token, head) at most.
pub fn attention_max_parts(n_segments: u32) -> u32 {
    ATTN_TARGET_PARTS + n_segments
}
const ATTN_TARGET_PARTS: u32 = 16;

/// Attention of a chunk's queries over the cache (which already holds the chunk's keys).
#[allow(clippy::too_many_arguments)]
pub fn attention(
    rec: &mut Recorder,
    a: AttnShape,
    q: &wgpu::Buffer,
    cache: &[KvSegment],
    sinks: &wgpu::Buffer,
    partials: &wgpu::Buffer,
    out: &wgpu::Buffer,
) {
    let n_written = (a.pos0 + a.n_tokens).min(a.ring);
    let split_len = n_written.div_ceil(ATTN_TARGET_PARTS).next_multiple_of(64).max(64);
    let n_parts = attention_max_parts(cache.len() as u32);
    let mut part = 0;
    let scale = (1.0 / (a.head_dim as f64).sqrt()) as f32;
    let gqa = gqa_fits(a);
    for seg in cache {
        let used = n_written.saturating_sub(seg.start).min(seg.slots);
        if used == 0 {
            continue;
        }
        let splits = used.div_ceil(split_len);
        rec.reads(used as u64 * a.n_kv_heads as u64 * a.head_dim as u64 * 8);
        rec.dispatch(if gqa { &ATTN_PARTIAL_GQA } else { &ATTN_PARTIAL },
            &[
                a.n_tokens, a.n_q_heads, a.n_kv_heads, a.head_dim,
                a.pos0, a.ring, a.window, seg.start,
                seg.slots, n_written, split_len, part,
                n_parts, scale.to_bits(),
            ],
            &[q, &seg.k, &seg.v, partials],
            [if gqa { a.n_kv_heads } else { a.n_q_heads }, a.n_tokens, splits],
        );
        part += splits;
    }
    debug_assert!(part <= n_parts);
    rec.dispatch(&ATTN_MERGE,
        &[a.n_tokens, a.n_q_heads, a.head_dim, n_parts, part],
        &[partials, sinks, out],
        [a.n_q_heads, a.n_tokens, 1],
    );
}

/// act[j] = silu(gate[j]) * act[j] for the first `n` values (the dense gated MLP).
pub fn silu_mul(rec: &mut Recorder, n: u32, gate: &wgpu::Buffer, act: &wgpu::Buffer) {
    let (gx, gy) = rec.gpu.grid_2d(n.div_ceil(256));
    rec.dispatch(&SILU_MUL, &[n, gx * 256], &[gate, act], [gx, gy, 1]);
}

/// out[0] = argmax of logits[offset .. offset + n].
pub fn argmax(rec: &mut Recorder, logits: &wgpu::Buffer, offset: u32, n: u32, out: &wgpu::Buffer) {
    rec.dispatch(&ARGMAX, &[n, offset], &[logits, out], [1, 1, 1]);
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
