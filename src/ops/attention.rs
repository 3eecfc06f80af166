//! Attention of one layer and one chunk: RoPE on q and k with the KV-cache write (alone or fused
//! with the q/k/v projection), the partial attention of splits of the cache, and their merge.

use super::params::*;
use super::{matmul, rmsnorm, Bf16Matrix, InputNorm, KvSegment, MatmulIo};
use crate::gpu::{Kernel, Recorder};

kernel!(MATVEC_QKV_ROPE, "matmul_bf16.wgsl", "matvec_qkv_rope", QkvRopeParams);
kernel!(ROPE_QK_STORE, "rope.wgsl", "rope_qk_store", RopeParams);
kernel!(ATTN_PARTIAL, "attention.wgsl", "attn_partial", AttentionParams);
kernel!(ATTN_PARTIAL_GQA, "attention.wgsl", "attn_partial_gqa", AttentionParams);
kernel!(ATTN_MERGE, "attention.wgsl", "attn_merge", AttnMergeParams);

pub(super) const KERNELS: &[Kernel] = &[MATVEC_QKV_ROPE, ROPE_QK_STORE, ATTN_PARTIAL, ATTN_PARTIAL_GQA, ATTN_MERGE];

/// How a KV cache stores keys and values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KvCache {
    /// 4 bytes per value.
    #[default]
    F32,
    /// 2 bytes per value: pairs of f16 packed in u32 words (no shader-f16 needed); head_dim even.
    F16,
}

impl KvCache {
    pub fn bytes_per_value(self) -> u64 {
        match self {
            KvCache::F32 => 4,
            KvCache::F16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KvCache::F32 => "f32",
            KvCache::F16 => "f16",
        }
    }
}

impl std::str::FromStr for KvCache {
    type Err = crate::Error;

    /// `f32` or `f16` (`--kv-cache`, the server's and the browser's option).
    fn from_str(s: &str) -> crate::Result<KvCache> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" => Ok(KvCache::F32),
            "f16" => Ok(KvCache::F16),
            other => Err(crate::Error::Input(format!("KV cache type {other:?}: expected f32 or f16"))),
        }
    }
}

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

fn is_f16(cache: &[KvSegment]) -> bool {
    cache.first().is_some_and(|s| s.dtype == KvCache::F16)
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
            &RopeParams {
                n_tokens: a.n_tokens, n_q_heads: a.n_q_heads, n_kv_heads: a.n_kv_heads, head_dim: a.head_dim,
                pos0: a.pos0, ring: a.ring, seg_start: seg.start, seg_slots: seg.slots,
                write_q: !wrote_q as u32, interleaved: style.interleaved as u32,
                qk_norm: style.qk_norm.is_some() as u32, eps: style.eps,
                kv_f16: (seg.dtype == KvCache::F16) as u32,
            },
            &[qkv, cos_sin, q_out, &seg.k, &seg.v, q_norm, k_norm],
            [a.n_q_heads + a.n_kv_heads, a.n_tokens, 1],
        );
        wrote_q = true;
    }
}

