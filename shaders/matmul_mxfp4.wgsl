// MXFP4 expert mat-vecs for the MoE MLP. Each expert matrix is row-major over the flattened
// (expert, row) index; a row is cols/32 blocks of 16 bytes (32 FP4 E2M1 values, low nibble =
// even element) with one E8M0 scale byte per block (value 2^(s-127)). Weights are decoded in
// registers. The expert of each (token, slot) is read from the router's output on the GPU; one
// dispatch covers one slice [row_start, row_end) of the flattened rows.
//
// expert_gate_up_swiglu: rows interleave gate (even) and up (odd); writes the clamped SwiGLU
//   a = min(g, limit) * sigmoid(alpha * min(g, limit)) * (clamp(u, -limit, limit) + 1).
// expert_down: plain rows with bias, one output vector per (token, slot).
// expert_down_accumulate: the same rows for every slot of a token, weighted by the router and
//   added into the residual (`out`), when all experts sit in one binding.

struct Params {
    n_tokens: u32, k: u32, rows_per_expert: u32, cols: u32,
    row_start: u32, row_end: u32, limit: f32, alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> expert_ids: array<u32>;
@group(0) @binding(3) var<storage, read> blocks: array<u32>;
@group(0) @binding(4) var<storage, read> scales: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read> slot_weights: array<f32>;

const WG: u32 = 64u;
const ROWS: u32 = 4u;
var<private> FP4: array<f32, 16> = array<f32, 16>(
    0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0);
var<workgroup> expert_of_group: u32;
var<workgroup> red: array<f32, 256>; // ROWS * WG

fn scale_of(i: u32) -> f32 {
    let s = (scales[i / 4u] >> (8u * (i % 4u))) & 0xffu;
    return ldexp(1.0, i32(s) - 127);
}

// Dot products of ROWS consecutive flattened rows starting at `frow` with the input vector,
// reduced across the workgroup; the result for row j is left in red[j * WG].
fn dot_rows(lid: u32, frow: u32, in_base: u32) {
    let nb = p.cols / 32u;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var b = lid; b < nb; b += WG) {
        var xv: array<f32, 32>;
        for (var i = 0u; i < 32u; i++) { xv[i] = input[in_base + 32u * b + i]; }
        for (var j = 0u; j < ROWS; j++) {
            let r = frow + j;
            if (r >= p.row_start && r < p.row_end) {
                let blk = (r - p.row_start) * nb + b;
                var sum = 0.0;
                for (var wd = 0u; wd < 4u; wd++) {
                    let word = blocks[blk * 4u + wd];
                    for (var n = 0u; n < 8u; n++) {
                        sum += FP4[(word >> (4u * n)) & 15u] * xv[8u * wd + n];
                    }
                }
                acc[j] += sum * scale_of(blk);
            }
        }
    }
    for (var j = 0u; j < ROWS; j++) { red[j * WG + lid] = acc[j]; }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            for (var j = 0u; j < ROWS; j++) { red[j * WG + lid] += red[j * WG + lid + s]; }
        }
        workgroupBarrier();
    }
}

fn in_slice(r: u32) -> bool { return r >= p.row_start && r < p.row_end; }

@compute @workgroup_size(64)
fn expert_gate_up_swiglu(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let slot = wid.y;
    let t = wid.z;
    if (lid.x == 0u) { expert_of_group = expert_ids[t * p.k + slot]; }
    let e = workgroupUniformLoad(&expert_of_group);
    let row0 = wid.x * ROWS; // row within the expert: gate/up pairs (row0, row0+1), (row0+2, row0+3)
    let frow = e * p.rows_per_expert + row0;
    if (row0 >= p.rows_per_expert || frow + ROWS <= p.row_start || frow >= p.row_end) { return; }
    dot_rows(lid.x, frow, t * p.cols);
    let half_rows = p.rows_per_expert / 2u;
    if (lid.x < 2u) {
        let r = frow + 2u * lid.x;
        let pair = row0 / 2u + lid.x;
        if (pair < half_rows && in_slice(r)) {
            let g = min(red[(2u * lid.x) * WG] + bias[r - p.row_start], p.limit);
            let u = clamp(red[(2u * lid.x + 1u) * WG] + bias[r + 1u - p.row_start], -p.limit, p.limit);
            let glu = g / (1.0 + exp(-p.alpha * g));
            out[(t * p.k + slot) * half_rows + pair] = glu * (u + 1.0);
        }
    }
}

@compute @workgroup_size(64)
fn expert_down(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let slot = wid.y;
    let t = wid.z;
    if (lid.x == 0u) { expert_of_group = expert_ids[t * p.k + slot]; }
    let e = workgroupUniformLoad(&expert_of_group);
    let row0 = wid.x * ROWS;
    let frow = e * p.rows_per_expert + row0;
    if (row0 >= p.rows_per_expert || frow + ROWS <= p.row_start || frow >= p.row_end) { return; }
    dot_rows(lid.x, frow, (t * p.k + slot) * p.cols);
    if (lid.x < ROWS) {
        let r = frow + lid.x;
        if (row0 + lid.x < p.rows_per_expert && in_slice(r)) {
            out[(t * p.k + slot) * p.rows_per_expert + row0 + lid.x] = red[lid.x * WG] + bias[r - p.row_start];
        }
    }
}

@compute @workgroup_size(64)
fn expert_down_accumulate(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = wid.y;
    let row0 = wid.x * ROWS;
    if (row0 >= p.rows_per_expert) { return; }
    var total = 0.0;
    for (var slot = 0u; slot < p.k; slot++) {
        if (lid.x == 0u) { expert_of_group = expert_ids[t * p.k + slot]; }
        let e = workgroupUniformLoad(&expert_of_group);
        let frow = e * p.rows_per_expert + row0;
        dot_rows(lid.x, frow, (t * p.k + slot) * p.cols);
        if (lid.x < ROWS && row0 + lid.x < p.rows_per_expert) {
            total += slot_weights[t * p.k + slot] * (red[lid.x * WG] + bias[frow + lid.x - p.row_start]);
        }
        workgroupBarrier();
    }
    if (lid.x < ROWS && row0 + lid.x < p.rows_per_expert) {
        out[t * p.rows_per_expert + row0 + lid.x] += total;
    }
}
