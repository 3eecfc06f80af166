// MXFP4 expert mat-vecs and mat-mats for the MoE MLP. Each expert matrix is row-major over the
// flattened (expert, row) index; a row is cols/32 blocks of 16 bytes (32 FP4 E2M1 values, low
// nibble = even element) with one E8M0 scale byte per block (value 2^(s-127)). One dispatch
// covers one slice [row_start, row_end) of the flattened rows (experts split over bindings).
//
// Decode (a few tokens, one (token, slot) per workgroup column):
//   expert_gate_up_swiglu: rows interleave gate (even) and up (odd); writes the clamped SwiGLU
//     a = min(g, limit) * sigmoid(alpha * min(g, limit)) * (clamp(u, -limit, limit) + 1).
//     With `route_from_logits` it first takes the top-k of the router logits itself (and the
//     first row tile records ids and weights for the down projection): no dispatch of its own.
//   expert_down: plain rows with bias, one output vector per (token, slot).
//   expert_down_accumulate: the same rows for all k slots of a token in one pass (each block's
//     loads of all slots in flight together), weighted by the router and added into the
//     residual (`out`); one reduction for all slots.
// Prefill (`*_grouped`): one workgroup per (expert, 32-row tile) walks only the tokens routed
//   to its expert (lists built once per layer by `expert_count`), 64 at a time: each weight tile
//   is decoded once into workgroup memory and used by 4x4 register tiles for all of them.
//
// FP4 decode (`fp4_pairs`): an E2M1 nibble s|e1 e0|m becomes the high byte of an f16 with the
// sign at bit 15 and e1 e0 m at bits 11..9, i.e. the same value times 2^-14 (e = 0 lands on the
// f16 subnormals, which f16 -> f32 conversion keeps exactly). Scales are applied once per block,
// the 2^14 once per row.

