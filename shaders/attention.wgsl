// Attention with learned sinks, GQA, causal mask and an optional sliding window, over a KV cache
// that may be a ring (slot = position % ring), may be split into segments (one buffer each) and
// stores K and V as f32 words or as f16 pairs packed in u32 words (`kv_f16`).
//
// A dispatch of attn_partial / attn_partial_gqa covers the key positions [p_begin, p_end), whose
// slots lie in one segment (the slot wraps once at the end of the ring). The host passes only
// live positions (the window of a sliding layer, not the whole ring).
//
// attn_partial_gqa: one workgroup per (KV head, token, split of the positions) for all query
//   heads of the group, so each key and value is read once per group.
// attn_partial: the same with one query head per workgroup (groups too large for one workgroup).
// Both write (max, sum, unnormalised acc[head_dim]) per (token, query head, split) to `partials`.
// attn_merge: combines the partials of a (head, token) with the sink logit and normalises.
//
// Per tile of up to 64 keys a workgroup copies the K rows into workgroup memory (adjacent
// invocations read adjacent words of a row: coalesced), computes the scores of every (head, key),
// updates the online softmax of each head (subgroup reductions, or a scan per head without
// subgroups), copies the V rows the same way, and accumulates weights x V into a workgroup-memory
// accumulator that each invocation owns a fixed part of. Nothing is kept in per-invocation arrays.

