// RMSNorm over the last dimension, one workgroup per token, in f32:
// out = x / sqrt(mean(x^2) + eps) * weight.

struct Params { n_tokens: u32, hidden: u32, eps: f32, x_offset: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 128u;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(128)
fn rmsnorm(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = wid.x;
    let base = p.x_offset + t * p.hidden;
    var ss = 0.0;
    for (var i = lid.x; i < p.hidden; i += WG) {
        let v = x[base + i];
        ss += v * v;
    }
    partial[lid.x] = ss;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid.x < s) { partial[lid.x] += partial[lid.x + s]; }
        workgroupBarrier();
    }
    let scale = 1.0 / sqrt(partial[0] / f32(p.hidden) + p.eps);
    for (var i = lid.x; i < p.hidden; i += WG) {
        out[t * p.hidden + i] = x[base + i] * scale * weight[i];
    }
}
