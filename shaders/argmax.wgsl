// Greedy pick: index of the largest of n logits (lowest index on ties), written to out[0].

struct Params { n: u32, offset: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const WG: u32 = 256u;
var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

@compute @workgroup_size(256)
fn argmax(@builtin(local_invocation_id) lid: vec3<u32>) {
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    for (var i = lid.x; i < p.n; i += WG) {
        let v = logits[p.offset + i];
        if (v > bv || bi == 0xffffffffu) { bv = v; bi = i; }
    }
    best_v[lid.x] = bv;
    best_i[lid.x] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid.x < s) {
            let ov = best_v[lid.x + s];
            let oi = best_i[lid.x + s];
            if (oi != 0xffffffffu && (best_i[lid.x] == 0xffffffffu || ov > best_v[lid.x] || (ov == best_v[lid.x] && oi < best_i[lid.x]))) {
                best_v[lid.x] = ov;
                best_i[lid.x] = oi;
            }
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) { out[0] = best_i[0]; }
}
