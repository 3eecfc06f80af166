// y[t, r] (+)= sum_c x[t, c] * W[r, c] + bias[r], with W in bf16 (two per u32, row-major) and
// x, y, bias in f32. `matvec` serves decode (few tokens), `matmat` is the tiled prefill GEMM.
// W may be one slice of a larger matrix: y_offset places its rows inside the full output row.

struct Params {
    n_tokens: u32, rows: u32, cols: u32, x_offset: u32,
    x_stride: u32, y_stride: u32, y_offset: u32, flags: u32,
    norm_eps: f32,
}
const HAS_BIAS: u32 = 1u;
const ACCUMULATE: u32 = 2u;
// Decode mat-vecs only: x is RMS-normalized on the fly, x / sqrt(mean(x^2) + norm_eps) * norm,
// so the norm needs no dispatch of its own (each workgroup recomputes the row's mean square).
const NORM_INPUT: u32 = 4u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> norm_w: array<f32>;

fn bf16_lo(v: u32) -> f32 { return bitcast<f32>(v << 16u); }
fn bf16_hi(v: u32) -> f32 { return bitcast<f32>(v & 0xffff0000u); }

fn store(t: u32, r: u32, acc: f32) {
    var v = acc;
    if ((p.flags & HAS_BIAS) != 0u) { v += bias[r]; }
    let i = t * p.y_stride + p.y_offset + r;
    if ((p.flags & ACCUMULATE) != 0u) { v += y[i]; }
    y[i] = v;
}

// ---- decode: a workgroup computes MV_ROWS rows of one token ----
const MV_WG: u32 = 64u;
const MV_ROWS: u32 = 8u;
var<workgroup> red: array<f32, 512>; // MV_ROWS * MV_WG

// Sums each row's per-invocation partials across the workgroup; row j's total ends in red[j * MV_WG].
fn reduce_rows(lid: u32, acc: array<f32, MV_ROWS>) {
    for (var j = 0u; j < MV_ROWS; j++) { red[j * MV_WG + lid] = acc[j]; }
    workgroupBarrier();
    for (var s = MV_WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            for (var j = 0u; j < MV_ROWS; j++) { red[j * MV_WG + lid] += red[j * MV_WG + lid + s]; }
        }
        workgroupBarrier();
    }
}

// Subgroup size, this invocation's subgroup and lane, and the workgroup's subgroup count, set by
// entry points that have them (any subgroup size).
var<private> sg: vec4<u32>;

// The total of each row's partials across the workgroup, in invocation j for row j (the others
// hold garbage). One subgroup add per row and a sum over subgroups where subgroups exist;
// the workgroup-memory tree of `reduce_rows` otherwise.
fn row_totals(lid: u32, acc: array<f32, MV_ROWS>) -> f32 {
//#if subgroups
    // sg: (size, lane, id, count)
    for (var j = 0u; j < MV_ROWS; j++) {
        let s = subgroupAdd(acc[j]);
        if (sg.y == 0u) { red[j * MV_WG + sg.z] = s; }
    }
    workgroupBarrier();
    var total = 0.0;
    if (lid < MV_ROWS) {
        for (var i = 0u; i < sg.w; i++) { total += red[lid * MV_WG + i]; }
    }
    return total;
//#else
    reduce_rows(lid, acc);
    return red[min(lid, MV_ROWS - 1u) * MV_WG];
//#endif
}

// The sum of `v` over the workgroup, in every invocation (workgroup memory is free again after).
fn wg_sum(lid: u32, v: f32) -> f32 {
//#if subgroups
    let s = subgroupAdd(v);
    if (sg.y == 0u) { red[sg.z] = s; }
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < sg.w; i++) { total += red[i]; }
//#else
    red[lid] = v;
    workgroupBarrier();
    for (var s = MV_WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) { red[lid] += red[lid + s]; }
        workgroupBarrier();
    }
    let total = red[0];
//#endif
    workgroupBarrier();
    return total;
}

// 1 / rms of an input row from the sum of its squares. With NORM_INPUT (and `norm` in the q/k/v
// kernel), every decode mat-vec dots x * norm with its rows while summing x^2 in the same pass,
// then scales the row totals by this (a scalar per row): no second pass over x.
fn inv_rms(sum_squares: f32, cols: u32, eps: f32) -> f32 {
    return 1.0 / sqrt(sum_squares / f32(cols) + eps);
}

// Inputs 2c and 2c + 1 of row `xb`, times the norm weight with NORM_INPUT (their squares added
// to `ss`).
fn x_pair(xb: u32, c: u32, norm: bool, ss: ptr<function, f32>) -> vec2<f32> {
    var v = vec2<f32>(x[xb + 2u * c], x[xb + 2u * c + 1u]);
    if (norm) {
        *ss += dot(v, v);
        v *= vec2<f32>(norm_w[2u * c], norm_w[2u * c + 1u]);
    }
    return v;
}

