// RoPE on the fresh q and k of a chunk of tokens, and the KV-cache write.
// cos/sin are precomputed per position on the host (YaRN frequencies, concentration included).
// Pair i of a head is (x[i], x[i + d/2]) in the NeoX style (gpt-oss, qwen) or (x[2i], x[2i+1])
// in the interleaved style (llama as stored in GGUF). Optionally each q and k head is first
// RMS-normalised with its own weights (qwen3). Query heads go to q_out; key/value heads go to
// their cache slot (pos % ring) when the slot lies in this cache segment, as f32 words or as f16
// pairs packed in u32 words (`kv_f16`, pack2x16float: no shader-f16 needed).

struct Params {
    n_tokens: u32, n_q_heads: u32, n_kv_heads: u32, head_dim: u32,
    pos0: u32, ring: u32, seg_start: u32, seg_slots: u32,
    write_q: u32, interleaved: u32, qk_norm: u32, eps: f32,
    kv_f16: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> cos_sin: array<f32>;
@group(0) @binding(3) var<storage, read_write> q_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> k_cache: array<u32>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<u32>;
@group(0) @binding(6) var<storage, read> q_norm: array<f32>;
@group(0) @binding(7) var<storage, read> k_norm: array<f32>;

var<workgroup> red: array<f32, 64>;
// The rotated key head, so that the cache write can pack neighbouring values.
const MAX_D: u32 = 256u;
var<workgroup> k_rot: array<f32, MAX_D>;

// Index within the head of the first and second element of pair i.
fn pair(i: u32) -> vec2<u32> {
    if (p.interleaved != 0u) { return vec2<u32>(2u * i, 2u * i + 1u); }
    return vec2<u32>(i, i + p.head_dim / 2u);
}

// The rotated pair (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) for pair i of token t.
fn rotate(x1: f32, x2: f32, t: u32, i: u32) -> vec2<f32> {
    let cs = (t * (p.head_dim / 2u) + i) * 2u;
    let c = cos_sin[cs];
    let s = cos_sin[cs + 1u];
    return vec2<f32>(x1 * c - x2 * s, x2 * c + x1 * s);
}

// 1 / rms of the head starting at src (1 without q/k norms). Every invocation calls it.
fn inv_rms(src: u32, lid: u32) -> f32 {
    if (p.qk_norm == 0u) { return 1.0; }
    var ss = 0.0;
    for (var i = lid; i < p.head_dim; i += 64u) { ss += qkv[src + i] * qkv[src + i]; }
    red[lid] = ss;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if (lid < s) { red[lid] += red[lid + s]; }
        workgroupBarrier();
    }
    return inverseSqrt(red[0] / f32(p.head_dim) + p.eps);
}

@compute @workgroup_size(64)
fn rope_qk_store(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let t = wid.y;
    let d = p.head_dim;
    let half_d = d / 2u;
    let width = (p.n_q_heads + 2u * p.n_kv_heads) * d;
    let is_q = h < p.n_q_heads;
    // q heads then k heads lead each token's row; the reduction runs in uniform control flow.
    let src = t * width + h * d;
    let scale = inv_rms(src, lid.x);
    if (is_q) {
        if (p.write_q == 0u) { return; }
        let dst = (t * p.n_q_heads + h) * d;
        for (var i = lid.x; i < half_d; i += 64u) {
            let j = pair(i);
            var x1 = qkv[src + j.x] * scale;
            var x2 = qkv[src + j.y] * scale;
            if (p.qk_norm != 0u) { x1 *= q_norm[j.x]; x2 *= q_norm[j.y]; }
            let r = rotate(x1, x2, t, i);
            q_out[dst + j.x] = r.x;
            q_out[dst + j.y] = r.y;
        }
        return;
    }
    let kv = h - p.n_q_heads;
    let slot = (p.pos0 + t) % p.ring;
    if (slot < p.seg_start || slot >= p.seg_start + p.seg_slots) { return; }
    let row = (slot - p.seg_start) * p.n_kv_heads + kv;
    let vsrc = t * width + (p.n_q_heads + p.n_kv_heads + kv) * d;
    for (var i = lid.x; i < half_d; i += 64u) {
        let j = pair(i);
        var x1 = qkv[src + j.x] * scale;
        var x2 = qkv[src + j.y] * scale;
        if (p.qk_norm != 0u) { x1 *= k_norm[j.x]; x2 *= k_norm[j.y]; }
        let r = rotate(x1, x2, t, i);
        k_rot[j.x] = r.x;
        k_rot[j.y] = r.y;
    }
    workgroupBarrier();
    if (p.kv_f16 != 0u) {
        // Word w holds values 2w (low half) and 2w + 1 of the row.
        for (var w = lid.x; w < half_d; w += 64u) {
            k_cache[row * half_d + w] = pack2x16float(vec2<f32>(k_rot[2u * w], k_rot[2u * w + 1u]));
            v_cache[row * half_d + w] = pack2x16float(vec2<f32>(qkv[vsrc + 2u * w], qkv[vsrc + 2u * w + 1u]));
        }
        return;
    }
    for (var i = lid.x; i < d; i += 64u) {
        k_cache[row * d + i] = bitcast<u32>(k_rot[i]);
        v_cache[row * d + i] = bitcast<u32>(qkv[vsrc + i]);
    }
}