struct Params {
    n_tokens: u32, n_q_heads: u32, n_kv_heads: u32, head_dim: u32,
    pos0: u32, ring: u32, window: u32, seg_start: u32,
    p_begin: u32, p_end: u32, split_len: u32, part_base: u32,
    n_parts: u32, scale: f32, kv_f16: u32, tile_keys: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_seg: array<u32>;
@group(0) @binding(3) var<storage, read> v_seg: array<u32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

const WG: u32 = 64u;
const NEG: f32 = -3.0e38;
// Workgroup memory (15.97 KB in all, under WebGPU's 16 KB minimum). Rows of head_dim values
// are held as dv4 = ceil(head_dim / 4) vec4s, the tail zeroed first and never written, so dot
// products and accumulations go 4 values per operation.
const TILE_V4: u32 = 544u;  // K or V rows of a tile, row stride dv4 + 1 vec4s (no bank conflicts)
const GQ_V4: u32 = 128u;    // queries and output accumulators of the group: group * dv4
const PS_MAX: u32 = 512u;   // scores, then weights, of the tile: group * tile_keys
const G_MAX: u32 = 8u;      // query heads per workgroup
const SG_MAX: u32 = 16u;    // subgroups per workgroup (WebGPU subgroups have at least 4 invocations)
var<workgroup> tile: array<vec4<f32>, TILE_V4>;
var<workgroup> gq: array<vec4<f32>, GQ_V4>;
var<workgroup> oacc: array<vec4<f32>, GQ_V4>;
var<workgroup> ps: array<f32, PS_MAX>;
var<workgroup> m_run: array<f32, G_MAX>;
var<workgroup> l_run: array<f32, G_MAX>;
var<workgroup> corr: array<f32, G_MAX>;
var<workgroup> red_max: array<f32, 128>; // G_MAX * SG_MAX
var<workgroup> red_sum: array<f32, 128>;

// Word `w` of K (which = 0) or V (which = 1).
fn kv_word(which: u32, w: u32) -> u32 {
    if (which == 0u) { return k_seg[w]; }
    return v_seg[w];
}

// Copies the rows of KV head `kvh` for positions s0 .. s0 + n (slots from slot0 on, wrapping at
// the ring) into `tile` as f32, row stride dv4 + 1 vec4s. Invocation i reads words i, i + 64, ...
// of the rows laid end to end, so adjacent invocations read adjacent addresses.
// Per word: ~8 integer ops (index step, slot wrap, address) and 1 or 2 shared stores.
fn load_tile(which: u32, lid: u32, kvh: u32, slot0: u32, n: u32) {
    let d = p.head_dim;
    let rs = (d + 3u) / 4u + 1u;
    let f16 = p.kv_f16 != 0u;
    let row_words = select(d, d / 2u, f16);
    let step_r = WG / row_words;
    let step_c = WG % row_words;
    var r = lid / row_words;
    var c = lid % row_words;
    loop {
        if (r >= n) { break; }
        var slot = slot0 + r;
        if (slot >= p.ring) { slot -= p.ring; }
        let word = kv_word(which, ((slot - p.seg_start) * p.n_kv_heads + kvh) * row_words + c);
        if (f16) {
            // Values 2c, 2c + 1: one half of a vec4 (2c is even).
            let v = unpack2x16float(word);
            let at = r * rs + c / 2u;
            if (c % 2u == 0u) { tile[at].x = v.x; tile[at].y = v.y; } else { tile[at].z = v.x; tile[at].w = v.y; }
        } else {
            tile[r * rs + c / 4u][c % 4u] = bitcast<f32>(word);
        }
        c += step_c;
        r += step_r;
        if (c >= row_words) { c -= row_words; r += 1u; }
    }
}

// The partial attention of `g` query heads (h0 ..) sharing KV head `kvh`, for token wid.y and
// split wid.z. `sg` = (subgroup invocation id, subgroup id, number of subgroups).
fn partial(lid: u32, wid: vec3<u32>, sg: vec3<u32>, kvh: u32, h0: u32, g: u32) {
    let t = wid.y;
    let d = p.head_dim;
    let dv4 = (d + 3u) / 4u;
    let rs = dv4 + 1u;
    let tk = p.tile_keys;
    let qpos = p.pos0 + t;
    // Zero tails: rows are read 4 values at a time.
    for (var i = lid; i < TILE_V4; i += WG) { tile[i] = vec4<f32>(0.0); }
    for (var i = lid; i < GQ_V4; i += WG) {
        gq[i] = vec4<f32>(0.0);
        oacc[i] = vec4<f32>(0.0);
    }
    workgroupBarrier();
    for (var i = lid; i < g * d; i += WG) {
        let h = i / d;
        let c = i % d;
        gq[h * dv4 + c / 4u][c % 4u] = q[(t * p.n_q_heads + h0) * d + i];
    }
    if (lid < g) {
        m_run[lid] = NEG;
        l_run[lid] = 0.0;
    }
    // This split's positions, clamped to what this token sees (causal, window): every key the
    // loop visits is visible, and tiles past the token are skipped.
    let b0 = p.p_begin + wid.z * p.split_len;
    var lo = b0;
    if (p.window != 0u && qpos + 1u > p.window) { lo = max(lo, qpos + 1u - p.window); }
    let hi = min(min(p.p_end, b0 + p.split_len), qpos + 1u);
    workgroupBarrier();

    for (var s0 = lo; s0 < hi; s0 += tk) {
        let n = min(tk, hi - s0);
        let slot0 = s0 % p.ring;
        load_tile(0u, lid, kvh, slot0, n);
        workgroupBarrier();
        // Scores of every (head, key): per 4 dims one vec4 dot and 2 shared vec4 loads.
        for (var e = lid; e < g * tk; e += WG) {
            let h = e / tk;
            let key = e % tk;
            var score = NEG;
            if (key < n) {
                var acc = vec4<f32>(0.0);
                for (var i = 0u; i < dv4; i++) { acc = fma(gq[h * dv4 + i], tile[key * rs + i], acc); }
                score = (acc.x + acc.y + acc.z + acc.w) * p.scale;
            }
            ps[e] = score;
        }
        workgroupBarrier();
        load_tile(1u, lid, kvh, slot0, n);
//#if subgroups
        // Tile maximum of each head: keys on lanes, one subgroupMax per subgroup and head.
        let key = min(lid, tk - 1u);
        for (var h = 0u; h < g; h++) {
            let mx = subgroupMax(select(NEG, ps[h * tk + key], lid < n));
            if (sg.x == 0u) { red_max[h * SG_MAX + sg.y] = mx; }
        }
        workgroupBarrier();
        // Weights exp(score - new max) and their sum per head.
        for (var h = 0u; h < g; h++) {
            var nm = m_run[h];
            for (var j = 0u; j < sg.z; j++) { nm = max(nm, red_max[h * SG_MAX + j]); }
            var w = 0.0;
            if (lid < n) {
                w = exp(ps[h * tk + key] - nm);
                ps[h * tk + key] = w;
            }
            let sum = subgroupAdd(w);
            if (sg.x == 0u) { red_sum[h * SG_MAX + sg.y] = sum; }
        }
        workgroupBarrier();
        if (lid < g) {
            var nm = m_run[lid];
            var sum = 0.0;
            for (var j = 0u; j < sg.z; j++) {
                nm = max(nm, red_max[lid * SG_MAX + j]);
                sum += red_sum[lid * SG_MAX + j];
            }
            let c = exp(m_run[lid] - nm);
            corr[lid] = c;
            l_run[lid] = l_run[lid] * c + sum;
            m_run[lid] = nm;
        }
//#else
        // Without subgroups one invocation per head scans the tile's scores.
        if (lid < g) {
            var nm = m_run[lid];
            for (var k = 0u; k < n; k++) { nm = max(nm, ps[lid * tk + k]); }
            var sum = 0.0;
            for (var k = 0u; k < n; k++) {
                let w = exp(ps[lid * tk + k] - nm);
                ps[lid * tk + k] = w;
                sum += w;
            }
            let c = exp(m_run[lid] - nm);
            corr[lid] = c;
            l_run[lid] = l_run[lid] * c + sum;
            m_run[lid] = nm;
        }
//#endif
        workgroupBarrier();
        // acc[h, c..c+4] = acc * corr + sum_k w[h, k] v[k, c..c+4]: adjacent invocations own
        // adjacent vec4s; per key one vec4 FMA, a shared vec4 load and a broadcast weight.
        for (var o = lid; o < g * dv4; o += WG) {
            let h = o / dv4;
            let c = o % dv4;
            var a = oacc[o] * corr[h];
            for (var k = 0u; k < n; k++) { a = fma(vec4<f32>(ps[h * tk + k]), tile[k * rs + c], a); }
            oacc[o] = a;
        }
        workgroupBarrier();
    }

    for (var o = lid; o < g * d; o += WG) {
        let h = o / d;
        let c = o % d;
        let base = ((t * p.n_q_heads + h0 + h) * p.n_parts + p.part_base + wid.z) * (d + 2u);
        partials[base + 2u + c] = oacc[h * dv4 + c / 4u][c % 4u];
        if (c == 0u) {
            partials[base] = m_run[h];
            partials[base + 1u] = l_run[h];
        }
    }
}

@compute @workgroup_size(64)
fn attn_partial_gqa(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
//#if subgroups
                    @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_id) sg_id: u32,
                    @builtin(num_subgroups) n_sg: u32,
//#endif
) {
//#if subgroups
    let sg = vec3<u32>(sg_lane, sg_id, n_sg);
//#else
    let sg = vec3<u32>(0u, 0u, 1u);
//#endif
    let group = p.n_q_heads / p.n_kv_heads;
    partial(lid.x, wid, sg, wid.x, wid.x * group, group);
}