@compute @workgroup_size(64)
fn matvec(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>,
//#if subgroups
          @builtin(subgroup_size) sg_size: u32, @builtin(subgroup_invocation_id) sg_lane: u32,
          @builtin(subgroup_id) sg_id: u32, @builtin(num_subgroups) n_sg: u32,
//#endif
) {
//#if subgroups
    sg = vec4<u32>(sg_size, sg_lane, sg_id, n_sg);
//#endif
    let row0 = (wid.x + wid.y * nwg.x) * MV_ROWS;
    let t = wid.z;
    if (row0 >= p.rows) { return; }
    let pairs = p.cols / 2u;
    let xb = p.x_offset + t * p.x_stride;
    let norm = (p.flags & NORM_INPUT) != 0u;
    var ss = 0.0;
    var acc = array<f32, MV_ROWS>();
    for (var c = lid.x; c < pairs; c += MV_WG) {
        let xv = x_pair(xb, c, norm, &ss);
        for (var j = 0u; j < MV_ROWS; j++) {
            let r = row0 + j;
            if (r < p.rows) {
                let v = w[r * pairs + c];
                acc[j] += xv.x * bf16_lo(v) + xv.y * bf16_hi(v);
            }
        }
    }
    var scale = 1.0;
    if (norm) {
        scale = inv_rms(wg_sum(lid.x, ss), p.cols, p.norm_eps);
    }
    let total = row_totals(lid.x, acc) * scale;
    if (lid.x < MV_ROWS && row0 + lid.x < p.rows) {
        store(t, row0 + lid.x, total);
    }
}

// ---- decode with 16-byte loads (cols a multiple of 8, x rows 16-byte aligned) ----
// The same work as `matvec`, but each invocation reads 8 weights (one vec4<u32>) per row and
// step, so a GPU moves the matrix with a quarter of the load instructions.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w4: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> norm_w4: array<vec4<f32>>;

fn dot8(v: vec4<u32>, a: vec4<f32>, b: vec4<f32>) -> f32 {
    let lo = vec4<f32>(bf16_lo(v.x), bf16_hi(v.x), bf16_lo(v.y), bf16_hi(v.y));
    let hi = vec4<f32>(bf16_lo(v.z), bf16_hi(v.z), bf16_lo(v.w), bf16_hi(v.w));
    return dot(lo, a) + dot(hi, b);
}

@compute @workgroup_size(64)
fn matvec_wide(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>,
//#if subgroups
               @builtin(subgroup_size) sg_size: u32, @builtin(subgroup_invocation_id) sg_lane: u32,
               @builtin(subgroup_id) sg_id: u32, @builtin(num_subgroups) n_sg: u32,
//#endif
) {
//#if subgroups
    sg = vec4<u32>(sg_size, sg_lane, sg_id, n_sg);
//#endif
    let row0 = (wid.x + wid.y * nwg.x) * MV_ROWS;
    let t = wid.z;
    if (row0 >= p.rows) { return; }
    let octs = p.cols / 8u;
    let xb = (p.x_offset + t * p.x_stride) / 4u;
    // With NORM_INPUT the norm costs one more load per 8 inputs (see `inv_rms`).
    let norm = (p.flags & NORM_INPUT) != 0u;
    var ss = 0.0;
    var acc = array<f32, MV_ROWS>();
    for (var c = lid.x; c < octs; c += MV_WG) {
        var a = x4[xb + 2u * c];
        var b = x4[xb + 2u * c + 1u];
        if (norm) {
            ss += dot(a, a) + dot(b, b);
            a *= norm_w4[2u * c];
            b *= norm_w4[2u * c + 1u];
        }
        for (var j = 0u; j < MV_ROWS; j++) {
            let r = row0 + j;
            if (r < p.rows) {
                acc[j] += dot8(w4[r * octs + c], a, b);
            }
        }
    }
    var scale = 1.0;
    if (norm) {
        scale = inv_rms(wg_sum(lid.x, ss), p.cols, p.norm_eps);
    }
    let total = row_totals(lid.x, acc) * scale;
    if (lid.x < MV_ROWS && row0 + lid.x < p.rows) {
        store(t, row0 + lid.x, total);
    }
}

// ---- decode for short rows (cols <= 512): one thread per row, 64 rows per workgroup ----
@compute @workgroup_size(64)
fn matvec_narrow(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = (wid.x + wid.y * nwg.x) * 64u + lid.x;
    let t = wid.z;
    if (r >= p.rows) { return; }
    let xb = p.x_offset + t * p.x_stride;
    let pairs = p.cols / 2u;
    // One invocation reads the whole row of x, so it sums the norm's squares on its own.
    let norm = (p.flags & NORM_INPUT) != 0u;
    var ss = 0.0;
    var acc = 0.0;
    for (var c = 0u; c < pairs; c++) {
        let xv = x_pair(xb, c, norm, &ss);
        let v = w[r * pairs + c];
        acc += xv.x * bf16_lo(v) + xv.y * bf16_hi(v);
    }
    if (norm) { acc *= inv_rms(ss, p.cols, p.norm_eps); }
    store(t, r, acc);
}

