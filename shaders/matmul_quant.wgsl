// Matrix products and embedding lookups with weights stored as GGUF tensors: each row holds
// the file's raw bytes (blocks of a quantization type), dequantized in registers.
//
//   matvec_*: decode, y[t, r] (+)= x[t] . W[r] + bias[r] for up to 4 tokens; a workgroup takes
//             MV_ROWS rows, its invocations adjacent 16-value chunks of them.
//   matmat_*: prefill, tiles of 64 tokens x 64 rows: each weight chunk is dequantized once per
//             tile into workgroup memory and used by all 64 tokens.
//   embed_*:  out[t] = W[tokens[t]] for the tokens that fall in this slice of rows.
//
// WGSL has no generics: every entry point passes its type's constant to a shared body, and
// `deq16` dispatches on it (a uniform branch that compilers fold once the body is inlined).
// Rows are any number of bytes, so blocks are read from `array<u32>` at byte offsets.

// Embedding lookups use n_tokens, cols, row_bytes, row_start and row_end.
struct Params {
    n_tokens: u32, rows: u32, cols: u32, x_offset: u32,
    x_stride: u32, y_stride: u32, y_offset: u32, flags: u32,
    row_bytes: u32, row_start: u32, row_end: u32,
}
const HAS_BIAS: u32 = 1u;
const ACCUMULATE: u32 = 2u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Type ids (QType order in src/ops/quant.rs).
const F32: u32 = 0u;
const F16: u32 = 1u;
const BF16: u32 = 2u;
const Q8_0: u32 = 3u;
const Q4_0: u32 = 4u;
const Q4_1: u32 = 5u;
const Q4_K: u32 = 6u;
const Q5_K: u32 = 7u;
const Q6_K: u32 = 8u;
const MXFP4: u32 = 9u;

// ---- byte access ----

fn byte_at(o: u32) -> u32 {
    return (w[o >> 2u] >> ((o & 3u) * 8u)) & 0xffu;
}

// A 16-bit value at an even byte offset.
fn u16_at(o: u32) -> u32 {
    return (w[o >> 2u] >> ((o & 2u) * 8u)) & 0xffffu;
}

// f16 to f32 by bit arithmetic: unpack2x16float is slow on some CPU drivers. Exact for every
// finite f16 (subnormals through an integer conversion, so no driver flushes them).
fn f16_at(o: u32) -> f32 {
    let h = u16_at(o);
    let sign = (h & 0x8000u) << 16u;
    let normal = bitcast<f32>((((h & 0x7fffu) << 13u) + 0x38000000u) | sign);
    let sub = bitcast<f32>(bitcast<u32>(f32(h & 0x3ffu) * 5.9604645e-8) | sign);
    return select(normal, sub, (h & 0x7c00u) == 0u);
}

// Sixteen bytes from any byte offset (five word loads when unaligned).
fn bytes16(o: u32) -> vec4<u32> {
    let i = o >> 2u;
    let s = (o & 3u) * 8u;
    let lo = vec4<u32>(w[i], w[i + 1u], w[i + 2u], w[i + 3u]);
    if (s == 0u) { return lo; }
    let hi = vec4<u32>(lo.yzw, w[i + 4u]);
    return (lo >> vec4<u32>(s)) | (hi << vec4<u32>(32u - s));
}

// 16 consecutive values of a row, 4 per vector.
alias V16 = array<vec4<f32>, 4>;

const SH: vec4<u32> = vec4<u32>(0u, 8u, 16u, 24u);

// The nibbles of 16 bytes, shifted by `s` (0: low nibbles, 4: high).
fn nibbles(q: vec4<u32>, s: u32) -> array<vec4<u32>, 4> {
    var n: array<vec4<u32>, 4>;
    for (var i = 0u; i < 4u; i++) { n[i] = (vec4<u32>(q[i]) >> (SH + vec4<u32>(s))) & vec4<u32>(15u); }
    return n;
}

// Bit fields of 16 bytes: each byte shifted right by `s`, under `mask`.
fn fields(q: vec4<u32>, s: u32, mask: u32) -> array<vec4<u32>, 4> {
    var n: array<vec4<u32>, 4>;
    for (var i = 0u; i < 4u; i++) { n[i] = (vec4<u32>(q[i]) >> (SH + vec4<u32>(s))) & vec4<u32>(mask); }
    return n;
}