@compute @workgroup_size(64)
fn attn_partial(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
//#if subgroups
                @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_id) sg_id: u32,
                @builtin(num_subgroups) n_sg: u32,
//#endif
) {
//#if subgroups
    let sg = vec3<u32>(sg_lane, sg_id, n_sg);
//#else
    let sg = vec3<u32>(0u, 0u, 1u);
//#endif
    let group = p.n_q_heads / p.n_kv_heads;
    partial(lid.x, wid, sg, wid.x / group, wid.x, 1u);
}

// ---- merge: one workgroup per (query head, token) ----
struct MergeParams { n_tokens: u32, n_q_heads: u32, head_dim: u32, n_parts: u32 }

@group(0) @binding(0) var<uniform> mp: MergeParams;
@group(0) @binding(1) var<storage, read> parts: array<f32>;
@group(0) @binding(2) var<storage, read> sinks: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const MAX_D: u32 = 256u;
var<workgroup> mred: array<f32, WG>;
var<workgroup> mw: array<f32, WG>;
var<workgroup> mnum: array<f32, MAX_D>;

// Maximum and sum over the workgroup: subgroup reductions combined through workgroup memory,
// or a tree in workgroup memory.
fn wg_max(v: f32, lid: u32, sg: vec3<u32>) -> f32 {
//#if subgroups
    let r = subgroupMax(v);
    if (sg.x == 0u) { mred[sg.y] = r; }
    workgroupBarrier();
    var m = mred[0];
    for (var j = 1u; j < sg.z; j++) { m = max(m, mred[j]); }
//#else
    mred[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) { mred[lid] = max(mred[lid], mred[lid + s]); }
        workgroupBarrier();
    }
    let m = mred[0];