// ---- prefill: 64 tokens x 64 rows per workgroup, K in steps of 16 ----
// Each step stages a 64 x 16 slice of x and of W (widened to f32 once) in workgroup memory,
// transposed so that invocation (lx, ly) reads one vec4 of 4 tokens and one vec4 of 4 rows per
// k: 16 multiply-adds per 2 workgroup loads, a 4 x 4 register tile per invocation.
const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> xs: array<vec4<f32>, 256>; // [k][token / 4], TK * TM / 4
var<workgroup> ws: array<vec4<f32>, 256>; // [k][row / 4], TK * TN / 4

@compute @workgroup_size(16, 16)
fn matmat(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let li = lid.y * 16u + lid.x;
    let n0 = wid.x * TN;
    let m0 = wid.y * TM;
    let pairs = p.cols / 2u;
    // Loads: invocation li takes 4 consecutive columns of token (or row) li / 4; adjacent
    // invocations read adjacent addresses.
    let lm = li / 4u;
    let lk = (li % 4u) * 4u;
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var k0 = 0u; k0 < p.cols; k0 += TK) {
        var xv = vec4<f32>(0.0);
        if (m0 + lm < p.n_tokens) {
            let xb = p.x_offset + (m0 + lm) * p.x_stride + k0 + lk;
            for (var i = 0u; i < 4u; i++) {
                if (k0 + lk + i < p.cols) { xv[i] = x[xb + i]; }
            }
        }
        var wv = vec4<f32>(0.0);
        let cp = (k0 + lk) / 2u;
        if (n0 + lm < p.rows) {
            let wb = (n0 + lm) * pairs + cp;
            if (cp < pairs) {
                let v = w[wb];
                wv.x = bf16_lo(v);
                wv.y = bf16_hi(v);
            }
            if (cp + 1u < pairs) {
                let v = w[wb + 1u];
                wv.z = bf16_lo(v);
                wv.w = bf16_hi(v);
            }
        }
        for (var i = 0u; i < 4u; i++) {
            xs[(lk + i) * 16u + lm / 4u][lm % 4u] = xv[i];
            ws[(lk + i) * 16u + lm / 4u][lm % 4u] = wv[i];
        }
        workgroupBarrier();
        for (var k = 0u; k < TK; k++) {
            let a = xs[k * 16u + lid.y];
            let b = ws[k * 16u + lid.x];
            acc[0] += a.x * b;
            acc[1] += a.y * b;
            acc[2] += a.z * b;
            acc[3] += a.w * b;
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let t = m0 + lid.y * 4u + i;
        if (t < p.n_tokens) {
            for (var j = 0u; j < 4u; j++) {
                let r = n0 + lid.x * 4u + j;
                if (r < p.rows) { store(t, r, acc[i][j]); }
            }
        }
    }
}

// ---- decode: the q/k/v projection fused with RoPE and the KV-cache write ----
// A workgroup computes 4 rotation pairs (rows i and i + head_dim/2 of one head) of one token,
// so each rotation happens where both of its rows are known. q goes to `y`; k and v go to
// their cache slot (the cache is one segment here), as f32 words or, with `kv_f16`, as f16
// pairs packed in u32 words (head_dim a multiple of 4, so a workgroup's pairs fill whole words).
struct QkvParams {
    n_tokens: u32, cols: u32, x_stride: u32, has_bias: u32,
    n_q_heads: u32, n_kv_heads: u32, head_dim: u32, pos0: u32,
    ring: u32, kv_f16: u32, norm: u32, norm_eps: f32,
}

@group(0) @binding(0) var<uniform> qp: QkvParams;
@group(0) @binding(5) var<storage, read> cos_sin: array<f32>;
@group(0) @binding(6) var<storage, read_write> k_cache: array<u32>;
@group(0) @binding(7) var<storage, read_write> v_cache: array<u32>;
// With `norm`, x is the residual and its RMSNorm (weight `qkv_norm_w`) is taken on the fly as in
// the other mat-vecs (`inv_rms`); the totals are scaled before the bias and the rotation.
@group(0) @binding(8) var<storage, read> qkv_norm_w: array<f32>;
var<private> qkv_scale: f32;

const QKV_PAIRS: u32 = 4u;

