//! Weights and caches as the kernels see them: row slices that each fit one storage binding.

use super::KvCache;
use crate::error::{Error, Result};
use crate::gpu::{plan_slices, Gpu, RowSlice};

/// A bf16 matrix [rows, cols] split by rows. Slice buffers: [weight (bf16 pairs), bias (f32, optional)].
pub struct Bf16Matrix {
    pub rows: u32,
    pub cols: u32,
    pub slices: Vec<RowSlice>,
}

/// MXFP4 experts: `n_experts` matrices of [rows_per_expert, cols], split over the flattened
/// (expert, row) index. Slice buffers: [blocks, scales, bias (f32)].
pub struct Mxfp4Experts {
    pub n_experts: u32,
    pub rows_per_expert: u32,
    pub cols: u32,
    pub slices: Vec<RowSlice>,
}

/// One buffer pair of a KV cache: slots [start, start + slots) of a layer's K and V, each slot
/// `n_kv_heads * head_dim` values stored as `dtype` (f32 words, or f16 pairs in u32 words).
pub struct KvSegment {
    pub start: u32,
    pub slots: u32,
    pub dtype: KvCache,
    pub k: wgpu::Buffer,
    pub v: wgpu::Buffer,
}

/// Zeroed row slices of a weight matrix that each fit one binding: [weight rows, f32 bias (optional)].
pub(crate) fn weight_slices(gpu: &Gpu, name: &str, rows: u32, row_bytes: u64, bias: bool) -> Result<Vec<RowSlice>> {
    let mut slices = Vec::new();
    for (r0, r1) in plan_slices(name, rows as u64, row_bytes, 1, gpu.max_binding)? {
        let mut buffers = vec![gpu.storage(name, (r1 - r0) as u64 * row_bytes)];
        if bias {
            buffers.push(gpu.storage(name, (r1 - r0) as u64 * 4));
        }
        slices.push(RowSlice { row_start: r0, row_end: r1, buffers });
    }
    Ok(slices)
}

/// Copies rows [r0, r1) of a matrix stored as consecutive row-major parts into `buf`.
fn write_rows(gpu: &Gpu, buf: &wgpu::Buffer, parts: &[&[u8]], row_bytes: usize, r0: usize, r1: usize) {
    let mut part_start = 0;
    let mut offset = 0u64;
    for part in parts {
        let rows = part.len() / row_bytes;
        let (a, b) = (r0.max(part_start), r1.min(part_start + rows));
        if a < b {
            let bytes = &part[(a - part_start) * row_bytes..(b - part_start) * row_bytes];
            gpu.upload(buf, offset, bytes);
            offset += bytes.len() as u64;
        }
        part_start += rows;
    }
}

impl Bf16Matrix {
    /// A zeroed matrix split by rows into slices that each fit one binding (weights are then
    /// written from a checkpoint, from host data or on the GPU).
    pub fn allocate(gpu: &Gpu, name: &str, rows: u32, cols: u32, bias: bool) -> Result<Self> {
        Ok(Bf16Matrix { rows, cols, slices: weight_slices(gpu, name, rows, cols as u64 * 2, bias)? })
    }

    /// Uploads a bf16 matrix given as row-major byte parts stacked by rows (e.g. q, k, v),
    /// with an optional f32 bias per row.
    pub fn upload(gpu: &Gpu, name: &str, cols: u32, parts: &[&[u8]], bias: Option<&[f32]>) -> Result<Self> {
        let row_bytes = cols as usize * 2;
        let rows = parts.iter().map(|p| p.len() / row_bytes).sum::<usize>();
        let m = Self::allocate(gpu, name, rows as u32, cols, bias.is_some())?;
        for s in &m.slices {
            write_rows(gpu, &s.buffers[0], parts, row_bytes, s.row_start as usize, s.row_end as usize);
            if let Some(b) = bias {
                gpu.write(&s.buffers[1], 0, bytemuck::cast_slice(&b[s.row_start as usize..s.row_end as usize]));
            }
        }
        Ok(m)
    }
}

impl Mxfp4Experts {
    /// Zeroed experts split over the flattened (expert, row) index into slices that each fit one
    /// binding; `granule` keeps that many rows together in a slice (2 for interleaved gate/up).
    pub fn allocate(gpu: &Gpu, name: &str, n_experts: u32, rows_per_expert: u32, cols: u32, granule: u32) -> Result<Self> {
        let rows = n_experts as u64 * rows_per_expert as u64;
        let (bb, sb) = (cols as u64 / 2, cols as u64 / 32);
        let mut slices = Vec::new();
        for (r0, r1) in plan_slices(name, rows, bb, granule as u64, gpu.max_binding)? {
            let n = (r1 - r0) as u64;
            let buffers = vec![gpu.storage(name, n * bb), gpu.storage(name, n * sb), gpu.storage(name, n * 4)];
            slices.push(RowSlice { row_start: r0, row_end: r1, buffers });
        }
        Ok(Mxfp4Experts { n_experts, rows_per_expert, cols, slices })
    }

    /// Uploads expert matrices from their MXFP4 blocks (cols/2 bytes per row), scales (cols/32
    /// bytes per row) and f32 biases, all over the flattened (expert, row) index.
    #[allow(clippy::too_many_arguments)]
    pub fn upload(
        gpu: &Gpu,
        name: &str,
        n_experts: u32,
        rows_per_expert: u32,
        cols: u32,
        blocks: &[u8],
        scales: &[u8],
        bias: &[f32],
        granule: u32,
    ) -> Result<Self> {
        let x = Self::allocate(gpu, name, n_experts, rows_per_expert, cols, granule)?;
        let (bb, sb) = (cols as usize / 2, cols as usize / 32);
        for s in &x.slices {
            let (a, b) = (s.row_start as usize, s.row_end as usize);
            gpu.upload(&s.buffers[0], 0, &blocks[a * bb..b * bb]);
            gpu.upload(&s.buffers[1], 0, &scales[a * sb..b * sb]);
            gpu.write(&s.buffers[2], 0, bytemuck::cast_slice(&bias[a..b]));
        }
        Ok(x)
    }
}

impl KvSegment {
    /// An f32 cache (see `allocate_as`).
    pub fn allocate(gpu: &Gpu, name: &str, slots: u32, n_kv_heads: u32, head_dim: u32) -> Result<Vec<KvSegment>> {
        Self::allocate_as(gpu, name, slots, n_kv_heads, head_dim, KvCache::F32)
    }

    /// K and V buffers for `slots` slots of `n_kv_heads * head_dim` values each, stored as
    /// `dtype`, split into segments that fit one binding.
    pub fn allocate_as(gpu: &Gpu, name: &str, slots: u32, n_kv_heads: u32, head_dim: u32, dtype: KvCache) -> Result<Vec<KvSegment>> {
        if dtype == KvCache::F16 && !head_dim.is_multiple_of(2) {
            return Err(Error::Input(format!("an f16 KV cache packs values in pairs: head_dim {head_dim} is odd")));
        }
        let slot_bytes = n_kv_heads as u64 * head_dim as u64 * dtype.bytes_per_value();
        plan_slices(name, slots as u64, slot_bytes, 1, gpu.max_binding)?
            .into_iter()
            .map(|(a, b)| {
                let bytes = (b - a) as u64 * slot_bytes;
                Ok(KvSegment { start: a, slots: b - a, dtype, k: gpu.storage(name, bytes), v: gpu.storage(name, bytes) })
            })
            .collect()
    }
}