/// The q/k/v projection of a chunk followed by RoPE and the KV-cache write; with `norm`, of
/// RMSNorm(x). Decode batches (up to 4 tokens) with the weights and the cache each in one
/// binding take one fused dispatch, the norm included; otherwise `rmsnorm` into `normed`
/// ([n_tokens, cols] f32, when `norm` is given), `matmul` into `qkv` and `rope_qk_store`.
#[allow(clippy::too_many_arguments)]
pub fn qkv_rope_store(
    rec: &mut Recorder,
    a: AttnShape,
    x: &wgpu::Buffer,
    norm: Option<InputNorm>,
    normed: &wgpu::Buffer,
    w: &Bf16Matrix,
    qkv: &wgpu::Buffer,
    cos_sin: &wgpu::Buffer,
    q_out: &wgpu::Buffer,
    cache: &[KvSegment],
) {
    let d = a.head_dim;
    let f16 = is_f16(cache);
    // An f16 cache is written in words of two values from 4 pairs per workgroup: head_dim % 4 == 0.
    let shape_ok = a.n_tokens <= 4 && d.is_multiple_of(2) && w.cols.is_multiple_of(2) && (!f16 || d.is_multiple_of(4));
    if let ([s], [seg], true) = (&w.slices[..], cache, shape_ok) {
        let bias = s.buffers.get(1);
        let blocks = (a.n_q_heads + 2 * a.n_kv_heads) * (d / 2).div_ceil(4);
        let (gx, gy) = rec.gpu.grid_2d(blocks);
        rec.reads(w.rows as u64 * w.cols as u64 * 2 + a.n_tokens as u64 * w.cols as u64 * 4);
        let dummy = rec.gpu.dummy.clone();
        let (has_norm, eps, norm_weight) = match norm {
            Some(n) => (1, n.eps, n.weight),
            None => (0, 0.0, &dummy),
        };
        rec.dispatch(
            &MATVEC_QKV_ROPE,
            &QkvRopeParams {
                n_tokens: a.n_tokens, cols: w.cols, x_stride: w.cols, has_bias: bias.is_some() as u32,
                n_q_heads: a.n_q_heads, n_kv_heads: a.n_kv_heads, head_dim: d, pos0: a.pos0, ring: a.ring,
                kv_f16: f16 as u32, norm: has_norm, norm_eps: eps,
            },
            &[x, &s.buffers[0], bias.unwrap_or(&dummy), q_out, cos_sin, &seg.k, &seg.v, norm_weight],
            [gx, gy, a.n_tokens],
        );
        return;
    }
    let x = match norm {
        Some(n) => {
            rmsnorm(rec, x, 0, a.n_tokens, w.cols, n.weight, n.eps, normed);
            normed
        }
        None => x,
    };
    let io = MatmulIo { n_tokens: a.n_tokens, x_offset: 0, x_stride: w.cols, y_stride: w.rows, y_offset: 0, accumulate: false };
    matmul(rec, x, w, qkv, io);
    rope_qk_store(rec, a, RopeStyle { interleaved: false, qk_norm: None, eps: 0.0 }, qkv, cos_sin, q_out, cache);
}

/// Workgroup-memory limits of the partial kernels (attention.wgsl): K/V tile vec4s, query vec4s
/// of a group, score floats of a tile, query heads per workgroup.
const TILE_V4: u32 = 544;
const GQ_V4: u32 = 128;
const PS_MAX: u32 = 512;
const G_MAX: u32 = 8;

/// vec4s per row of head_dim values.
fn dv4(head_dim: u32) -> u32 {
    head_dim.div_ceil(4)
}

/// Whether a whole GQA group fits one workgroup of `attn_partial_gqa` (at most 8 heads and
/// 512 query values): gpt-oss's 8 heads of 64 dims do.
fn gqa_fits(a: AttnShape) -> bool {
    let group = a.n_q_heads / a.n_kv_heads;
    group <= G_MAX && group * dv4(a.head_dim) <= GQ_V4
}

/// Keys per tile: one per invocation at most, and what workgroup memory holds (32 at head_dim 64).
fn tile_keys(head_dim: u32, heads: u32) -> u32 {
    64.min(TILE_V4 / (dv4(head_dim) + 1)).min(PS_MAX / heads).max(1)
}

/// Workgroups the partial kernels aim for (8 per SM of a 132-SM GPU), at most this many
/// splits of the cache, and at least this many keys per split.
const ATTN_TARGET_WORKGROUPS: u32 = 1024;
const ATTN_MAX_SPLITS: u32 = 128;
const ATTN_MIN_SPLIT: u32 = 32;

/// Number of partial results `attention` writes per (token, head) at most, in a chunk of
/// several tokens (prefill chunks have parallelism in their tokens).
pub fn attention_max_parts(n_segments: u32) -> u32 {
    4 + n_segments + 2
}

/// Bytes of the partials buffer for chunks of up to `chunk` tokens: `attention_max_parts` per
/// token, and at least enough for one decoded token to split the cache `ATTN_MAX_SPLITS` ways.
pub fn attention_partials_bytes(chunk: u32, n_q_heads: u32, head_dim: u32, n_segments: u32) -> u64 {
    let per_part = n_q_heads as u64 * (head_dim as u64 + 2) * 4;
    let parts = (chunk as u64 * attention_max_parts(n_segments) as u64).max((ATTN_MAX_SPLITS + n_segments + 2) as u64);
    parts * per_part
}