// Rows i and i + head_dim/2 of `head` for pair j (< QKV_PAIRS) of the workgroup, after the
// reduction: bias added, rotated unless they are values.
fn qkv_pair(head: u32, i: u32, j: u32, t: u32) -> vec2<f32> {
    let half_d = qp.head_dim / 2u;
    var a = red[j * MV_WG] * qkv_scale;
    var b = red[(j + QKV_PAIRS) * MV_WG] * qkv_scale;
    if (qp.has_bias != 0u) {
        a += bias[head * qp.head_dim + i];
        b += bias[head * qp.head_dim + i + half_d];
    }
    if (head >= qp.n_q_heads + qp.n_kv_heads) { return vec2<f32>(a, b); }
    let cs = (t * half_d + i) * 2u;
    let c = cos_sin[cs];
    let s = cos_sin[cs + 1u];
    return vec2<f32>(a * c - b * s, b * c + a * s);
}

@compute @workgroup_size(64)
fn matvec_qkv_rope(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>,
//#if subgroups
                   @builtin(subgroup_size) sg_size: u32, @builtin(subgroup_invocation_id) sg_lane: u32,
                   @builtin(subgroup_id) sg_id: u32, @builtin(num_subgroups) n_sg: u32,
//#endif
) {
//#if subgroups
    sg = vec4<u32>(sg_size, sg_lane, sg_id, n_sg);
//#endif
    let d = qp.head_dim;
    let half_d = d / 2u;
    let blocks_per_head = (half_d + QKV_PAIRS - 1u) / QKV_PAIRS;
    let block = wid.x + wid.y * nwg.x;
    let head = block / blocks_per_head;
    let i0 = (block % blocks_per_head) * QKV_PAIRS;
    let t = wid.z;
    let n_heads = qp.n_q_heads + 2u * qp.n_kv_heads;
    if (head >= n_heads) { return; }
    let pairs = qp.cols / 2u;
    let xb = t * qp.x_stride;
    // Rows j < 4: first halves of pairs i0 + j; rows j >= 4: their second halves.
    let norm = qp.norm != 0u;
    var ss = 0.0;
    var acc = array<f32, MV_ROWS>();
    for (var c = lid.x; c < pairs; c += MV_WG) {
        var x0 = x[xb + 2u * c];
        var x1 = x[xb + 2u * c + 1u];
        if (norm) {
            ss += x0 * x0 + x1 * x1;
            x0 *= qkv_norm_w[2u * c];
            x1 *= qkv_norm_w[2u * c + 1u];
        }
        for (var j = 0u; j < MV_ROWS; j++) {
            let i = i0 + j % QKV_PAIRS;
            if (i < half_d) {
                let r = head * d + i + (j / QKV_PAIRS) * half_d;
                let v = w[r * pairs + c];
                acc[j] += x0 * bf16_lo(v) + x1 * bf16_hi(v);
            }
        }
    }
    qkv_scale = 1.0;
    if (norm) {
        qkv_scale = inv_rms(wg_sum(lid.x, ss), qp.cols, qp.norm_eps);
    }
    reduce_rows(lid.x, acc);
    let slot = (qp.pos0 + t) % qp.ring;
    let is_v = head >= qp.n_q_heads + qp.n_kv_heads;
    let kv_row = slot * qp.n_kv_heads + head - qp.n_q_heads - select(0u, qp.n_kv_heads, is_v);
    if (head >= qp.n_q_heads && qp.kv_f16 != 0u) {
        // Invocation m packs pairs i0 + 2m and i0 + 2m + 1: one word in each half of the row.
        let i = i0 + 2u * lid.x;
        if (lid.x >= QKV_PAIRS / 2u || i >= half_d) { return; }
        let e0 = qkv_pair(head, i, 2u * lid.x, t);
        let e1 = qkv_pair(head, i + 1u, 2u * lid.x + 1u, t);
        let wb = kv_row * half_d + i / 2u;
        let lo = pack2x16float(vec2<f32>(e0.x, e1.x));
        let hi = pack2x16float(vec2<f32>(e0.y, e1.y));
        if (is_v) {
            v_cache[wb] = lo;
            v_cache[wb + half_d / 2u] = hi;
        } else {
            k_cache[wb] = lo;
            k_cache[wb + half_d / 2u] = hi;
        }
        return;
    }
    let i = i0 + lid.x;
    if (lid.x >= QKV_PAIRS || i >= half_d) { return; }
    let e = qkv_pair(head, i, lid.x, t);
    if (head < qp.n_q_heads) {
        let dst = (t * qp.n_q_heads + head) * d;
        y[dst + i] = e.x;
        y[dst + i + half_d] = e.y;
    } else if (is_v) {
        v_cache[kv_row * d + i] = bitcast<u32>(e.x);
        v_cache[kv_row * d + i + half_d] = bitcast<u32>(e.y);
    } else {
        k_cache[kv_row * d + i] = bitcast<u32>(e.x);
        k_cache[kv_row * d + i + half_d] = bitcast<u32>(e.y);
    }
}
