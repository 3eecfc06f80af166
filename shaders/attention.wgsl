// Attention with learned sinks, GQA, causal mask and an optional sliding window, over a KV cache
// that may be a ring (slot = position % ring) and may be split into segments (one buffer each).
//
// attn_partial: one workgroup per (query head, token, split of a segment's slots) runs an online
// softmax over its keys and writes (max, sum, unnormalised acc[head_dim]) to `partials`.
// attn_partial_gqa: the same for all query heads of one KV head at once (one workgroup per
//   (KV head, token, split)), so each key and value is read once per group instead of once per
//   query head. Used when the group fits (see `gqa_fits` in ops).
// attn_merge: combines the partials of a (head, token) with the sink logit and normalises.

struct Params {
    n_tokens: u32, n_q_heads: u32, n_kv_heads: u32, head_dim: u32,
    pos0: u32, ring: u32, window: u32, seg_start: u32,
    seg_slots: u32, n_written: u32, split_len: u32, part_base: u32,
    n_parts: u32, scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_seg: array<f32>;
@group(0) @binding(3) var<storage, read> v_seg: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

const WG: u32 = 64u;
const NEG: f32 = -3.0e38;
const MAX_D: u32 = 256u;
var<workgroup> qs: array<f32, MAX_D>;
var<workgroup> sc: array<f32, WG>;
var<workgroup> pw: array<f32, WG>;

@compute @workgroup_size(64)
fn attn_partial(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let t = wid.y;
    let d = p.head_dim;
    let g = h / (p.n_q_heads / p.n_kv_heads);
    let qpos = p.pos0 + t;
    for (var i = lid.x; i < d; i += WG) { qs[i] = q[(t * p.n_q_heads + h) * d + i]; }
    workgroupBarrier();

    let s_begin = p.seg_start + wid.z * p.split_len;
    let s_end = min(min(p.seg_start + p.seg_slots, s_begin + p.split_len), p.n_written);
    var m = NEG;
    var l = 0.0;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var tile = s_begin; tile < s_end; tile += WG) {
        let s = tile + lid.x;
        var score = NEG;
        var valid = false;
        if (s < s_end) {
            // The position held in slot s that this query may see (distance back from qpos).
            let back = (qpos % p.ring + p.ring - s) % p.ring;
            valid = back <= qpos && (p.window == 0u || back < p.window);
            if (valid) {
                let kb = ((s - p.seg_start) * p.n_kv_heads + g) * d;
                var dot = 0.0;
                for (var i = 0u; i < d; i++) { dot += qs[i] * k_seg[kb + i]; }
                score = dot * p.scale;
            }
        }
        sc[lid.x] = score;
        workgroupBarrier();
        var tile_max = NEG;
        for (var u = 0u; u < WG; u++) { tile_max = max(tile_max, sc[u]); }
        let new_m = max(m, tile_max);
        var e = 0.0;
        if (valid) { e = exp(score - new_m); }
        pw[lid.x] = e;
        workgroupBarrier();
        let corr = exp(m - new_m);
        var sum = 0.0;
        for (var u = 0u; u < WG; u++) { sum += pw[u]; }
        l = l * corr + sum;
        let n = min(WG, s_end - tile);
        for (var j = 0u; j < 4u; j++) {
            let i = lid.x + j * WG;
            if (i < d) {
                var a = acc[j] * corr;
                for (var u = 0u; u < n; u++) {
                    let wgt = pw[u];
                    if (wgt != 0.0) { a += wgt * v_seg[((tile + u - p.seg_start) * p.n_kv_heads + g) * d + i]; }
                }
                acc[j] = a;
            }
        }
        m = new_m;
        workgroupBarrier();
    }
    let base = ((t * p.n_q_heads + h) * p.n_parts + p.part_base + wid.z) * (d + 2u);
    if (lid.x == 0u) {
        partials[base] = m;
        partials[base + 1u] = l;
    }
    for (var j = 0u; j < 4u; j++) {
        let i = lid.x + j * WG;
        if (i < d) { partials[base + 2u + i] = acc[j]; }
    }
}

// ---- GQA: one workgroup per (KV head, token, split) ----
const GQA_Q: u32 = 2048u;  // group size * head_dim
const GQA_MAX_G: u32 = 16u;
const GQA_MAX_DIMS: u32 = 32u; // dims per invocation
var<workgroup> gq: array<f32, GQA_Q>;
var<workgroup> gsc: array<f32, 1024>; // GQA_MAX_G * WG scores, then weights
var<workgroup> gred: array<f32, WG>;