/// Live key positions of a chunk, [lo, hi), as runs whose slots lie in one segment each:
/// (segment index, first position, end position). A run may wrap around the ring.
fn live_runs(a: AttnShape, cache: &[KvSegment]) -> Vec<(usize, u32, u32)> {
    let hi = a.pos0 + a.n_tokens;
    let lo = if a.window == 0 { 0 } else { (a.pos0 + 1).saturating_sub(a.window) };
    debug_assert!(hi - lo <= a.ring, "the ring must hold the window and the chunk");
    let mut runs: Vec<(usize, u32, u32)> = Vec::new();
    let mut p = lo;
    while p < hi {
        let slot = p % a.ring;
        let len = (a.ring - slot).min(hi - p);
        for (i, seg) in cache.iter().enumerate() {
            let (s0, s1) = (slot.max(seg.start), (slot + len).min(seg.start + seg.slots));
            if s0 < s1 {
                let (b, e) = (p + s0 - slot, p + s1 - slot);
                match runs.last_mut() {
                    // The same segment on both sides of the ring's end: one run that wraps.
                    Some(last) if last.0 == i && last.2 == b => last.2 = e,
                    _ => runs.push((i, b, e)),
                }
            }
        }
        p += len;
    }
    runs
}

/// Attention of a chunk's queries over the cache (which already holds the chunk's keys).
/// Only live positions are visited: the whole past for full layers, the window for sliding ones.
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
    let d = a.head_dim;
    let runs = live_runs(a, cache);
    let gqa = gqa_fits(a);
    let group = a.n_q_heads / a.n_kv_heads;
    let (units, heads) = if gqa { (a.n_kv_heads, group) } else { (a.n_q_heads, 1) };
    // Splits: enough workgroups to fill a large GPU, within what the partials buffer holds.
    let per_part = a.n_tokens as u64 * a.n_q_heads as u64 * (d as u64 + 2) * 4;
    let room = (partials.size() / per_part) as u32;
    let live: u32 = runs.iter().map(|r| r.2 - r.1).sum();
    let want = ATTN_TARGET_WORKGROUPS.div_ceil(units * a.n_tokens).clamp(1, ATTN_MAX_SPLITS);
    let target = want.min(room.saturating_sub(runs.len() as u32)).max(1);
    let split_len = live.div_ceil(target).max(ATTN_MIN_SPLIT);
    let n_parts: u32 = runs.iter().map(|r| (r.2 - r.1).div_ceil(split_len)).sum();
    assert!(n_parts <= room, "attention partials buffer too small: {n_parts} parts, room for {room}");
    let scale = (1.0 / (d as f64).sqrt()) as f32;
    let tk = tile_keys(d, heads);
    let mut part = 0;
    for &(i, b, e) in &runs {
        let seg = &cache[i];
        let splits = (e - b).div_ceil(split_len);
        let value_bytes = seg.dtype.bytes_per_value();
        rec.reads((e - b) as u64 * a.n_kv_heads as u64 * d as u64 * value_bytes * 2);
        rec.dispatch(if gqa { &ATTN_PARTIAL_GQA } else { &ATTN_PARTIAL },
            &AttentionParams {
                n_tokens: a.n_tokens, n_q_heads: a.n_q_heads, n_kv_heads: a.n_kv_heads, head_dim: d,
                pos0: a.pos0, ring: a.ring, window: a.window, seg_start: seg.start, p_begin: b, p_end: e,
                split_len, part_base: part, n_parts, scale, kv_f16: (seg.dtype == KvCache::F16) as u32,
                tile_keys: tk,
            },
            &[q, &seg.k, &seg.v, partials],
            [units, a.n_tokens, splits],
        );
        part += splits;
    }
    rec.dispatch(&ATTN_MERGE, &AttnMergeParams {
        n_tokens: a.n_tokens, n_q_heads: a.n_q_heads, head_dim: d, n_parts,
    }, &[partials, sinks, out], [a.n_q_heads, a.n_tokens, 1]);
}
