// Attention with learned sinks, GQA, causal mask and an optional sliding window, over a KV cache
// that may be a ring (slot = position % ring) and may be split into segments (one buffer each).
//
// attn_partial: one workgroup per (query head, token, split of a segment's slots) runs an online
// softmax over its keys and writes (max, sum, unnormalised acc[head_dim]) to `partials`.
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