// ---- per-type dequantization of 16 consecutive values of a row ----
// `o` is the byte offset of the values' block; every quantized type keeps one scale for each
// aligned 16 values at least. In 32-value blocks the first 16 values are the low nibbles of
// the 16 quant bytes and the next 16 their high nibbles: `s` is 0 or 4 to pick them.
// In 256-value super-blocks `vi` is the first value's index.

// Float types: values past the end of the row are 0 (their rows need not be multiples of 16).
fn deq16_float(qt: u32, row: u32, v0: u32) -> V16 {
    var v: V16;
    let e = row * p.cols + v0;
    for (var k = 0u; k < 16u; k++) {
        var f = 0.0;
        if (v0 + k < p.cols) {
            let i = e + k;
            if (qt == F32) {
                f = bitcast<f32>(w[i]);
            } else if (qt == F16) {
                f = f16_at(2u * i);
            } else {
                f = bitcast<f32>(u16_at(2u * i) << 16u);
            }
        }
        v[k / 4u][k % 4u] = f;
    }
    return v;
}

// Q8_0: f16 d, 32 x i8; value = q * d.
fn deq16_q8_0(o: u32, vi: u32) -> V16 {
    let d = f16_at(o);
    let q = bytes16(o + 2u + vi);
    var v: V16;
    for (var i = 0u; i < 4u; i++) {
        v[i] = vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(q[i]) << (vec4<u32>(24u) - SH)) >> vec4<u32>(24u)) * d;
    }
    return v;
}

// Q4_0: f16 d, 16 quant bytes; value = d * (q - 8).
fn deq16_q4_0(o: u32, s: u32) -> V16 {
    let d = f16_at(o);
    let q = nibbles(bytes16(o + 2u), s);
    var v: V16;
    for (var i = 0u; i < 4u; i++) { v[i] = d * (vec4<f32>(q[i]) - vec4<f32>(8.0)); }
    return v;
}

// Q4_1: f16 d, f16 m, nibbles as Q4_0; value = d * q + m.
fn deq16_q4_1(o: u32, s: u32) -> V16 {
    let d = f16_at(o);
    let m = f16_at(o + 2u);
    let q = nibbles(bytes16(o + 4u), s);
    var v: V16;
    for (var i = 0u; i < 4u; i++) { v[i] = d * vec4<f32>(q[i]) + vec4<f32>(m); }
    return v;
}

// Doubled E2M1 magnitudes 0, 1, 2, 3, 4, 6, 8, 12 with the sign in bit 3.
fn e2m1x2(u: vec4<u32>) -> vec4<f32> {
    let m = u & vec4<u32>(7u);
    let big = (vec4<u32>(2u) + (m & vec4<u32>(1u))) << (max(m >> vec4<u32>(1u), vec4<u32>(1u)) - vec4<u32>(1u));
    let mag = vec4<f32>(select(m, big, m >= vec4<u32>(4u)));
    return select(mag, -mag, u > vec4<u32>(8u));
}

// MXFP4: e8m0 exponent, nibbles as Q4_0 of doubled E2M1 values; value = e2m1x2 * 2^(e - 128)
// (the e8m0 scale halved, matching the doubled values).
fn deq16_mxfp4(o: u32, s: u32) -> V16 {
    let e = byte_at(o);
    let d = select(bitcast<f32>((e - 1u) << 23u), bitcast<f32>(0x00200000u << e), e < 2u);
    let q = nibbles(bytes16(o + 1u), s);
    var v: V16;
    for (var i = 0u; i < 4u; i++) { v[i] = e2m1x2(q[i]) * d; }
    return v;
}

// 6-bit scale and min `j` (0..8) of a Q4_K/Q5_K super-block from its 12 packed bytes at `s`:
// the first four pairs sit in the low 6 bits of bytes 0..8; the others take 4 bits from bytes
// 8..12 and their top 2 bits from the spare top bits of bytes 0..8.
fn scale_min_k4(s: u32, j: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(byte_at(s + j) & 63u), f32(byte_at(s + j + 4u) & 63u));
    }
    let a = byte_at(s + j + 4u);
    let sc = (a & 15u) | ((byte_at(s + j - 4u) >> 6u) << 4u);
    let mn = (a >> 4u) | ((byte_at(s + j) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(mn));
}