struct Params {
    n_tokens: u32, k: u32, rows_per_expert: u32, cols: u32,
    row_start: u32, row_end: u32, limit: f32, alpha: f32,
    n_experts: u32, route_from_logits: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> expert_ids: array<u32>;
@group(0) @binding(3) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> scales: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read_write> slot_weights: array<f32>;
@group(0) @binding(8) var<storage, read> router_logits: array<f32>;

// 2^14: the f16 decode yields FP4 values times 2^-14.
const FP4_UNSCALE: f32 = 16384.0;

// The scale of block `i` (an index into `blocks`) as 2^(s-127); s = 0 (2^-127) reads as 0.
fn scale_of(i: u32) -> f32 {
    return bitcast<f32>(((scales[i >> 2u] >> ((i & 3u) << 3u)) & 0xffu) << 23u);
}

// The 8 FP4 values of one u32 (elements 0..7 of the word) as four f16 pairs, high bytes only:
// (e0, e4), (e2, e6), (e1, e5), (e3, e7). Integer ops: 4 + 4 to move each nibble's sign to bit 7
// and its magnitude to bits 3..1 of a byte (shift, mask, +0x70 carries the sign up, mask), then
// 1 + 2 + 1 + 2 to place bytes in the high halves: 14 per 8 weights = 1.75 per weight.
fn fp4_pairs(w: u32) -> array<u32, 4> {
    let ev = (((w << 1u) & 0x1e1e1e1eu) + 0x70707070u) & 0x8e8e8e8eu;
    let od = (((w >> 3u) & 0x1e1e1e1eu) + 0x70707070u) & 0x8e8e8e8eu;
    return array<u32, 4>((ev << 8u) & 0xff00ff00u, ev & 0xff00ff00u, (od << 8u) & 0xff00ff00u, od & 0xff00ff00u);
}

// Dot product of one 32-value block (times 2^-14, unscaled) with 32 inputs x[0..8] (vec4s).
// Per weight: 1.75 integer ops, one f16 -> f32 conversion, one multiply-add.
fn block_dot(wb: vec4<u32>, x: array<vec4<f32>, 8>) -> f32 {
    var s = 0.0;
    for (var q = 0u; q < 4u; q++) {
        let h = fp4_pairs(wb[q]);
        let xa = x[2u * q];
        let xb = x[2u * q + 1u];
        let w04 = unpack2x16float(h[0]);
        let w26 = unpack2x16float(h[1]);
        let w15 = unpack2x16float(h[2]);
        let w37 = unpack2x16float(h[3]);
        s += dot(vec4<f32>(w04, w26), vec4<f32>(xa.x, xb.x, xa.z, xb.z));
        s += dot(vec4<f32>(w15, w37), vec4<f32>(xa.y, xb.y, xa.w, xb.w));
    }
    return s;
}

fn in_slice(r: u32) -> bool { return r >= p.row_start && r < p.row_end; }

// ---------------------------------------------------------------------------------------------
// Decode: DWG invocations share DROWS rows; invocation i takes blocks i, i + DWG, ... of every row
// (adjacent invocations read adjacent 16-byte blocks), keeps that block's 32 inputs in registers
// for all of them, and the DROWS partial sums are reduced once at the end.

const DWG: u32 = 32u;
const DROWS: u32 = 16u;
// Rows per workgroup of expert_down_accumulate (times k slots each).
const AROWS: u32 = 4u;

var<workgroup> red: array<f32, 512>; // DROWS * DWG
var<workgroup> row_sum: array<f32, 16>;

// Sums acc[r] over the workgroup for each of the DROWS rows into row_sum[r].
//#if subgroups
fn reduce_rows(lid: u32, acc: array<f32, 16>, sg_lane: u32, sg_id: u32, n_sg: u32) {
    for (var r = 0u; r < DROWS; r++) {
        let v = subgroupAdd(acc[r]);
        if (sg_lane == 0u) { red[sg_id * DROWS + r] = v; }
    }
    workgroupBarrier();
    if (lid < DROWS) {
        var s = 0.0;
        for (var g = 0u; g < n_sg; g++) { s += red[g * DROWS + lid]; }
        row_sum[lid] = s;
    }
    workgroupBarrier();
}
//#else
fn reduce_rows(lid: u32, acc: array<f32, 16>) {
    for (var r = 0u; r < DROWS; r++) { red[r * DWG + lid] = acc[r]; }
    workgroupBarrier();
    // Invocation i sums half of row i / 2, then DROWS invocations add the halves.
    let r = lid / 2u;
    let q = lid % 2u;
    var s = 0.0;
    for (var j = 0u; j < 16u; j++) { s += red[r * DWG + q * 16u + j]; }
    workgroupBarrier();
    red[lid] = s;
    workgroupBarrier();
    if (lid < DROWS) { row_sum[lid] = red[2u * lid] + red[2u * lid + 1u]; }
    workgroupBarrier();
}
//#endif

// acc[r] = 2^-14 * (row frow + r) . input[in_base ..] for the rows r in [lo, hi) (uniform).
fn dot_rows(lid: u32, frow: u32, lo: u32, hi: u32, in_base: u32) -> array<f32, 16> {
    let nb = p.cols / 32u;
    var acc: array<f32, 16>;
    let blk0 = (frow - p.row_start) * nb;
    for (var b = lid; b < nb; b += DWG) {
        var x: array<vec4<f32>, 8>;
        for (var i = 0u; i < 8u; i++) { x[i] = input[in_base + 8u * b + i]; }
        for (var r = 0u; r < DROWS; r++) {
            if (r >= lo && r < hi) {
                let blk = blk0 + r * nb + b;
                acc[r] += block_dot(blocks[blk], x) * scale_of(blk);
            }
        }
    }
    return acc;
}

// Rows [lo, hi) of the DROWS-row tile at flattened row `frow` that exist and lie in this slice.
fn tile_bounds(frow: u32, row0: u32) -> vec2<u32> {
    let lo = select(0u, p.row_start - frow, p.row_start > frow);
    let hi = min(min(DROWS, p.rows_per_expert - row0), select(0u, p.row_end - frow, p.row_end > frow));
    return vec2<u32>(lo, max(lo, hi));
}

var<workgroup> expert_of_group: u32;
var<workgroup> route_logit: array<f32, 256>;
var<workgroup> top_id: array<u32, 16>;
var<workgroup> top_val: array<f32, 16>;

// Top-k of token t's router logits (ties to the lower expert), found in parallel: an expert's
// rank is the number of experts that beat it. Returns the expert of `slot`; the workgroup with
// `record` writes that slot's id and softmax weight.
fn route_slot(lid: u32, t: u32, slot: u32, record: bool) -> u32 {
    let ne = p.n_experts;
    for (var e = lid; e < ne; e += DWG) { route_logit[e] = router_logits[t * ne + e]; }
    workgroupBarrier();
    for (var e = lid; e < ne; e += DWG) {
        let v = route_logit[e];
        var rank = 0u;
        for (var o = 0u; o < ne; o++) {
            let u = route_logit[o];
            rank += u32(u > v || (u == v && o < e));
        }
        if (rank < p.k) { top_id[rank] = e; top_val[rank] = v; }
    }
    workgroupBarrier();
    if (record && lid == 0u) {
        var sum = 0.0;
        for (var j = 0u; j < p.k; j++) { sum += exp(top_val[j] - top_val[0]); }
        expert_ids[t * p.k + slot] = top_id[slot];
        slot_weights[t * p.k + slot] = exp(top_val[slot] - top_val[0]) / sum;
    }
    return top_id[slot];
}

@compute @workgroup_size(32)
fn expert_gate_up_swiglu(
    @builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
//#if subgroups
    @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_id) sg_id: u32, @builtin(num_subgroups) n_sg: u32,
//#endif
) {
    let slot = wid.y;
    let t = wid.z;
    if (p.route_from_logits != 0u) {
        let e = route_slot(lid, t, slot, wid.x == 0u);
        if (lid == 0u) { expert_of_group = e; }
    } else if (lid == 0u) {
        expert_of_group = expert_ids[t * p.k + slot];
    }
    let e = workgroupUniformLoad(&expert_of_group);
    let row0 = wid.x * DROWS; // row within the expert: gate/up pairs (row0 + 2j, row0 + 2j + 1)
    let frow = e * p.rows_per_expert + row0;
    let bounds = tile_bounds(frow, row0);
    if (row0 >= p.rows_per_expert || bounds.x >= bounds.y) { return; }
    let acc = dot_rows(lid, frow, bounds.x, bounds.y, t * p.cols / 4u);
//#if subgroups
    reduce_rows(lid, acc, sg_lane, sg_id, n_sg);
//#else
    reduce_rows(lid, acc);
//#endif
    // Slices hold whole gate/up pairs, so a pair is in range when its gate row is.
    let j = 2u * lid;
    if (lid < DROWS / 2u && j >= bounds.x && j < bounds.y) {
        let r = frow + j - p.row_start;
        let g = min(row_sum[j] * FP4_UNSCALE + bias[r], p.limit);
        let u = clamp(row_sum[j + 1u] * FP4_UNSCALE + bias[r + 1u], -p.limit, p.limit);
        let glu = g / (1.0 + exp(-p.alpha * g));
        out[(t * p.k + slot) * (p.rows_per_expert / 2u) + row0 / 2u + lid] = glu * (u + 1.0);
    }
}