//#endif
    workgroupBarrier();
    return m;
}

fn wg_sum(v: f32, lid: u32, sg: vec3<u32>) -> f32 {
//#if subgroups
    let r = subgroupAdd(v);
    if (sg.x == 0u) { mred[sg.y] = r; }
    workgroupBarrier();
    var m = 0.0;
    for (var j = 0u; j < sg.z; j++) { m += mred[j]; }
//#else
    mred[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) { mred[lid] += mred[lid + s]; }
        workgroupBarrier();
    }
    let m = mred[0];
//#endif
    workgroupBarrier();
    return m;
}

@compute @workgroup_size(64)
fn attn_merge(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
//#if subgroups
              @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_id) sg_id: u32,
              @builtin(num_subgroups) n_sg: u32,
//#endif
) {
//#if subgroups
    let sg = vec3<u32>(sg_lane, sg_id, n_sg);
//#else
    let sg = vec3<u32>(0u, 0u, 1u);
//#endif
    let lid = lid3.x;
    let h = wid.x;
    let t = wid.y;
    let d = mp.head_dim;
    let np = mp.n_parts;
    let base = (t * mp.n_q_heads + h) * np;
    let sink = sinks[h];
    // Parts on invocations: the overall maximum, then the denominator.
    var lm = NEG;
    for (var i = lid; i < np; i += WG) { lm = max(lm, parts[(base + i) * (d + 2u)]); }
    let m = max(sink, wg_max(lm, lid, sg));
    var ls = 0.0;
    for (var i = lid; i < np; i += WG) {
        let pb = (base + i) * (d + 2u);
        ls += parts[pb + 1u] * exp(parts[pb] - m);
    }
    let denom = wg_sum(ls, lid, sg) + exp(sink - m);
    for (var c = lid; c < d; c += WG) { mnum[c] = 0.0; }
    // Numerators 64 parts at a time: their weights in workgroup memory, dims on invocations.
    for (var i0 = 0u; i0 < np; i0 += WG) {
        var w = 0.0;
        if (i0 + lid < np) { w = exp(parts[(base + i0 + lid) * (d + 2u)] - m); }
        mw[lid] = w;
        workgroupBarrier();
        let n = min(WG, np - i0);
        for (var c = lid; c < d; c += WG) {
            var a = mnum[c];
            for (var j = 0u; j < n; j++) { a += mw[j] * parts[(base + i0 + j) * (d + 2u) + 2u + c]; }
            mnum[c] = a;
        }
        workgroupBarrier();
    }
    for (var c = lid; c < d; c += WG) { out[(t * mp.n_q_heads + h) * d + c] = mnum[c] / denom; }
}
