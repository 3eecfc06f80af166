// MoE routing. `router_norm_matvec`: the MLP's RMSNorm fused into the router mat-vec, rows spread
// over workgroups (each recomputes the token's norm, one slice of it is written out as the
// experts' input). `topk_softmax`: pick the k largest router logits per token (ties go to the
// lower expert index) and softmax over those k only (in decode the gate_up kernel does this
// itself). `expert_count`: per-expert lists of routed (token, slot) entries for the grouped
// prefill kernels. `expert_accumulate`: add the weighted expert outputs into the residual.

struct TopkParams { n_tokens: u32, n_experts: u32, k: u32 }

@group(0) @binding(0) var<uniform> tp: TopkParams;
@group(0) @binding(1) var<storage, read> router_logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> expert_ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> expert_weights: array<f32>;

const MAX_K: u32 = 16u;

@compute @workgroup_size(64)
fn topk_softmax(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if (t >= tp.n_tokens) { return; }
    let base = t * tp.n_experts;
    var taken = array<u32, 8>(0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u); // bitmask of chosen experts (<= 256)
    var vals: array<f32, MAX_K>;
    for (var j = 0u; j < tp.k; j++) {
        var best = 0u;
        var best_v = 0.0;
        var found = false;
        for (var e = 0u; e < tp.n_experts; e++) {
            if ((taken[e / 32u] & (1u << (e % 32u))) != 0u) { continue; }
            let v = router_logits[base + e];
            if (!found || v > best_v) { best = e; best_v = v; found = true; }
        }
        taken[best / 32u] |= 1u << (best % 32u);
        vals[j] = best_v;
        expert_ids[t * tp.k + j] = best;
    }
    // vals[0] is the largest, so exponents are <= 0.
    var sum = 0.0;
    for (var j = 0u; j < tp.k; j++) { sum += exp(vals[j] - vals[0]); }
    for (var j = 0u; j < tp.k; j++) { expert_weights[t * tp.k + j] = exp(vals[j] - vals[0]) / sum; }
}

struct AccParams { n_tokens: u32, k: u32, hidden: u32 }

@group(0) @binding(0) var<uniform> ap: AccParams;
@group(0) @binding(1) var<storage, read> expert_out: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> residual: array<f32>;

@compute @workgroup_size(64)
fn expert_accumulate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = wid.y;
    let i = gid.x;
    if (i >= ap.hidden) { return; }
    var sum = 0.0;
    for (var j = 0u; j < ap.k; j++) {
        sum += weights[t * ap.k + j] * expert_out[(t * ap.k + j) * ap.hidden + i];
    }
    residual[t * ap.hidden + i] += sum;
}

struct RouterParams { n_tokens: u32, hidden: u32, n_experts: u32, eps: f32, row_start: u32, row_end: u32, has_bias: u32, n_groups: u32 }

@group(0) @binding(0) var<uniform> rp: RouterParams;
@group(0) @binding(1) var<storage, read> rx: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> norm_weight: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> router_w: array<vec2<u32>>; // bf16 quads, rows [row_start, row_end)
@group(0) @binding(4) var<storage, read> router_b: array<f32>;
@group(0) @binding(5) var<storage, read_write> normed: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> logits_out: array<f32>;

const RWG: u32 = 64u;
// Router rows per workgroup.
const RROWS: u32 = 4u;
var<workgroup> rred: array<f32, 320>; // (RROWS + 1) * RWG

fn bf16x4(w: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(bitcast<f32>(w.x << 16u), bitcast<f32>(w.x & 0xffff0000u), bitcast<f32>(w.y << 16u), bitcast<f32>(w.y & 0xffff0000u));
}

// One workgroup per (RROWS router rows, token): a single pass over x accumulates the sum of
// squares and the rows' dot products with x * norm_weight; the norm's scale is applied to the
// reduced sums. Workgroup g (of n_groups) also writes slice g of the normed row.
@compute @workgroup_size(64)
fn router_norm_matvec(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = wid.y;
    let e0 = rp.row_start + wid.x * RROWS;
    let h4 = rp.hidden / 4u;
    let base = t * h4;
    var ss = 0.0;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var c = lid; c < h4; c += RWG) {
        let x = rx[base + c];
        ss += dot(x, x);
        let xw = x * norm_weight[c];
        for (var r = 0u; r < RROWS; r++) {
            if (e0 + r < rp.row_end) {
                acc[r] += dot(xw, bf16x4(router_w[(e0 + r - rp.row_start) * h4 + c]));
            }
        }
    }
    rred[lid] = ss;
    for (var r = 0u; r < RROWS; r++) { rred[(r + 1u) * RWG + lid] = acc[r]; }
    workgroupBarrier();
    for (var s = RWG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            for (var r = 0u; r <= RROWS; r++) { rred[r * RWG + lid] += rred[r * RWG + lid + s]; }
        }
        workgroupBarrier();
    }
    let scale = 1.0 / sqrt(rred[0] / f32(rp.hidden) + rp.eps);
    if (lid < RROWS && e0 + lid < rp.row_end) {
        var b = 0.0;
        if (rp.has_bias != 0u) { b = router_b[e0 + lid - rp.row_start]; }
        logits_out[t * rp.n_experts + e0 + lid] = rred[(lid + 1u) * RWG] * scale + b;
    }
    let per = (h4 + rp.n_groups - 1u) / rp.n_groups;
    let end = min(h4, (wid.x + 1u) * per);
    for (var c = wid.x * per + lid; c < end; c += RWG) {
        normed[base + c] = rx[base + c] * scale * norm_weight[c];
    }
}

struct CountParams { n_entries: u32, n_experts: u32 }

@group(0) @binding(0) var<uniform> cp: CountParams;
@group(0) @binding(1) var<storage, read> count_ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> lists: array<u32>;

var<workgroup> per_expert: array<atomic<u32>, 256>;
var<workgroup> expert_start: array<u32, 256>;

// Lists of routed entries (token * k + slot) by expert: lists[0..=n_experts] are offsets,
// lists[n_experts + 1 + offset[e] ..] expert e's entries. One small workgroup per layer.
@compute @workgroup_size(256)
fn expert_count(@builtin(local_invocation_index) lid: u32) {
    let ne = cp.n_experts;
    atomicStore(&per_expert[lid], 0u);
    workgroupBarrier();
    for (var i = lid; i < cp.n_entries; i += 256u) { atomicAdd(&per_expert[count_ids[i]], 1u); }
    workgroupBarrier();
    if (lid == 0u) {
        var sum = 0u;
        for (var e = 0u; e < ne; e++) {
            expert_start[e] = sum;
            lists[e] = sum;
            sum += atomicLoad(&per_expert[e]);
            atomicStore(&per_expert[e], 0u);
        }
        lists[ne] = sum;
    }
    workgroupBarrier();
    for (var i = lid; i < cp.n_entries; i += 256u) {
        let e = count_ids[i];
        lists[ne + 1u + expert_start[e] + atomicAdd(&per_expert[e], 1u)] = i;
    }
}