@compute @workgroup_size(32)
fn expert_down(
    @builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
//#if subgroups
    @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_id) sg_id: u32, @builtin(num_subgroups) n_sg: u32,
//#endif
) {
    let slot = wid.y;
    let t = wid.z;
    if (lid == 0u) { expert_of_group = expert_ids[t * p.k + slot]; }
    let e = workgroupUniformLoad(&expert_of_group);
    let row0 = wid.x * DROWS;
    let frow = e * p.rows_per_expert + row0;
    let bounds = tile_bounds(frow, row0);
    if (row0 >= p.rows_per_expert || bounds.x >= bounds.y) { return; }
    let acc = dot_rows(lid, frow, bounds.x, bounds.y, (t * p.k + slot) * p.cols / 4u);
//#if subgroups
    reduce_rows(lid, acc, sg_lane, sg_id, n_sg);
//#else
    reduce_rows(lid, acc);
//#endif
    if (lid >= bounds.x && lid < bounds.y) {
        out[(t * p.k + slot) * p.rows_per_expert + row0 + lid] = row_sum[lid] * FP4_UNSCALE + bias[frow + lid - p.row_start];
    }
}

var<workgroup> slot_expert: array<u32, 16>;
var<workgroup> slot_weight: array<f32, 16>;
var<workgroup> wide_red: array<f32, 128>; // AROWS * DWG
var<workgroup> acc_sum: array<f32, 4>;

