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
// *_grouped (prefill): one workgroup per (expert, rows) serves every token routed to that
//   expert, so each expert's weights are read from memory once per pass instead of once per token.

struct Params {
    n_tokens: u32, k: u32, rows_per_expert: u32, cols: u32,
    row_start: u32, row_end: u32, limit: f32, alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> expert_ids: array<u32>;
@group(0) @binding(3) var<storage, read> blocks: array<u32>;
@group(0) @binding(4) var<storage, read> scales: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read> slot_weights: array<f32>;

const WG: u32 = 64u;
const ROWS: u32 = 4u;
var<workgroup> expert_of_group: u32;
var<workgroup> red: array<f32, 256>; // ROWS * WG

fn scale_of(i: u32) -> f32 {
    let s = (scales[i / 4u] >> (8u * (i % 4u))) & 0xffu;
    return ldexp(1.0, i32(s) - 127);
}

// Four FP4 E2M1 nibbles to f32 with integer ops only (no table in private memory):
// e > 0 gives 2^(e-1) * (1 + m/2), e = 0 gives m/2, bit 3 is the sign.
fn fp4x4(nib: vec4<u32>) -> vec4<f32> {
    let e = (nib >> vec4<u32>(1u)) & vec4<u32>(3u);
    let m = nib & vec4<u32>(1u);
    let normal = ((e + vec4<u32>(126u)) << vec4<u32>(23u)) | (m << vec4<u32>(22u));
    let small = m * 0x3f000000u;
    let sign = (nib & vec4<u32>(8u)) << vec4<u32>(28u);
    return bitcast<vec4<f32>>(select(small, normal, e != vec4<u32>(0u)) | sign);
}

const LO_SHIFTS: vec4<u32> = vec4<u32>(0u, 4u, 8u, 12u);
const HI_SHIFTS: vec4<u32> = vec4<u32>(16u, 20u, 24u, 28u);

// Dot products of ROWS consecutive flattened rows starting at `frow` with the input vector
// (which starts at vec4 index `in_base`), reduced across the workgroup; the result for row j is
// left in red[j * WG]. Each invocation takes whole 32-value blocks: one 16-byte load of
// weights per row and block.
fn dot_rows(lid: u32, frow: u32, in_base: u32) {
    let nb = p.cols / 32u;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var b = lid; b < nb; b += WG) {
        var xv: array<vec4<f32>, 8>;
        for (var i = 0u; i < 8u; i++) { xv[i] = input[in_base + 8u * b + i]; }
        for (var j = 0u; j < ROWS; j++) {
            let r = frow + j;
            if (r >= p.row_start && r < p.row_end) {
                let blk = (r - p.row_start) * nb + b;
                var sum = 0.0;
                for (var wd = 0u; wd < 4u; wd++) {
                    let word = blocks[blk * 4u + wd];
                    sum += dot(fp4x4((vec4<u32>(word) >> LO_SHIFTS) & vec4<u32>(15u)), xv[2u * wd]);
                    sum += dot(fp4x4((vec4<u32>(word) >> HI_SHIFTS) & vec4<u32>(15u)), xv[2u * wd + 1u]);
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
    dot_rows(lid.x, frow, t * p.cols / 4u);
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
    dot_rows(lid.x, frow, (t * p.k + slot) * p.cols / 4u);
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
        dot_rows(lid.x, frow, (t * p.k + slot) * p.cols / 4u);
        if (lid.x < ROWS && row0 + lid.x < p.rows_per_expert) {
            total += slot_weights[t * p.k + slot] * (red[lid.x * WG] + bias[frow + lid.x - p.row_start]);
        }
        workgroupBarrier();
    }
    if (lid.x < ROWS && row0 + lid.x < p.rows_per_expert) {
        out[t * p.rows_per_expert + row0 + lid.x] += total;
    }
}

// Tokens per round of a grouped workgroup's list of routed (token, slot) pairs.
const LIST: u32 = 1024u;
var<workgroup> match_count: atomic<u32>;
var<workgroup> n_matches: u32;
var<workgroup> matches: array<u32, LIST>; // t * k + slot

// Collects the (token, slot) pairs of tokens [t0, t0 + LIST) routed to expert `e` (a token
// picks an expert at most once); returns how many, uniformly.
fn collect(lid: u32, e: u32, t0: u32) -> u32 {
    if (lid == 0u) { atomicStore(&match_count, 0u); }
    workgroupBarrier();
    let end = min(p.n_tokens, t0 + LIST) * p.k;
    for (var i = t0 * p.k + lid; i < end; i += WG) {
        if (expert_ids[i] == e) {
            matches[atomicAdd(&match_count, 1u)] = i;
        }
    }
    workgroupBarrier();
    if (lid == 0u) { n_matches = atomicLoad(&match_count); }
    return workgroupUniformLoad(&n_matches);
}

@compute @workgroup_size(64)
fn expert_gate_up_swiglu_grouped(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let e = wid.y;
    let row0 = wid.x * ROWS;
    let frow = e * p.rows_per_expert + row0;
    if (row0 >= p.rows_per_expert || frow + ROWS <= p.row_start || frow >= p.row_end) { return; }
    let half_rows = p.rows_per_expert / 2u;
    for (var t0 = 0u; t0 < p.n_tokens; t0 += LIST) {
        let n = collect(lid.x, e, t0);
        for (var m = 0u; m < n; m++) {
            let ts = matches[m];
            dot_rows(lid.x, frow, (ts / p.k) * p.cols / 4u);
            if (lid.x < 2u) {
                let r = frow + 2u * lid.x;
                let pair = row0 / 2u + lid.x;
                if (pair < half_rows && in_slice(r)) {
                    let g = min(red[(2u * lid.x) * WG] + bias[r - p.row_start], p.limit);
                    let u = clamp(red[(2u * lid.x + 1u) * WG] + bias[r + 1u - p.row_start], -p.limit, p.limit);
                    let glu = g / (1.0 + exp(-p.alpha * g));
                    out[ts * half_rows + pair] = glu * (u + 1.0);
                }
            }
            workgroupBarrier();
        }
    }
}

@compute @workgroup_size(64)
fn expert_down_grouped(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let e = wid.y;
    let row0 = wid.x * ROWS;
    let frow = e * p.rows_per_expert + row0;
    if (row0 >= p.rows_per_expert || frow + ROWS <= p.row_start || frow >= p.row_end) { return; }
    for (var t0 = 0u; t0 < p.n_tokens; t0 += LIST) {
        let n = collect(lid.x, e, t0);
        for (var m = 0u; m < n; m++) {
            let ts = matches[m];
            dot_rows(lid.x, frow, ts * p.cols / 4u);
            if (lid.x < ROWS) {
                let r = frow + lid.x;
                if (row0 + lid.x < p.rows_per_expert && in_slice(r)) {
                    out[ts * p.rows_per_expert + row0 + lid.x] = red[lid.x * WG] + bias[r - p.row_start];
                }
            }
            workgroupBarrier();
        }
    }
}
