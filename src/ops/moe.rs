//! The MoE MLP: routing (`moe_route`), MXFP4 expert projections and the weighted sum into the
//! residual. Decode (a few tokens) runs per (token, slot) with the top-k taken inside the gate_up
//! kernel; prefill builds per-expert token lists once per layer and runs tiled kernels grouped by
//! expert, so each expert's weights are read once per chunk.

use crate::gpu::{Kernel, Recorder};

use super::params::*;
use super::{matmul, rmsnorm, Bf16Matrix, MatmulIo, Mxfp4Experts};

kernel!(TOPK_SOFTMAX, "moe_route.wgsl", "topk_softmax", TopkParams);
kernel!(ROUTER_LOGITS, "moe_route.wgsl", "router_norm_matvec", RouterParams);
kernel!(EXPERT_COUNT, "moe_route.wgsl", "expert_count", ExpertCountParams);
kernel!(EXPERT_ACCUMULATE, "moe_route.wgsl", "expert_accumulate", ExpertAccumulateParams);
kernel!(EXPERT_GATE_UP_SWIGLU, "matmul_mxfp4.wgsl", "expert_gate_up_swiglu", ExpertParams);
kernel!(EXPERT_DOWN, "matmul_mxfp4.wgsl", "expert_down", ExpertParams);
kernel!(EXPERT_DOWN_ACCUMULATE, "matmul_mxfp4.wgsl", "expert_down_accumulate", ExpertParams);
kernel!(EXPERT_GATE_UP_SWIGLU_GROUPED, "matmul_mxfp4.wgsl", "expert_gate_up_swiglu_grouped", ExpertParams);
kernel!(EXPERT_DOWN_GROUPED, "matmul_mxfp4.wgsl", "expert_down_grouped", ExpertParams);

/// The MoE kernels, for shader validation and translation tests.
pub const KERNELS: &[Kernel] = &[
    TOPK_SOFTMAX,
    ROUTER_LOGITS,
    EXPERT_COUNT,
    EXPERT_ACCUMULATE,
    EXPERT_GATE_UP_SWIGLU,
    EXPERT_DOWN,
    EXPERT_DOWN_ACCUMULATE,
    EXPERT_GATE_UP_SWIGLU_GROUPED,
    EXPERT_DOWN_GROUPED,
];

/// Most experts per token the kernels take (`MAX_K` in the shaders).
pub const MAX_K: u32 = 16;
/// Most experts the routing kernels take (workgroup arrays in the shaders).
pub const MAX_EXPERTS: u32 = 256;

/// Rows per workgroup of the decode kernels (`DROWS`, `AROWS` in matmul_mxfp4.wgsl).
const DECODE_ROWS: u32 = 16;
const ACCUMULATE_ROWS: u32 = 4;
/// Rows per workgroup of the grouped prefill kernels (`GROWS`).
const GROUPED_ROWS: u32 = 32;
/// Router rows per workgroup of `router_norm_matvec` (`RROWS` in moe_route.wgsl).
const ROUTER_ROWS: u32 = 4;

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
    rec.dispatch(&TOPK_SOFTMAX, &TopkParams { n_tokens, n_experts, k }, &[logits, ids, weights], [n_tokens.div_ceil(64), 1, 1]);
}

/// Buffers of the MoE routing step of one layer.
pub struct RouteIo<'a> {
    /// The residual stream [T, hidden] (read).
    pub x: &'a wgpu::Buffer,
    /// RMSNorm(x) [T, hidden] (written: the experts' input).
    pub normed: &'a wgpu::Buffer,
    /// Router logits [T, n_experts]; in prefill reused for the per-expert token lists.
    pub logits: &'a wgpu::Buffer,
    /// Chosen experts [T, k] and their weights [T, k] (written).
    pub ids: &'a wgpu::Buffer,
    pub weights: &'a wgpu::Buffer,
}

/// Where the expert kernels find the routing of a chunk.
#[derive(Clone, Copy)]
pub struct Routed<'a> {
    /// Chosen experts [T, k] and their weights [T, k].
    pub ids: &'a wgpu::Buffer,
    pub weights: &'a wgpu::Buffer,
    /// Router logits [T, n_experts] not yet reduced to ids and weights: the decode gate_up
    /// kernel takes their top-k itself and writes `ids` and `weights`.
    pub pending_logits: Option<&'a wgpu::Buffer>,
    /// Scratch for per-expert token lists (prefill; at least n_experts + 1 + T * k u32s): the
    /// grouped kernels run when it is given and large enough.
    pub lists: Option<&'a wgpu::Buffer>,
}

