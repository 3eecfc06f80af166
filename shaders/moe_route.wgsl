// MoE routing glue. `topk_softmax`: pick the k largest router logits per token (ties go to the
// lower expert index) and softmax over those k only. `expert_accumulate`: add the weighted
// expert outputs into the residual stream.

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
