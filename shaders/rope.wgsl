// RoPE (NeoX half-split) on the fresh q and k of a chunk of tokens, and the KV-cache write.
// cos/sin are precomputed per position on the host (YaRN frequencies, concentration included).
// Query heads go to q_out; key/value heads go to their cache slot (pos % ring) when the slot
// lies in this cache segment.

struct Params {
    n_tokens: u32, n_q_heads: u32, n_kv_heads: u32, head_dim: u32,
    pos0: u32, ring: u32, seg_start: u32, seg_slots: u32,
    write_q: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> cos_sin: array<f32>;
@group(0) @binding(3) var<storage, read_write> q_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<f32>;

// The rotated pair (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) for pair i of token t.
fn rotate(x1: f32, x2: f32, t: u32, i: u32) -> vec2<f32> {
    let cs = (t * (p.head_dim / 2u) + i) * 2u;
    let c = cos_sin[cs];
    let s = cos_sin[cs + 1u];
    return vec2<f32>(x1 * c - x2 * s, x2 * c + x1 * s);
}

@compute @workgroup_size(64)
fn rope_qk_store(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let t = wid.y;
    let d = p.head_dim;
    let half_d = d / 2u;
    let width = (p.n_q_heads + 2u * p.n_kv_heads) * d;
    if (h < p.n_q_heads) {
        if (p.write_q == 0u) { return; }
        let src = t * width + h * d;
        let dst = (t * p.n_q_heads + h) * d;
        for (var i = lid.x; i < half_d; i += 64u) {
            let r = rotate(qkv[src + i], qkv[src + i + half_d], t, i);
            q_out[dst + i] = r.x;
            q_out[dst + i + half_d] = r.y;
        }
        return;
    }
    let kv = h - p.n_q_heads;
    let slot = (p.pos0 + t) % p.ring;
    if (slot < p.seg_start || slot >= p.seg_start + p.seg_slots) { return; }
    let dst = ((slot - p.seg_start) * p.n_kv_heads + kv) * d;
    let ksrc = t * width + (p.n_q_heads + kv) * d;
    let vsrc = t * width + (p.n_q_heads + p.n_kv_heads + kv) * d;
    for (var i = lid.x; i < half_d; i += 64u) {
        let r = rotate(qkv[ksrc + i], qkv[ksrc + i + half_d], t, i);
        k_cache[dst + i] = r.x;
        k_cache[dst + i + half_d] = r.y;
        v_cache[dst + i] = qkv[vsrc + i];
        v_cache[dst + i + half_d] = qkv[vsrc + i + half_d];
    }
}