impl<'a> Routed<'a> {
    /// Ids and weights already chosen; `lists` enables the grouped prefill kernels.
    pub fn chosen(ids: &'a wgpu::Buffer, weights: &'a wgpu::Buffer, lists: Option<&'a wgpu::Buffer>) -> Self {
        Routed { ids, weights, pending_logits: None, lists }
    }

    fn lists_for(&self, n_tokens: u32, k: u32, n_experts: u32) -> Option<&'a wgpu::Buffer> {
        let need = (n_experts as u64 + 1 + n_tokens as u64 * k as u64) * 4;
        self.lists.filter(|b| n_tokens >= GROUPED_MIN_TOKENS && n_experts <= MAX_EXPERTS && b.size() >= need)
    }
}

/// The MLP's RMSNorm and router (one multi-workgroup dispatch per router slice), then either
/// nothing more (decode: the gate_up kernel takes the top-k) or top-k softmax (prefill).
#[allow(clippy::too_many_arguments)]
pub fn moe_route<'a>(
    rec: &mut Recorder,
    n_tokens: u32,
    norm_weight: &wgpu::Buffer,
    eps: f32,
    router: &Bf16Matrix,
    k: u32,
    io: RouteIo<'a>,
) -> Routed<'a> {
    let (h, e) = (router.cols, router.rows);
    if h % 4 == 0 {
        let groups = e.div_ceil(ROUTER_ROWS).min(e);
        for s in &router.slices {
            let bias = s.buffers.get(1);
            let rows = s.row_end - s.row_start;
            rec.reads(n_tokens as u64 * h as u64 * 8 + rows as u64 * h as u64 * 2);
            // Every slice's dispatch writes the (same) normed rows, in `groups` pieces.
            let gx = rows.div_ceil(ROUTER_ROWS);
            rec.dispatch(
                &ROUTER_LOGITS,
                &RouterParams {
                    n_tokens, hidden: h, n_experts: e, eps, row_start: s.row_start, row_end: s.row_end,
                    has_bias: bias.is_some() as u32, n_groups: gx.min(groups),
                },
                &[io.x, norm_weight, &s.buffers[0], bias.unwrap_or(&rec.gpu.dummy), io.normed, io.logits],
                [gx, n_tokens, 1],
            );
        }
    } else {
        rmsnorm(rec, io.x, 0, n_tokens, h, norm_weight, eps, io.normed);
        let mio = MatmulIo { n_tokens, x_offset: 0, x_stride: h, y_stride: e, y_offset: 0, accumulate: false };
        matmul(rec, io.normed, router, io.logits, mio);
    }
    if n_tokens < GROUPED_MIN_TOKENS && k <= MAX_K && e <= MAX_EXPERTS {
        return Routed { ids: io.ids, weights: io.weights, pending_logits: Some(io.logits), lists: None };
    }
    topk_softmax(rec, n_tokens, e, k, io.logits, io.ids, io.weights);
    Routed::chosen(io.ids, io.weights, Some(io.logits))
}

/// From this many tokens on, expert kernels run grouped by expert: one workgroup per (expert,
/// rows) serves all tokens routed there, reading those weights once instead of once per token.
pub const GROUPED_MIN_TOKENS: u32 = 8;

/// The grid of an expert kernel: per (rows, slot, token), or per (rows, expert) when grouped.
fn expert_grid(w: &Mxfp4Experts, n_tokens: u32, k: u32, grouped: bool) -> [u32; 3] {
    if grouped {
        [w.rows_per_expert.div_ceil(GROUPED_ROWS), w.n_experts, 1]
    } else {
        [w.rows_per_expert.div_ceil(DECODE_ROWS), k, n_tokens]
    }
}

/// The clamped-SwiGLU activation parameters of the expert MLP.
#[derive(Clone, Copy, Debug)]
pub struct Swiglu {
    pub alpha: f32,
    pub limit: f32,
}

/// Bytes of expert weights that `n` (token, slot) pairs read from a matrix of `w`'s shape.
fn expert_bytes(w: &Mxfp4Experts, n: u64) -> u64 {
    n * w.rows_per_expert as u64 * (w.cols as u64 * 17 / 32 + 4)
}