// 256-value super-blocks. Q4_K: f16 d, f16 dmin, 12 scale bytes, 128 bytes where each 64
// values take 32 bytes (low nibbles, then high nibbles); value = d*sc * q - dmin*m per 32.
fn deq16_q4_k(o: u32, vi: u32) -> V16 {
    let sm = scale_min_k4(o + 4u, vi / 32u);
    let d = f16_at(o) * sm.x;
    let m = f16_at(o + 2u) * sm.y;
    let q = nibbles(bytes16(o + 16u + (vi / 64u) * 32u + vi % 32u), ((vi / 32u) % 2u) * 4u);
    var v: V16;
    for (var i = 0u; i < 4u; i++) { v[i] = d * vec4<f32>(q[i]) - vec4<f32>(m); }
    return v;
}

// Q5_K: as Q4_K with 32 bytes of fifth bits before the nibbles: bit j of byte l belongs to
// value 32j + l.
fn deq16_q5_k(o: u32, vi: u32) -> V16 {
    let j = vi / 32u;
    let sm = scale_min_k4(o + 4u, j);
    let d = f16_at(o) * sm.x;
    let m = f16_at(o + 2u) * sm.y;
    let l = vi % 32u;
    let q = nibbles(bytes16(o + 48u + (vi / 64u) * 32u + l), (j % 2u) * 4u);
    let h = fields(bytes16(o + 16u + l), j, 1u);
    var v: V16;
    for (var i = 0u; i < 4u; i++) { v[i] = d * vec4<f32>(q[i] + h[i] * 16u) - vec4<f32>(m); }
    return v;
}

// Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit high parts, 16 i8 scales (one per 16
// values), f16 d. Per 128 values: value 32i + l takes the low (i = 0, 1) or high (i = 2, 3)
// nibble of low byte 32(i % 2) + l and bits 2i of high byte l; q = that 6-bit value - 32.
fn deq16_q6_k(o: u32, vi: u32) -> V16 {
    let half = vi / 128u;
    let i = (vi % 128u) / 32u;
    let l = vi % 32u;
    let ql = nibbles(bytes16(o + half * 64u + (i % 2u) * 32u + l), (i / 2u) * 4u);
    let qh = fields(bytes16(o + 128u + half * 32u + l), 2u * i, 3u);
    let sc = f32(bitcast<i32>(byte_at(o + 192u + vi / 16u) << 24u) >> 24u);
    let d = f16_at(o + 208u) * sc;
    var v: V16;
    for (var k = 0u; k < 4u; k++) { v[k] = d * (vec4<f32>(ql[k] | (qh[k] << vec4<u32>(4u))) - vec4<f32>(32.0)); }
    return v;
}

// Values v0 .. v0 + 16 of row `row` of this slice.
fn deq16(qt: u32, row: u32, v0: u32) -> V16 {
    let base = row * p.row_bytes;
    switch qt {
        case Q8_0: { return deq16_q8_0(base + (v0 / 32u) * 34u, v0 % 32u); }
        case Q4_0: { return deq16_q4_0(base + (v0 / 32u) * 18u, (v0 % 32u) / 4u); }
        case Q4_1: { return deq16_q4_1(base + (v0 / 32u) * 20u, (v0 % 32u) / 4u); }
        case Q4_K: { return deq16_q4_k(base + (v0 / 256u) * 144u, v0 % 256u); }
        case Q5_K: { return deq16_q5_k(base + (v0 / 256u) * 176u, v0 % 256u); }
        case Q6_K: { return deq16_q6_k(base + (v0 / 256u) * 210u, v0 % 256u); }
        case MXFP4: { return deq16_mxfp4(base + (v0 / 32u) * 17u, (v0 % 32u) / 4u); }
        default: { return deq16_float(qt, row, v0); }
    }
}

// ---- inputs and outputs ----

// x[t, v0 .. v0 + 16], zero past the row's end.
fn load_x16(t: u32, v0: u32) -> V16 {
    let b = p.x_offset + t * p.x_stride + v0;
    var v: V16;
    if (v0 + 16u <= p.cols) {
        for (var i = 0u; i < 4u; i++) {
            v[i] = vec4<f32>(x[b + 4u * i], x[b + 4u * i + 1u], x[b + 4u * i + 2u], x[b + 4u * i + 3u]);
        }
    } else {
        for (var k = 0u; k < 16u; k++) {
            if (v0 + k < p.cols) { v[k / 4u][k % 4u] = x[b + k]; }
        }
    }
    return v;
}

fn dot16(a: V16, b: V16) -> f32 {
    return dot(a[0], b[0]) + dot(a[1], b[1]) + dot(a[2], b[2]) + dot(a[3], b[3]);
}