// reduce_rows for the AROWS rows of expert_down_accumulate.
//#if subgroups
fn reduce_rows_wide(lid: u32, acc: array<f32, 4>, sg_lane: u32, sg_id: u32, n_sg: u32) {
    for (var r = 0u; r < AROWS; r++) {
        let v = subgroupAdd(acc[r]);
        if (sg_lane == 0u) { wide_red[sg_id * AROWS + r] = v; }
    }
    workgroupBarrier();
    if (lid < AROWS) {
        var s = 0.0;
        for (var g = 0u; g < n_sg; g++) { s += wide_red[g * AROWS + lid]; }
        acc_sum[lid] = s;
    }
    workgroupBarrier();
}
//#else
fn reduce_rows_wide(lid: u32, acc: array<f32, 4>) {
    for (var r = 0u; r < AROWS; r++) { wide_red[r * DWG + lid] = acc[r]; }
    workgroupBarrier();
    // Invocation i sums an eighth of row i / 8, then AROWS invocations add the eighths.
    let r = lid / 8u;
    let q = lid % 8u;
    var s = 0.0;
    for (var j = 0u; j < 4u; j++) { s += wide_red[r * DWG + q * 4u + j]; }
    workgroupBarrier();
    wide_red[lid] = s;
    workgroupBarrier();
    if (lid < AROWS) {
        var t = 0.0;
        for (var j = 0u; j < 8u; j++) { t += wide_red[8u * lid + j]; }
        acc_sum[lid] = t;
    }
    workgroupBarrier();
}
//#endif

// residual[t, row0 .. row0 + AROWS] += sum over slots of weight * (W[e_slot] . a[t, slot] + b):
// every invocation walks its blocks for all slots and rows (the expert of a slot is uniform,
// so its addressing is too), each slot's sums weighted as they are made, and one reduction
// serves all slots. With experts split over bindings, each slice's dispatch adds the
// (slot, row) pairs that lie in it.
@compute @workgroup_size(32)
fn expert_down_accumulate(
    @builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
//#if subgroups
    @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_id) sg_id: u32, @builtin(num_subgroups) n_sg: u32,
//#endif
) {
    let t = wid.y;
    let row0 = wid.x * AROWS;
    if (row0 >= p.rows_per_expert) { return; }
    if (lid < p.k) {
        slot_expert[lid] = expert_ids[t * p.k + lid];
        slot_weight[lid] = slot_weights[t * p.k + lid];
    }
    workgroupBarrier();
    let nb = p.cols / 32u;
    let n_rows = min(AROWS, p.rows_per_expert - row0);
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var b = lid; b < nb; b += DWG) {
        for (var s = 0u; s < p.k; s++) {
            let frow = slot_expert[s] * p.rows_per_expert + row0;
            let sw = slot_weight[s];
            let in_base = ((t * p.k + s) * p.cols) / 4u + 8u * b;
            var x: array<vec4<f32>, 8>;
            for (var i = 0u; i < 8u; i++) { x[i] = input[in_base + i]; }
            for (var r = 0u; r < AROWS; r++) {
                if (r < n_rows && in_slice(frow + r)) {
                    let blk = (frow + r - p.row_start) * nb + b;
                    acc[r] += block_dot(blocks[blk], x) * (scale_of(blk) * sw);
                }
            }
        }
    }
//#if subgroups
    reduce_rows_wide(lid, acc, sg_lane, sg_id, n_sg);