/// a[t, slot] = SwiGLU(W_gate_up[e] . x[t] + b) for the expert e chosen for each (token, slot).
/// In prefill, first builds the per-expert token lists that the grouped kernels of this layer use.
#[allow(clippy::too_many_arguments)]
pub fn expert_gate_up(
    rec: &mut Recorder,
    n_tokens: u32,
    k: u32,
    x: &wgpu::Buffer,
    route: Routed,
    w: &Mxfp4Experts,
    act: Swiglu,
    out: &wgpu::Buffer,
) {
    let lists = route.lists_for(n_tokens, k, w.n_experts);
    if let Some(lists) = lists {
        rec.dispatch(&EXPERT_COUNT, &ExpertCountParams { n_entries: n_tokens * k, n_experts: w.n_experts }, &[route.ids, lists], [1, 1, 1]);
    }
    let pending = route.pending_logits.filter(|_| lists.is_none());
    let per_slice = expert_bytes(w, n_tokens as u64 * k as u64) / w.slices.len() as u64;
    let grid = expert_grid(w, n_tokens, k, lists.is_some());
    for s in &w.slices {
        rec.reads(per_slice);
        let params = ExpertParams {
            n_tokens, k, rows_per_expert: w.rows_per_expert, cols: w.cols, row_start: s.row_start,
            row_end: s.row_end, limit: act.limit, alpha: act.alpha, n_experts: w.n_experts,
            route_from_logits: pending.is_some() as u32,
        };
        match lists {
            Some(lists) => rec.dispatch(
                &EXPERT_GATE_UP_SWIGLU_GROUPED,
                &params,
                &[x, lists, &s.buffers[0], &s.buffers[1], &s.buffers[2], out],
                grid,
            ),
            None => rec.dispatch(
                &EXPERT_GATE_UP_SWIGLU,
                &params,
                &[x, route.ids, &s.buffers[0], &s.buffers[1], &s.buffers[2], out, route.weights, pending.unwrap_or(&rec.gpu.dummy)],
                grid,
            ),
        }
    }
}

/// y[t, slot] = W_down[e] . a[t, slot] + b for the expert e chosen for each (token, slot).
#[allow(clippy::too_many_arguments)]
pub fn expert_down(
    rec: &mut Recorder,
    n_tokens: u32,
    k: u32,
    a: &wgpu::Buffer,
    route: Routed,
    w: &Mxfp4Experts,
    out: &wgpu::Buffer,
) {
    // Lists are built by expert_gate_up for the same chunk.
    let lists = route.lists_for(n_tokens, k, w.n_experts);
    let grid = expert_grid(w, n_tokens, k, lists.is_some());
    let per_slice = expert_bytes(w, n_tokens as u64 * k as u64) / w.slices.len() as u64;
    for s in &w.slices {
        rec.reads(per_slice);
        let params = ExpertParams {
            n_tokens, k, rows_per_expert: w.rows_per_expert, cols: w.cols, row_start: s.row_start,
            row_end: s.row_end, limit: 0.0, alpha: 0.0, n_experts: w.n_experts, route_from_logits: 0,
        };
        match lists {
            Some(lists) => rec.dispatch(&EXPERT_DOWN_GROUPED, &params, &[a, lists, &s.buffers[0], &s.buffers[1], &s.buffers[2], out], grid),
            None => rec.dispatch(&EXPERT_DOWN, &params, &[a, route.ids, &s.buffers[0], &s.buffers[1], &s.buffers[2], out], grid),
        }
    }
}

/// residual[t] += sum_slot weights[t, slot] * (W_down[e] . a[t, slot] + b). Decode: one
/// dispatch per slice of the experts, all slots at once; prefill: grouped `expert_down` into `y`,
/// then `expert_accumulate`.
#[allow(clippy::too_many_arguments)]
pub fn expert_down_accumulate(
    rec: &mut Recorder,
    n_tokens: u32,
    k: u32,
    a: &wgpu::Buffer,
    route: Routed,
    w: &Mxfp4Experts,
    y: &wgpu::Buffer,
    residual: &wgpu::Buffer,
) {
    if route.lists_for(n_tokens, k, w.n_experts).is_none() && k <= MAX_K {
        let per_slice = expert_bytes(w, n_tokens as u64 * k as u64) / w.slices.len() as u64;
        for s in &w.slices {
            rec.reads(per_slice);
            rec.dispatch(
                &EXPERT_DOWN_ACCUMULATE,
                &ExpertParams {
                    n_tokens, k, rows_per_expert: w.rows_per_expert, cols: w.cols, row_start: s.row_start,
                    row_end: s.row_end, limit: 0.0, alpha: 0.0, n_experts: w.n_experts, route_from_logits: 0,
                },
                &[a, route.ids, &s.buffers[0], &s.buffers[1], &s.buffers[2], residual, route.weights],
                [w.rows_per_expert.div_ceil(ACCUMULATE_ROWS), n_tokens, 1],
            );
        }
        return;
    }
    expert_down(rec, n_tokens, k, a, route, w, y);
    expert_accumulate(rec, n_tokens, k, w.rows_per_expert, y, route.weights, residual);
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
    rec.dispatch(&EXPERT_ACCUMULATE, &ExpertAccumulateParams {
        n_tokens, k, hidden,
    }, &[y, weights, residual], [hidden.div_ceil(64), n_tokens, 1]);
}