fn store(t: u32, r: u32, acc: f32) {
    var v = acc;
    if ((p.flags & HAS_BIAS) != 0u) { v += bias[r]; }
    let i = t * p.y_stride + p.y_offset + r;
    if ((p.flags & ACCUMULATE) != 0u) { v += y[i]; }
    y[i] = v;
}

// ---- decode ----
// A workgroup takes MV_ROWS rows with MV_LANES invocations each: short rows (small models) keep
// every invocation busy, and few barriers per row keep CPU drivers fast.
const MV_WG: u32 = 64u;
const MV_LANES: u32 = 4u;
const MV_ROWS: u32 = 16u; // MV_WG / MV_LANES
const MV_TOKENS: u32 = 4u;
var<workgroup> red4: array<vec4<f32>, 64>; // one per invocation, one lane per token

fn matvec_body(qt: u32, lid: u32, group: u32) {
    let row = group * MV_ROWS + lid / MV_LANES;
    let lane = lid % MV_LANES;
    let chunks = (p.cols + 15u) / 16u;
    // acc[t]: partial sum of this row for token t over every MV_LANES-th chunk of 16 columns.
    var acc = vec4<f32>(0.0);
    if (row < p.rows) {
        for (var c = lane; c < chunks; c += MV_LANES) {
            let v0 = c * 16u;
            let wv = deq16(qt, row, v0);
            acc.x += dot16(wv, load_x16(0u, v0));
            if (p.n_tokens > 1u) {
                // Tokens past n_tokens read token 0's inputs; their sums are never stored.
                acc.y += dot16(wv, load_x16(1u, v0));
                acc.z += dot16(wv, load_x16(select(0u, 2u, p.n_tokens > 2u), v0));
                acc.w += dot16(wv, load_x16(select(0u, 3u, p.n_tokens > 3u), v0));
            }
        }
    }
    red4[lid] = acc;
    workgroupBarrier();
    for (var s = MV_LANES / 2u; s > 0u; s >>= 1u) {
        if (lane < s) { red4[lid] += red4[lid + s]; }
        workgroupBarrier();
    }
    if (lane == 0u && row < p.rows) {
        for (var t = 0u; t < p.n_tokens; t++) { store(t, row, red4[lid][t]); }
    }
}

// ---- prefill ----
const TM: u32 = 64u; // tokens per tile
const TN: u32 = 64u; // rows per tile
const TK: u32 = 16u; // columns per step: one chunk of 16 per row
// Column k of the tile: xs[k * XS + i] holds tokens 4i .. 4i + 4, ws[k * 16 + i] rows 4i .. 4i + 4.
// xs rows are padded by one vector so that the transposing writes spread over the banks.
const XS: u32 = 17u;
var<workgroup> xs: array<vec4<f32>, 272>; // TK * XS
var<workgroup> ws: array<vec4<f32>, 256>; // TK * TN / 4

// 256 invocations as 16 x 16: invocation (lx, ly) computes rows 4lx .. 4lx + 4 of tokens
// 4ly .. 4ly + 4, two vector loads from workgroup memory per 16 multiply-adds.
fn matmat_body(qt: u32, lx: u32, ly: u32, wid: vec3<u32>) {
    let li = ly * 16u + lx;
    let n0 = wid.x * TN;
    let m0 = wid.y * TM;
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var k0 = 0u; k0 < p.cols; k0 += TK) {
        // Weights: invocations 0..64 each dequantize the tile's 16 columns of one row.
        if (li < TN) {
            var wv: V16;
            if (n0 + li < p.rows && k0 < p.cols) { wv = deq16(qt, n0 + li, k0); }
            for (var k = 0u; k < TK; k++) { ws[k * 16u + li / 4u][li % 4u] = wv[k / 4u][k % 4u]; }
        }
        // Inputs: 16 consecutive columns of a token per 16 invocations.
        for (var i = 0u; i < 4u; i++) {
            let idx = li + i * 256u;
            let m = idx / TK;
            let k = idx % TK;
            var v = 0.0;
            if (m0 + m < p.n_tokens && k0 + k < p.cols) {
                v = x[p.x_offset + (m0 + m) * p.x_stride + k0 + k];
            }
            xs[k * XS + m / 4u][m % 4u] = v;
        }
        workgroupBarrier();
        for (var k = 0u; k < TK; k++) {
            let a = xs[k * XS + ly];
            let b = ws[k * 16u + lx];
            acc[0] += a.x * b;
            acc[1] += a.y * b;
            acc[2] += a.z * b;
            acc[3] += a.w * b;
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let t = m0 + ly * 4u + i;
        if (t < p.n_tokens) {
            for (var j = 0u; j < 4u; j++) {
                let r = n0 + lx * 4u + j;
                if (r < p.rows) { store(t, r, acc[i][j]); }
            }
        }
    }
}