@compute @workgroup_size(64)
fn attn_partial_gqa(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let kvh = wid.x;
    let t = wid.y;
    let d = p.head_dim;
    let group = p.n_q_heads / p.n_kv_heads;
    let qpos = p.pos0 + t;
    let q0 = (t * p.n_q_heads + kvh * group) * d;
    for (var i = lid.x; i < group * d; i += WG) { gq[i] = q[q0 + i]; }
    // Invocation layout for the softmax and the output: `tph` invocations per query head.
    let tph = WG / group;
    let oh = lid.x / tph;
    let lane = lid.x % tph;
    let dims = (d + tph - 1u) / tph;
    workgroupBarrier();

    let s_begin = p.seg_start + wid.z * p.split_len;
    let s_end = min(min(p.seg_start + p.seg_slots, s_begin + p.split_len), p.n_written);
    var m = NEG;
    var l = 0.0;
    var acc: array<f32, GQA_MAX_DIMS>;
    for (var tile = s_begin; tile < s_end; tile += WG) {
        // Scores: one key per invocation, against every query head of the group.
        let s = tile + lid.x;
        var dots: array<f32, GQA_MAX_G>;
        var valid = false;
        if (s < s_end) {
            let back = (qpos % p.ring + p.ring - s) % p.ring;
            valid = back <= qpos && (p.window == 0u || back < p.window);
            if (valid) {
                let kb = ((s - p.seg_start) * p.n_kv_heads + kvh) * d;
                for (var i = 0u; i < d; i++) {
                    let kv = k_seg[kb + i];
                    for (var h = 0u; h < group; h++) { dots[h] += gq[h * d + i] * kv; }
                }
            }
        }
        for (var h = 0u; h < group; h++) {
            gsc[h * WG + lid.x] = select(NEG, dots[h] * p.scale, valid);
        }
        workgroupBarrier();
        // Tile maximum of head `oh`: each lane scans every tph-th key, then the lanes combine.
        var pm = NEG;
        for (var u = lane; u < WG; u += tph) { pm = max(pm, gsc[oh * WG + u]); }
        gred[lid.x] = pm;
        workgroupBarrier();
        var tile_max = NEG;
        for (var j = 0u; j < tph; j++) { tile_max = max(tile_max, gred[oh * tph + j]); }
        let new_m = max(m, tile_max);
        workgroupBarrier();
        var ps = 0.0;
        for (var u = lane; u < WG; u += tph) {
            let sc = gsc[oh * WG + u];
            let e = select(0.0, exp(sc - new_m), sc > NEG);
            gsc[oh * WG + u] = e;
            ps += e;
        }
        gred[lid.x] = ps;
        workgroupBarrier();
        var tile_sum = 0.0;
        for (var j = 0u; j < tph; j++) { tile_sum += gred[oh * tph + j]; }
        let corr = exp(m - new_m);
        l = l * corr + tile_sum;
        let n = min(WG, s_end - tile);
        for (var j = 0u; j < dims; j++) {
            let i = lane + j * tph;
            if (i < d) {
                var a = acc[j] * corr;
                for (var u = 0u; u < n; u++) {
                    let wgt = gsc[oh * WG + u];
                    if (wgt != 0.0) { a += wgt * v_seg[((tile + u - p.seg_start) * p.n_kv_heads + kvh) * d + i]; }
                }
                acc[j] = a;
            }
        }
        m = new_m;
        workgroupBarrier();
    }
    let h = kvh * group + oh;
    let base = ((t * p.n_q_heads + h) * p.n_parts + p.part_base + wid.z) * (d + 2u);
    if (lane == 0u) {
        partials[base] = m;
        partials[base + 1u] = l;
    }
    for (var j = 0u; j < dims; j++) {
        let i = lane + j * tph;
        if (i < d) { partials[base + 2u + i] = acc[j]; }
    }
}

struct MergeParams { n_tokens: u32, n_q_heads: u32, head_dim: u32, stride: u32, n_parts: u32 }

@group(0) @binding(0) var<uniform> mp: MergeParams;
@group(0) @binding(1) var<storage, read> parts: array<f32>;
@group(0) @binding(2) var<storage, read> sinks: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn attn_merge(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let t = wid.y;
    let d = mp.head_dim;
    let base = (t * mp.n_q_heads + h) * mp.stride;
    let sink = sinks[h];
    var m = sink;
    for (var i = 0u; i < mp.n_parts; i++) { m = max(m, parts[(base + i) * (d + 2u)]); }
    var denom = exp(sink - m);
    for (var i = 0u; i < mp.n_parts; i++) {
        let pb = (base + i) * (d + 2u);
        denom += parts[pb + 1u] * exp(parts[pb] - m);
    }
    for (var c = lid.x; c < d; c += 64u) {
        var num = 0.0;
        for (var i = 0u; i < mp.n_parts; i++) {
            let pb = (base + i) * (d + 2u);
            num += parts[pb + 2u + c] * exp(parts[pb] - m);
        }
        out[(t * mp.n_q_heads + h) * d + c] = num / denom;
    }
}