//#else
    reduce_rows_wide(lid, acc);
//#endif
    if (lid < n_rows) {
        var total = acc_sum[lid] * FP4_UNSCALE;
        var any = false;
        for (var s = 0u; s < p.k; s++) {
            let r = slot_expert[s] * p.rows_per_expert + row0 + lid;
            if (in_slice(r)) {
                total += slot_weight[s] * bias[r - p.row_start];
                any = true;
            }
        }
        if (any) { out[t * p.rows_per_expert + row0 + lid] += total; }
    }
}

// ---------------------------------------------------------------------------------------------
// Prefill, grouped by expert. `expert_ids` here holds the lists of `expert_count`: offsets
// [n_experts + 1], then the (token * k + slot) entries sorted by expert.

const GWG: u32 = 128u;
const GROWS: u32 = 32u;  // rows per workgroup
const GTOK: u32 = 64u;   // routed tokens per round
// Weight tile of one 32-value block column, transposed: [k][row], 4 rows per vec4.
var<workgroup> wtile: array<vec4<f32>, 256>;  // 32 * GROWS / 4
// Input tile, transposed: [k][token], 4 tokens per vec4.
var<workgroup> xtile: array<vec4<f32>, 512>;  // 32 * GTOK / 4
var<workgroup> tok: array<u32, 64>;           // GTOK entries (token * k + slot)

// acc[i][j] = row (4 * (lid % 8) + i) . input of routed entry (4 * (lid / 8) + j), for the
// `count` entries tok[0..count] (input row = entry / k for gate_up, the entry itself for down).
// Per block column: 128 invocations decode 8 weights each (one u32 of a row's block, 1.75
// integer ops per weight) and load 4 input vec4s each; then every invocation does 32 steps of
// 2 vec4 reads and 16 multiply-adds (a 4x4 register tile).
fn tile_matmul(lid: u32, frow: u32, count: u32, per_token: bool) -> array<vec4<f32>, 4> {
    let nb = p.cols / 32u;
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    // The weight word this invocation decodes: row lid / 4, word lid % 4 of the block.
    let wrow = lid / 4u;
    let wq = lid % 4u;
    let wr = frow + wrow;
    let w_ok = wrow < GROWS && wr >= p.row_start && wr < p.row_end && wrow + (frow % p.rows_per_expert) < p.rows_per_expert;
    let tr = lid % 8u;
    let tc = lid / 8u;
    for (var kb = 0u; kb < nb; kb++) {
        // Weights: 8 values of row wrow, elements 8 * wq .. 8 * wq + 7 of the block.
        var wv = array<f32, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        if (w_ok) {
            let blk = (wr - p.row_start) * nb + kb;
            let sc = scale_of(blk) * FP4_UNSCALE;
            let h = fp4_pairs(blocks[blk][wq]);
            let w04 = unpack2x16float(h[0]) * sc;
            let w26 = unpack2x16float(h[1]) * sc;
            let w15 = unpack2x16float(h[2]) * sc;
            let w37 = unpack2x16float(h[3]) * sc;
            wv = array<f32, 8>(w04.x, w15.x, w26.x, w37.x, w04.y, w15.y, w26.y, w37.y);
        }
        for (var i = 0u; i < 8u; i++) {
            let kk = 8u * wq + i;
            wtile[kk * (GROWS / 4u) + wrow / 4u][wrow % 4u] = wv[i];
        }
        // Inputs: entry ti's vec4 q (values 4q .. 4q + 3 of the block column).
        for (var j = 0u; j < 4u; j++) {
            let v = lid + GWG * j;
            let ti = v / 8u;
            let q = v % 8u;
            var xv = vec4<f32>(0.0);
            if (ti < count) {
                let entry = tok[ti];
                let row = select(entry, entry / p.k, per_token);
                xv = input[row * (p.cols / 4u) + 8u * kb + q];
            }
            for (var c = 0u; c < 4u; c++) {
                xtile[(4u * q + c) * (GTOK / 4u) + ti / 4u][ti % 4u] = xv[c];
            }
        }
        workgroupBarrier();
        // Columns of tokens past `count` skip the math (whole subgroups when few tokens came).
        for (var kk = 0u; kk < select(0u, 32u, 4u * tc < count); kk++) {
            let w = wtile[kk * (GROWS / 4u) + tr];
            let x = xtile[kk * (GTOK / 4u) + tc];
            acc[0] += w.x * x;
            acc[1] += w.y * x;
            acc[2] += w.z * x;
            acc[3] += w.w * x;
        }
        workgroupBarrier();
    }
    return acc;
}