// ---- embedding lookup ----
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// Invocation c writes values 16c .. 16c + 16 of token wid.y's row.
fn embed_body(qt: u32, gid: vec3<u32>, wid: vec3<u32>) {
    let t = wid.y;
    let v0 = gid.x * 16u;
    if (t >= p.n_tokens || v0 >= p.cols) { return; }
    let tok = tokens[t];
    if (tok < p.row_start || tok >= p.row_end) { return; }
    let v = deq16(qt, tok - p.row_start, v0);
    for (var k = 0u; k < 16u; k++) {
        if (v0 + k < p.cols) { out[t * p.cols + v0 + k] = v[k / 4u][k % 4u]; }
    }
}

// ---- entry points: one per (kind, type) ----

@compute @workgroup_size(64)
fn matvec_f32(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) { matvec_body(F32, lid.x, wid.x + wid.y * nwg.x); }
@compute @workgroup_size(16, 16)
fn matmat_f32(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(F32, lid.x, lid.y, wid); }
@compute @workgroup_size(64)
fn embed_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(F32, gid, wid); }

@compute @workgroup_size(64)
fn matvec_f16(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) { matvec_body(F16, lid.x, wid.x + wid.y * nwg.x); }
@compute @workgroup_size(16, 16)
fn matmat_f16(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(F16, lid.x, lid.y, wid); }
@compute @workgroup_size(64)
fn embed_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(F16, gid, wid); }

@compute @workgroup_size(64)
fn matvec_bf16(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) { matvec_body(BF16, lid.x, wid.x + wid.y * nwg.x); }
@compute @workgroup_size(16, 16)
fn matmat_bf16(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(BF16, lid.x, lid.y, wid); }
@compute @workgroup_size(64)
fn embed_bf16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(BF16, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q8_0(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) { matvec_body(Q8_0, lid.x, wid.x + wid.y * nwg.x); }
@compute @workgroup_size(16, 16)
fn matmat_q8_0(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q8_0, lid.x, lid.y, wid); }
@compute @workgroup_size(64)
fn embed_q8_0(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q8_0, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q4_0(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) { matvec_body(Q4_0, lid.x, wid.x + wid.y * nwg.x); }
@compute @workgroup_size(16, 16)
fn matmat_q4_0(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q4_0, lid.x, lid.y, wid); }
@compute @workgroup_size(64)
fn embed_q4_0(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q4_0, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q4_1(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) { matvec_body(Q4_1, lid.x, wid.x + wid.y * nwg.x); }
@compute @workgroup_size(16, 16)
fn matmat_q4_1(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q4_1, lid.x, lid.y, wid); }
@compute @workgroup_size(64)
fn embed_q4_1(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q4_1, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q4_k(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) { matvec_body(Q4_K, lid.x, wid.x + wid.y * nwg.x); }
@compute @workgroup_size(16, 16)
fn matmat_q4_k(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q4_K, lid.x, lid.y, wid); }
@compute @workgroup_size(64)
fn embed_q4_k(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q4_K, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q5_k(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) { matvec_body(Q5_K, lid.x, wid.x + wid.y * nwg.x); }
@compute @workgroup_size(16, 16)
fn matmat_q5_k(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q5_K, lid.x, lid.y, wid); }
@compute @workgroup_size(64)
fn embed_q5_k(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q5_K, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q6_k(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) { matvec_body(Q6_K, lid.x, wid.x + wid.y * nwg.x); }
@compute @workgroup_size(16, 16)
fn matmat_q6_k(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q6_K, lid.x, lid.y, wid); }
@compute @workgroup_size(64)
fn embed_q6_k(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q6_K, gid, wid); }

@compute @workgroup_size(64)
fn matvec_mxfp4(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) { matvec_body(MXFP4, lid.x, wid.x + wid.y * nwg.x); }
@compute @workgroup_size(16, 16)
fn matmat_mxfp4(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(MXFP4, lid.x, lid.y, wid); }
@compute @workgroup_size(64)
fn embed_mxfp4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(MXFP4, gid, wid); }
