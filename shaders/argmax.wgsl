// Greedy pick: the index of the largest of n logits (lowest index on ties; NaN never wins
// unless every value is NaN, then 0), in two stages so no single workgroup scans the
// vocabulary: `argmax_partial` reduces each CHUNK of logits to (max, first index) with one
// workgroup per chunk, `argmax_final` reduces those few hundred pairs and writes out[0].

struct Params { n: u32, offset: u32, n_parts: u32 }

@group(0) @binding(0) var<uniform> p: Params;
// argmax_partial
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> parts: array<vec2<u32>>; // (key of the max, index)
// argmax_final
@group(0) @binding(1) var<storage, read> parts_in: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const WG: u32 = 256u;
// Logits per workgroup of the first stage: 4 per invocation, read by adjacent invocations at
// adjacent addresses; 197 workgroups for a 201,088-token vocabulary.
const CHUNK: u32 = 1024u;
const NONE: u32 = 0xffffffffu;

var<workgroup> red_k: array<u32, WG>;
var<workgroup> red_i: array<u32, WG>;

// An order-preserving u32 key of a non-NaN float (-0 as +0, so they tie as floats do); every
// key is above 0, the key of "no candidate".
fn key_of(v: f32) -> u32 {
    let b = bitcast<u32>(select(v, 0.0, v == 0.0));
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// Whether (k, i) beats the best so far (bk, bi): larger, or as large with a lower index.
fn better(k: u32, i: u32, bk: u32, bi: u32) -> bool {
    return i != NONE && (bi == NONE || k > bk || (k == bk && i < bi));
}

// The workgroup's best (key, index), valid in invocation 0. Invocations without a candidate
// hold (0, NONE).
fn reduce(lid: u32, sg_lane: u32, sg_id: u32, n_sg: u32, k0: u32, i0: u32) -> vec2<u32> {
    var bk = k0;
    var bi = i0;
//#if subgroups
    let m = subgroupMax(bk);
    let mi = subgroupMin(select(NONE, bi, bk == m));
    if (sg_lane == 0u) {
        red_k[sg_id] = m;
        red_i[sg_id] = mi;
    }
    workgroupBarrier();
    if (lid == 0u) {
        for (var s = 0u; s < n_sg; s++) {
            if (better(red_k[s], red_i[s], bk, bi)) {
                bk = red_k[s];
                bi = red_i[s];
            }
        }
    }
//#else
    red_k[lid] = bk;
    red_i[lid] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s && better(red_k[lid + s], red_i[lid + s], red_k[lid], red_i[lid])) {
            red_k[lid] = red_k[lid + s];
            red_i[lid] = red_i[lid + s];
        }
        workgroupBarrier();
    }
    bk = red_k[0];
    bi = red_i[0];
//#endif
    return vec2<u32>(bk, bi);
}

@compute @workgroup_size(256)
fn argmax_partial(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>,
//#if subgroups
                  @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_id) sg_id: u32,
                  @builtin(num_subgroups) n_sg: u32,
//#endif
) {
    let lid = lid3.x;
    let group = wid.x + wid.y * nwg.x;
    let base = group * CHUNK;
    var bk = 0u;
    var bi = NONE;
    // Increasing indices per invocation: a tie keeps the first.
    for (var j = 0u; j < CHUNK / WG; j++) {
        let i = base + j * WG + lid;
        if (i < p.n) {
            let v = logits[p.offset + i];
            let k = key_of(v);
            if (v == v && (bi == NONE || k > bk)) {
                bk = k;
                bi = i;
            }
        }
    }
//#if subgroups
    let best = reduce(lid, sg_lane, sg_id, n_sg, bk, bi);
//#else
    let best = reduce(lid, 0u, 0u, 1u, bk, bi);
//#endif
    if (lid == 0u && group < p.n_parts) { parts[group] = best; }
}

@compute @workgroup_size(256)
fn argmax_final(@builtin(local_invocation_id) lid3: vec3<u32>,
//#if subgroups
                @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_id) sg_id: u32,
                @builtin(num_subgroups) n_sg: u32,
//#endif
) {
    let lid = lid3.x;
    var bk = 0u;
    var bi = NONE;
    for (var g = lid; g < p.n_parts; g += WG) {
        let c = parts_in[g];
        if (better(c.x, c.y, bk, bi)) {
            bk = c.x;
            bi = c.y;
        }
    }
//#if subgroups
    let best = reduce(lid, sg_lane, sg_id, n_sg, bk, bi);
//#else
    let best = reduce(lid, 0u, 0u, 1u, bk, bi);
//#endif
    if (lid == 0u) { out[0] = select(best.y, 0u, best.y == NONE); }
}