var<workgroup> group_range: vec2<u32>;

// The grouped kernels' common start: this workgroup's expert's entry range, uniformly, or
// (0, 0) when its row tile lies outside the slice.
fn group_entries(lid: u32, e: u32, frow: u32) -> vec2<u32> {
    if (lid == 0u) {
        var range = vec2<u32>(0u, 0u);
        if (frow < p.row_end && frow + GROWS > p.row_start) {
            range = vec2<u32>(expert_ids[e], expert_ids[e + 1u]);
        }
        group_range = range;
    }
    return workgroupUniformLoad(&group_range);
}

@compute @workgroup_size(128)
fn expert_gate_up_swiglu_grouped(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let e = wid.y;
    let row0 = wid.x * GROWS;
    if (row0 >= p.rows_per_expert) { return; }
    let frow = e * p.rows_per_expert + row0;
    let range = group_entries(lid, e, frow);
    let half_rows = p.rows_per_expert / 2u;
    let lists = p.n_experts + 1u;
    for (var m0 = range.x; m0 < range.y; m0 += GTOK) {
        let count = min(GTOK, range.y - m0);
        if (lid < count) { tok[lid] = expert_ids[lists + m0 + lid]; }
        workgroupBarrier();
        let acc = tile_matmul(lid, frow, count, true);
        // Rows 4 tr .. 4 tr + 3 are gate/up pairs (row0 + 4 tr, +1) and (+2, +3).
        let tr = lid % 8u;
        let tc = lid / 8u;
        for (var q = 0u; q < 2u; q++) {
            let j = 4u * tr + 2u * q;
            let r = frow + j;
            if (row0 + j < p.rows_per_expert && in_slice(r)) {
                let bg = bias[r - p.row_start];
                let bu = bias[r + 1u - p.row_start];
                for (var c = 0u; c < 4u; c++) {
                    let ti = 4u * tc + c;
                    if (ti < count) {
                        let g = min(acc[2u * q][c] + bg, p.limit);
                        let u = clamp(acc[2u * q + 1u][c] + bu, -p.limit, p.limit);
                        let glu = g / (1.0 + exp(-p.alpha * g));
                        out[tok[ti] * half_rows + (row0 + j) / 2u] = glu * (u + 1.0);
                    }
                }
            }
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(128)
fn expert_down_grouped(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let e = wid.y;
    let row0 = wid.x * GROWS;
    if (row0 >= p.rows_per_expert) { return; }
    let frow = e * p.rows_per_expert + row0;
    let range = group_entries(lid, e, frow);
    let lists = p.n_experts + 1u;
    for (var m0 = range.x; m0 < range.y; m0 += GTOK) {
        let count = min(GTOK, range.y - m0);
        if (lid < count) { tok[lid] = expert_ids[lists + m0 + lid]; }
        workgroupBarrier();
        let acc = tile_matmul(lid, frow, count, false);
        let tr = lid % 8u;
        let tc = lid / 8u;
        for (var i = 0u; i < 4u; i++) {
            let j = 4u * tr + i;
            let r = frow + j;
            if (row0 + j < p.rows_per_expert && in_slice(r)) {
                let b = bias[r - p.row_start];
                for (var c = 0u; c < 4u; c++) {
                    let ti = 4u * tc + c;
                    if (ti < count) { out[tok[ti] * p.rows_per_expert + row0 + j] = acc[i][c] + b; }
                }
            }
        }
        workgroupBarrier();
    }
}
