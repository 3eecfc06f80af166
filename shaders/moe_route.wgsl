// MoE routing. `topk_softmax`: pick the k largest router logits per token (ties go to the
// lower expert index) and softmax over those k only. `route`: the MLP's RMSNorm, the router
// mat-vec and `topk_softmax` fused, one workgroup per token (one dispatch instead of three).
// `expert_accumulate`: add the weighted expert outputs into the residual stream.

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

struct RouteParams { n_tokens: u32, hidden: u32, n_experts: u32, k: u32, eps: f32, has_bias: u32 }

@group(0) @binding(0) var<uniform> rp: RouteParams;
@group(0) @binding(1) var<storage, read> rx: array<f32>;
@group(0) @binding(2) var<storage, read> norm_weight: array<f32>;
@group(0) @binding(3) var<storage, read> router_w: array<u32>; // bf16 pairs, [n_experts, hidden]
@group(0) @binding(4) var<storage, read> router_b: array<f32>;
@group(0) @binding(5) var<storage, read_write> normed: array<f32>;
@group(0) @binding(6) var<storage, read_write> route_ids: array<u32>;
@group(0) @binding(7) var<storage, read_write> route_weights: array<f32>;

const RWG: u32 = 256u;
var<workgroup> rred: array<f32, RWG>;
var<workgroup> rlogits: array<f32, 256>;

@compute @workgroup_size(256)
fn route(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = wid.x + wid.y * nwg.x;
    if (t >= rp.n_tokens) { return; }
    let h = rp.hidden;
    let base = t * h;
    // RMSNorm; the normed row is also the experts' input.
    var ss = 0.0;
    for (var i = lid.x; i < h; i += RWG) {
        let v = rx[base + i];
        ss += v * v;
    }
    rred[lid.x] = ss;
    workgroupBarrier();
    for (var s = RWG / 2u; s > 0u; s >>= 1u) {
        if (lid.x < s) { rred[lid.x] += rred[lid.x + s]; }
        workgroupBarrier();
    }
    let scale = 1.0 / sqrt(rred[0] / f32(h) + rp.eps);
    for (var i = lid.x; i < h; i += RWG) {
        normed[base + i] = rx[base + i] * scale * norm_weight[i];
    }
    storageBarrier();
    workgroupBarrier();
    // Router logits: `tpe` threads per expert, each over a strided share of the row.
    var tpe = RWG;
    while (tpe > 1u && tpe * rp.n_experts > RWG) { tpe >>= 1u; }
    let per_pass = RWG / tpe;
    let lane = lid.x % tpe;
    let half_h = h / 2u;
    for (var e0 = 0u; e0 < rp.n_experts; e0 += per_pass) {
        let e = e0 + lid.x / tpe;
        var acc = 0.0;
        if (e < rp.n_experts) {
            for (var c = lane; c < half_h; c += tpe) {
                let w = router_w[e * half_h + c];
                let x0 = normed[base + 2u * c];
                let x1 = normed[base + 2u * c + 1u];
                acc += bitcast<f32>(w << 16u) * x0 + bitcast<f32>(w & 0xffff0000u) * x1;
            }
        }
        rred[lid.x] = acc;
        workgroupBarrier();
        for (var s = tpe / 2u; s > 0u; s >>= 1u) {
            if (lane < s) { rred[lid.x] += rred[lid.x + s]; }
            workgroupBarrier();
        }
        if (lane == 0u && e < rp.n_experts) {
            var b = 0.0;
            if (rp.has_bias != 0u) { b = router_b[e]; }
            rlogits[e] = rred[lid.x] + b;
        }
        workgroupBarrier();
    }
    if (lid.x != 0u) { return; }
    var taken = array<u32, 8>(0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u);
    var vals: array<f32, MAX_K>;
    for (var j = 0u; j < rp.k; j++) {
        var best = 0u;
        var best_v = 0.0;
        var found = false;
        for (var e = 0u; e < rp.n_experts; e++) {
            if ((taken[e / 32u] & (1u << (e % 32u))) != 0u) { continue; }
            let v = rlogits[e];
            if (!found || v > best_v) { best = e; best_v = v; found = true; }
        }
        taken[best / 32u] |= 1u << (best % 32u);
        vals[j] = best_v;
        route_ids[t * rp.k + j] = best;
    }
    var sum = 0.0;
    for (var j = 0u; j < rp.k; j++) { sum += exp(vals[j] - vals[0]); }
    for (var j = 0u; j < rp.k; j++) { route_weights[t * rp.k + j] = exp(vals[j] - vals[0]) / sum; }
}
