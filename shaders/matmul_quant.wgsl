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
    row_bytes: u32, row_start: u32, row_end: u32, lanes: u32,
}
const HAS_BIAS: u32 = 1u;
const ACCUMULATE: u32 = 2u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Type ids: positions in the type table of src/ops/quant.rs (checked by tests/quant_kernels.rs).
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
const Q5_0: u32 = 10u;
const Q5_1: u32 = 11u;
const Q2_K: u32 = 12u;
const Q3_K: u32 = 13u;
const IQ4_NL: u32 = 14u;
const IQ4_XS: u32 = 15u;

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

// The fifth bits of 16 values of Q5_0/Q5_1: bits 0.. of `qh`, each at bit 4 of its value.
fn fifth_bits(qh: u32, i: u32) -> vec4<u32> {
    return ((vec4<u32>(qh) >> (vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u)) << vec4<u32>(4u);
}

// Q5_0: f16 d, 32 fifth bits (value j: bit j), nibbles as Q4_0; value = d * (q - 16).
fn deq16_q5_0(o: u32, s: u32) -> V16 {
    let d = f16_at(o);
    let qh = (u16_at(o + 2u) | (u16_at(o + 4u) << 16u)) >> (4u * s);
    let q = nibbles(bytes16(o + 6u), s);
    var v: V16;
    for (var i = 0u; i < 4u; i++) { v[i] = d * (vec4<f32>(q[i] | fifth_bits(qh, i)) - vec4<f32>(16.0)); }
    return v;
}

// Q5_1: f16 d, f16 m, fifth bits and nibbles as Q5_0; value = d * q + m.
fn deq16_q5_1(o: u32, s: u32) -> V16 {
    let d = f16_at(o);
    let m = f16_at(o + 2u);
    let qh = (u16_at(o + 4u) | (u16_at(o + 6u) << 16u)) >> (4u * s);
    let q = nibbles(bytes16(o + 8u), s);
    var v: V16;
    for (var i = 0u; i < 4u; i++) { v[i] = d * vec4<f32>(q[i] | fifth_bits(qh, i)) + vec4<f32>(m); }
    return v;
}

// IQ4_NL/IQ4_XS values (IQ4_VALUES in src/ops/cpu.rs): 16 i8, value n in byte n % 4 of word n / 4.
const IQ4_WORDS: vec4<u32> = vec4<u32>(0xbfad9881u, 0xf6eaddcfu, 0x26190d01u, 0x71594535u);

// The values of four nibbles: the word by three selects, the byte moved to the top and
// shifted down with its sign (11 int ops per value).
fn iq4(n: vec4<u32>) -> vec4<f32> {
    let odd = (n & vec4<u32>(4u)) != vec4<u32>(0u);
    let lo = select(vec4<u32>(IQ4_WORDS.x), vec4<u32>(IQ4_WORDS.y), odd);
    let hi = select(vec4<u32>(IQ4_WORDS.z), vec4<u32>(IQ4_WORDS.w), odd);
    let wd = select(lo, hi, n >= vec4<u32>(8u));
    return vec4<f32>(bitcast<vec4<i32>>(wd << ((~n & vec4<u32>(3u)) << vec4<u32>(3u))) >> vec4<u32>(24u));
}

// IQ4_NL: f16 d, nibbles as Q4_0; value = d * IQ4_VALUES[q].
fn deq16_iq4_nl(o: u32, s: u32) -> V16 {
    let d = f16_at(o);
    let q = nibbles(bytes16(o + 2u), s);
    var v: V16;
    for (var i = 0u; i < 4u; i++) { v[i] = d * iq4(q[i]); }
    return v;
}

// Q2_K: 16 scale bytes (low nibble scale, high nibble min, one per 16 values), 64 bytes of
// 2-bit quants, f16 d, f16 dmin. Per 128 values: value 32i + l is bits 2i of byte l; value =
// d * sc * q - dmin * m.
fn deq16_q2_k(o: u32, vi: u32) -> V16 {
    let i = (vi % 128u) / 32u;
    let q = fields(bytes16(o + 16u + (vi / 128u) * 32u + vi % 32u), 2u * i, 3u);
    let sc = byte_at(o + vi / 16u);
    let d = f16_at(o + 80u) * f32(sc & 15u);
    let m = f16_at(o + 82u) * f32(sc >> 4u);
    var v: V16;
    for (var k = 0u; k < 4u; k++) { v[k] = d * vec4<f32>(q[k]) - vec4<f32>(m); }
    return v;
}

// 6-bit scale `k` (0..16) of a Q3_K super-block, minus 32, from its 12 bytes at `s`: the low
// (k < 8) or high nibble of byte k % 8 and, as the top 2 bits, bits 2 (k / 4) of byte 8 + k % 4.
fn scale_q3_k(s: u32, k: u32) -> f32 {
    let lo = (byte_at(s + k % 8u) >> (4u * (k / 8u))) & 15u;
    let hi = (byte_at(s + 8u + k % 4u) >> (2u * (k / 4u))) & 3u;
    return f32(i32(lo | (hi << 4u)) - 32);
}

// Q3_K: 32 bytes of high bits, 64 bytes of 2-bit quants (as Q2_K), 12 scale bytes, f16 d. Value
// 32i + l of each 128 (half h) takes bit 4h + i of high byte l as its third bit; value =
// d * sc * (q - 4).
fn deq16_q3_k(o: u32, vi: u32) -> V16 {
    let half = vi / 128u;
    let i = (vi % 128u) / 32u;
    let l = vi % 32u;
    let q = fields(bytes16(o + 32u + half * 32u + l), 2u * i, 3u);
    let h = fields(bytes16(o + l), 4u * half + i, 1u);
    let d = f16_at(o + 108u) * scale_q3_k(o + 96u, vi / 16u);
    var v: V16;
    for (var k = 0u; k < 4u; k++) { v[k] = d * (vec4<f32>(q[k] | (h[k] << vec4<u32>(2u))) - vec4<f32>(4.0)); }
    return v;
}

// IQ4_XS: f16 d, 16 bits of high scale bits, 4 bytes of low scale bits, 8 x 16 quant bytes.
// Sub-block j (32 values): scale = (nibble j of the low bytes | (bits 2j of the high bits) << 4)
// - 32, its 16 bytes' nibbles as IQ4_NL.
fn deq16_iq4_xs(o: u32, vi: u32) -> V16 {
    let j = vi / 32u;
    let ls = ((byte_at(o + 4u + j / 2u) >> (4u * (j % 2u))) & 15u) | (((u16_at(o + 2u) >> (2u * j)) & 3u) << 4u);
    let d = f16_at(o) * f32(i32(ls) - 32);
    let q = nibbles(bytes16(o + 8u + 16u * j), ((vi % 32u) / 16u) * 4u);
    var v: V16;
    for (var i = 0u; i < 4u; i++) { v[i] = d * iq4(q[i]); }
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
        case Q5_0: { return deq16_q5_0(base + (v0 / 32u) * 22u, (v0 % 32u) / 4u); }
        case Q5_1: { return deq16_q5_1(base + (v0 / 32u) * 24u, (v0 % 32u) / 4u); }
        case Q2_K: { return deq16_q2_k(base + (v0 / 256u) * 84u, v0 % 256u); }
        case Q3_K: { return deq16_q3_k(base + (v0 / 256u) * 110u, v0 % 256u); }
        case IQ4_NL: { return deq16_iq4_nl(base + (v0 / 32u) * 18u, (v0 % 32u) / 4u); }
        case IQ4_XS: { return deq16_iq4_xs(base + (v0 / 256u) * 136u, v0 % 256u); }
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
// Each row is read by `p.lanes` adjacent invocations (a power of two, chosen by the host from
// the row length: at least two 32-value units per invocation), each taking every lanes-th unit:
// adjacent invocations read adjacent blocks. Every invocation computes MV_R rows, so each input
// value it loads serves MV_R rows (and its header is read once per block). The lanes of a row
// are combined with subgroup shuffles (the host keeps lanes <= the smallest subgroup size), or
// else through workgroup memory with one barrier.
//
// Inputs of the 2- to 6-bit types with linear quants are prescaled by 2^-(8 (c % 4)) (`XSCALE`): a field
// masked in place at byte c % 4 of its word converts to exactly field * 2^(8 (c % 4)), so a
// weight costs one AND, one int-to-float conversion and one multiply-add (no shift per value).
const MV_WG: u32 = 64u;
const MV_R: u32 = 4u;
const XSCALE: vec4<f32> = vec4<f32>(1.0, 0.00390625, 1.52587890625e-05, 5.9604644775390625e-08);
const M4: vec4<u32> = vec4<u32>(0xfu, 0xf00u, 0xf0000u, 0xf000000u);
const M8: vec4<u32> = vec4<u32>(0xffu, 0xff00u, 0xff0000u, 0xff000000u);
const M2: vec4<u32> = vec4<u32>(0x3u, 0x300u, 0x30000u, 0x3000000u);

// 32 consecutive inputs of one token (a unit), 4 per vector, and the sums of the raw values of
// its two halves (for the types with an offset: value = d * q + m).
struct X32 { v: array<vec4<f32>, 8>, lo: f32, hi: f32 }

fn load_x32(qt: u32, t: u32, u: u32) -> X32 {
    let c0 = u * 32u;
    let b = p.x_offset + t * p.x_stride + c0;
    var r: X32;
    var s = vec2<f32>(0.0);
    for (var i = 0u; i < 8u; i++) {
        var v: vec4<f32>;
        let c = b + 4u * i;
        if (qt <= BF16) {
            // Float rows need not be whole units: zero past the end.
            let ok = vec4<u32>(c0 + 4u * i) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.cols);
            v = select(vec4<f32>(0.0), vec4<f32>(x[c], x[c + 1u], x[c + 2u], x[c + 3u]), ok);
        } else {
            v = vec4<f32>(x[c], x[c + 1u], x[c + 2u], x[c + 3u]);
        }
        s[i / 4u] += (v.x + v.y) + (v.z + v.w);
        if (qt > BF16 && qt != Q8_0 && qt != MXFP4 && qt != IQ4_NL && qt != IQ4_XS) { v *= XSCALE; }
        r.v[i] = v;
    }
    r.lo = s.x;
    r.hi = s.y;
    return r;
}

fn f16_bits(h: u32) -> f32 {
    let sign = (h & 0x8000u) << 16u;
    let normal = bitcast<f32>((((h & 0x7fffu) << 13u) + 0x38000000u) | sign);
    let sub = bitcast<f32>(bitcast<u32>(f32(h & 0x3ffu) * 5.9604645e-8) | sign);
    return select(normal, sub, (h & 0x7c00u) == 0u);
}

// Bits s.. of the 64-bit pair (b:a), s < 32: the word at a byte offset that is not aligned.
fn funnel(a: u32, b: u32, s: u32) -> u32 {
    return (a >> s) | ((b << (31u - s)) << 1u);
}

// A block at byte `o` that starts with its f16 scale (2-byte aligned, as Q4_0, Q5_0, Q8_0 and
// IQ4_NL): the scale, the index of the word holding the bytes after it, and the funnel shift
// that aligns them.
struct F16Head { d: f32, j0: u32, s2: u32 }
fn f16_head(o: u32) -> F16Head {
    let sh = (o & 3u) * 8u;
    return F16Head(f16_bits((w[o >> 2u] >> sh) & 0xffffu), (o + 2u) >> 2u, (sh + 16u) & 31u);
}

// Signed int-to-float conversion (unsigned conversion is a long sequence on some CPUs);
// every field converted here is below 2^31.
fn cvt(v: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(bitcast<vec4<i32>>(v));
}

// Per type: unit u (values 32u .. 32u + 32) of the row starting at byte `rb`, dotted with x.
// Ops per weight are counted in the inner loop (int: integer ALU, per 8 lanes on a CPU).

// Q4_1 (20-byte blocks, word aligned): per 8 weights 1 shift + 8 AND, 8 conversions, 8 FMA:
// 1.1 int + 2 float per weight; the header word (d, m) once per 32 weights.
fn mv_q4_1(rb: u32, u: u32, xv: X32) -> f32 {
    let o = (rb + u * 20u) >> 2u;
    let dm = w[o];
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let q = w[o + 1u + i];
        s += dot(cvt(vec4<u32>(q) & M4), xv.v[i]) + dot(cvt(vec4<u32>(q >> 4u) & M4), xv.v[4u + i]);
    }
    return f16_bits(dm & 0xffffu) * s + f16_bits(dm >> 16u) * (xv.lo + xv.hi);
}

// Q4_0 (18-byte blocks, 2-byte aligned): as Q4_1 plus one funnel shift (4 int ops) per word.
fn mv_q4_0(rb: u32, u: u32, xv: X32) -> f32 {
    let h = f16_head(rb + u * 18u);
    var a = w[h.j0];
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let b = w[h.j0 + 1u + i];
        let q = funnel(a, b, h.s2);
        a = b;
        s += dot(cvt(vec4<u32>(q) & M4), xv.v[i]) + dot(cvt(vec4<u32>(q >> 4u) & M4), xv.v[4u + i]);
    }
    return h.d * (s - 8.0 * (xv.lo + xv.hi));
}

// Q8_0 (34-byte blocks, 2-byte aligned): per 4 weights a funnel shift (4 int), 3 shifts and
// 3 ANDs to put each i8 at the top of a word (exactly q * 2^24 as i32), 4 conversions, 4 FMA:
// 2.5 int + 2 float per weight.
fn mv_q8_0(rb: u32, u: u32, xv: X32) -> f32 {
    let h = f16_head(rb + u * 34u);
    var a = w[h.j0];
    var s = 0.0;
    for (var i = 0u; i < 8u; i++) {
        let b = w[h.j0 + 1u + i];
        let q = funnel(a, b, h.s2);
        a = b;
        s += dot(cvt((vec4<u32>(q) << vec4<u32>(24u, 16u, 8u, 0u)) & vec4<u32>(0xff000000u)), xv.v[i]);
    }
    return h.d * 5.9604644775390625e-08 * s;
}

// MXFP4 (17-byte blocks, any alignment): E2M1 is not linear, ~8 int ops per weight.
fn mv_mxfp4(rb: u32, u: u32, xv: X32) -> f32 {
    let o = rb + u * 17u;
    let sh = (o & 3u) * 8u;
    let e = (w[o >> 2u] >> sh) & 0xffu;
    let d = select(bitcast<f32>((e - 1u) << 23u), bitcast<f32>(0x00200000u << e), e < 2u);
    let s2 = (sh + 8u) & 31u;
    let j0 = (o + 1u) >> 2u;
    var a = w[j0];
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let b = w[j0 + 1u + i];
        let q = funnel(a, b, s2);
        a = b;
        let n = vec4<u32>(q) >> SH;
        s += dot(e2m1x2(n & vec4<u32>(15u)), xv.v[i]) + dot(e2m1x2((n >> vec4<u32>(4u)) & vec4<u32>(15u)), xv.v[4u + i]);
    }
    return d * s;
}

// Scale and min of sub-block j of a Q4_K/Q5_K super-block from its 12 scale bytes (words
// w1, w2, w3); see scale_min_k4.
fn scale_min_words(w1: u32, w2: u32, w3: u32, j: u32) -> vec2<f32> {
    let b = (j % 4u) * 8u;
    let ls = (w1 >> b) & 0xffu;
    let lm = (w2 >> b) & 0xffu;
    let h = (w3 >> b) & 0xffu;
    let sc = select((h & 15u) | ((ls >> 6u) << 4u), ls & 63u, j < 4u);
    let mn = select((h >> 4u) | ((lm >> 6u) << 4u), lm & 63u, j < 4u);
    return vec2<f32>(f32(sc), f32(mn));
}

// Q4_K (144-byte super-blocks, word aligned; a unit is one 32-value sub-block): per 4 weights
// 1 shift + 4 AND, 4 conversions, 4 FMA: 1.25 int + 2 float per weight.
fn mv_q4_k(rb: u32, u: u32, xv: X32) -> f32 {
    let o = (rb + (u / 8u) * 144u) >> 2u;
    let j = u % 8u;
    let dd = w[o];
    let sm = scale_min_words(w[o + 1u], w[o + 2u], w[o + 3u], j);
    let qo = o + 4u + (j / 2u) * 8u;
    let sh = (j % 2u) * 4u;
    var s = 0.0;
    for (var i = 0u; i < 8u; i++) {
        s += dot(cvt(vec4<u32>(w[qo + i] >> sh) & M4), xv.v[i]);
    }
    return f16_bits(dd & 0xffffu) * sm.x * s - f16_bits(dd >> 16u) * sm.y * (xv.lo + xv.hi);
}

// Q5_K (176-byte super-blocks): the fifth bit of each byte joins its nibble in place: per 4
// weights 6 int ops + 4 AND, 4 conversions, 4 FMA: 2.5 int + 2 float per weight.
fn mv_q5_k(rb: u32, u: u32, xv: X32) -> f32 {
    let o = (rb + (u / 8u) * 176u) >> 2u;
    let j = u % 8u;
    let dd = w[o];
    let sm = scale_min_words(w[o + 1u], w[o + 2u], w[o + 3u], j);
    let qo = o + 12u + (j / 2u) * 8u;
    let sh = (j % 2u) * 4u;
    var s = 0.0;
    for (var i = 0u; i < 8u; i++) {
        let f = ((w[qo + i] >> sh) & 0x0f0f0f0fu) | (((w[o + 4u + i] >> j) & 0x01010101u) << 4u);
        s += dot(cvt(vec4<u32>(f) & M8), xv.v[i]);
    }
    return f16_bits(dd & 0xffffu) * sm.x * s - f16_bits(dd >> 16u) * sm.y * (xv.lo + xv.hi);
}

// Q6_K (210-byte super-blocks, 2-byte aligned): 6-bit fields put together in place from a
// nibble word and a 2-bit word (two funnel shifts, 6 int ops) per 4 weights, 4 AND, 4
// conversions, 4 FMA: 4.5 int + 2 float per weight. One i8 scale per 16 values.
fn mv_q6_k(rb: u32, u: u32, xv: X32) -> f32 {
    let o = rb + (u / 8u) * 210u;
    let j = u % 8u;
    let half = j / 4u;
    let i = j % 4u;
    let ql = o + half * 64u + (i % 2u) * 32u;
    let qh = o + 128u + half * 32u;
    let shl = (ql & 3u) * 8u;
    let shh = (qh & 3u) * 8u;
    let lo0 = ql >> 2u;
    let hi0 = qh >> 2u;
    let nsh = (i / 2u) * 4u;
    var s = vec2<f32>(0.0);
    for (var k = 0u; k < 8u; k++) {
        let a = funnel(w[lo0 + k], w[lo0 + k + 1u], shl);
        let b = funnel(w[hi0 + k], w[hi0 + k + 1u], shh);
        let f = ((a >> nsh) & 0x0f0f0f0fu) | (((b >> (2u * i)) & 0x03030303u) << 4u);
        s[k / 4u] += dot(cvt(vec4<u32>(f) & M8), xv.v[k]);
    }
    let sc = o + 192u + 2u * j;
    let scw = funnel(w[sc >> 2u], w[(sc >> 2u) + 1u], (sc & 3u) * 8u);
    let sc0 = f32(bitcast<i32>(scw << 24u) >> 24u);
    let sc1 = f32(bitcast<i32>(scw << 16u) >> 24u);
    let dd = o + 208u;
    let d = f16_bits((w[dd >> 2u] >> ((dd & 3u) * 8u)) & 0xffffu);
    return d * (sc0 * (s.x - 32.0 * xv.lo) + sc1 * (s.y - 32.0 * xv.hi));
}

// Bits 0..4 of `b` moved to bit 4 of bytes 0..4 (the fifth bits of 4 Q5_0/Q5_1 values in
// place): one multiply places bit k at 8k (no two partial products meet), 5 int ops.
fn spread4(b: u32) -> u32 {
    return (((b & 15u) * 0x00204081u) & 0x01010101u) << 4u;
}

// Q5_1 (24-byte blocks, word aligned): nibbles as Q4_1 with the fifth bits of each 4 values
// or-ed in on the whole word (spread4): per 8 weights 3 + 2 * 6 int ops on words, 8 AND, 8
// conversions, 8 FMA: 2.9 int + 2 float per weight; the header and fifth-bit words once per 32.
fn mv_q5_1(rb: u32, u: u32, xv: X32) -> f32 {
    let o = (rb + u * 24u) >> 2u;
    let dm = w[o];
    let qh = w[o + 1u];
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let q = w[o + 2u + i];
        let lo = (q & 0x0f0f0f0fu) | spread4(qh >> (4u * i));
        let hi = ((q >> 4u) & 0x0f0f0f0fu) | spread4(qh >> (16u + 4u * i));
        s += dot(cvt(vec4<u32>(lo) & M8), xv.v[i]) + dot(cvt(vec4<u32>(hi) & M8), xv.v[4u + i]);
    }
    return f16_bits(dm & 0xffffu) * s + f16_bits(dm >> 16u) * (xv.lo + xv.hi);
}

// Q5_0 (22-byte blocks, 2-byte aligned): as Q5_1 plus one funnel shift (4 int ops) per word:
// 3.4 int + 2 float per weight.
fn mv_q5_0(rb: u32, u: u32, xv: X32) -> f32 {
    let h = f16_head(rb + u * 22u);
    // The fifth bits at o + 2 and the nibbles at o + 6 share one alignment.
    let qh = funnel(w[h.j0], w[h.j0 + 1u], h.s2);
    var a = w[h.j0 + 1u];
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let b = w[h.j0 + 2u + i];
        let q = funnel(a, b, h.s2);
        a = b;
        let lo = (q & 0x0f0f0f0fu) | spread4(qh >> (4u * i));
        let hi = ((q >> 4u) & 0x0f0f0f0fu) | spread4(qh >> (16u + 4u * i));
        s += dot(cvt(vec4<u32>(lo) & M8), xv.v[i]) + dot(cvt(vec4<u32>(hi) & M8), xv.v[4u + i]);
    }
    return h.d * (s - 16.0 * (xv.lo + xv.hi));
}

// IQ4_NL (18-byte blocks, 2-byte aligned; inputs not prescaled): words as Q4_0, each nibble
// looked up by `iq4`: 13.5 int + 1 conversion + 1 FMA per weight.
fn mv_iq4_nl(rb: u32, u: u32, xv: X32) -> f32 {
    let h = f16_head(rb + u * 18u);
    var a = w[h.j0];
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let b = w[h.j0 + 1u + i];
        let n = vec4<u32>(funnel(a, b, h.s2)) >> SH;
        a = b;
        s += dot(iq4(n & vec4<u32>(15u)), xv.v[i]) + dot(iq4((n >> vec4<u32>(4u)) & vec4<u32>(15u)), xv.v[4u + i]);
    }
    return h.d * s;
}

// IQ4_XS (136-byte super-blocks, word aligned; a unit is one sub-block; inputs not
// prescaled): the scale from the header words, 4 aligned quant words, lookups as IQ4_NL:
// 13 int + 1 conversion + 1 FMA per weight.
fn mv_iq4_xs(rb: u32, u: u32, xv: X32) -> f32 {
    let o = (rb + (u / 8u) * 136u) >> 2u;
    let j = u % 8u;
    let h = w[o];
    let ls = ((w[o + 1u] >> (4u * j)) & 15u) | (((h >> (16u + 2u * j)) & 3u) << 4u);
    let qo = o + 2u + 4u * j;
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let n = vec4<u32>(w[qo + i]) >> SH;
        s += dot(iq4(n & vec4<u32>(15u)), xv.v[i]) + dot(iq4((n >> vec4<u32>(4u)) & vec4<u32>(15u)), xv.v[4u + i]);
    }
    return f16_bits(h & 0xffffu) * f32(i32(ls) - 32) * s;
}

// Q2_K (84-byte super-blocks, word aligned): 2-bit fields masked in place, per 4 weights
// 1 shift + 4 AND, 4 conversions, 4 FMA: 1.25 int + 2 float per weight. Two scale/min
// bytes per unit, read as one word.
fn mv_q2_k(rb: u32, u: u32, xv: X32) -> f32 {
    let o = (rb + (u / 8u) * 84u) >> 2u;
    let j = u % 8u;
    // Scale bytes 2j and 2j + 1 (values 32j .. 32j + 16 and the next 16).
    let scw = w[o + j / 2u] >> ((j % 2u) * 16u);
    let qo = o + 4u + (j / 4u) * 8u;
    let sh = (j % 4u) * 2u;
    var s = vec2<f32>(0.0);
    for (var k = 0u; k < 8u; k++) {
        s[k / 4u] += dot(cvt(vec4<u32>(w[qo + k] >> sh) & M2), xv.v[k]);
    }
    let dd = w[o + 20u];
    let sc = f32(scw & 15u) * s.x + f32((scw >> 8u) & 15u) * s.y;
    let mn = f32((scw >> 4u) & 15u) * xv.lo + f32((scw >> 12u) & 15u) * xv.hi;
    return f16_bits(dd & 0xffffu) * sc - f16_bits(dd >> 16u) * mn;
}

// Q3_K (110-byte super-blocks, 2-byte aligned): 3-bit fields put together in place from a
// 2-bit word and a high-bit word (two funnel shifts, 6 int ops) per 4 weights, 4 AND, 4
// conversions, 4 FMA: 5 int + 2 float per weight. Two 6-bit scales per unit.
fn mv_q3_k(rb: u32, u: u32, xv: X32) -> f32 {
    let o = rb + (u / 8u) * 110u;
    let j = u % 8u;
    let i = j % 4u;
    let sh = (o & 3u) * 8u;
    let lo0 = (o + 32u + (j / 4u) * 32u) >> 2u;
    let hi0 = o >> 2u;
    let hb = j; // 4 * (j / 4) + j % 4: the bit of the high bytes
    var s = vec2<f32>(0.0);
    for (var k = 0u; k < 8u; k++) {
        let a = funnel(w[lo0 + k], w[lo0 + k + 1u], sh);
        let b = funnel(w[hi0 + k], w[hi0 + k + 1u], sh);
        let f = ((a >> (2u * i)) & 0x03030303u) | (((b >> hb) & 0x01010101u) << 2u);
        s[k / 4u] += dot(cvt(vec4<u32>(f) & M8), xv.v[k]);
    }
    // Scales 2j and 2j + 1: adjacent low-nibble bytes and adjacent high-bit bytes.
    let sb = o + 96u;
    let lw = u16_at(sb + (2u * j) % 8u) >> (4u * (j / 4u));
    let hw = u16_at(sb + 8u + (2u * j) % 4u) >> (2u * (j / 2u));
    let sc0 = f32(i32((lw & 15u) | ((hw & 3u) << 4u)) - 32);
    let sc1 = f32(i32(((lw >> 8u) & 15u) | (((hw >> 8u) & 3u) << 4u)) - 32);
    let d = f16_bits(u16_at(o + 108u));
    return d * (sc0 * (s.x - 4.0 * xv.lo) + sc1 * (s.y - 4.0 * xv.hi));
}

// Float rows: 32 values, zero past the end of the row (x is zero there too, but the weights
// past the row may be anything).
fn mv_float(qt: u32, row: u32, u: u32, xv: X32) -> f32 {
    var s = 0.0;
    let c0 = u * 32u;
    let e = row * p.cols + c0;
    for (var k = 0u; k < 32u; k++) {
        let i = e + k;
        var f: f32;
        if (qt == F32) {
            f = bitcast<f32>(w[i]);
        } else if (qt == F16) {
            f = f16_at(2u * i);
        } else {
            f = bitcast<f32>(u16_at(2u * i) << 16u);
        }
        s += select(0.0, f, c0 + k < p.cols) * xv.v[k / 4u][k % 4u];
    }
    return s;
}

fn mv_unit(qt: u32, row: u32, u: u32, xv: X32) -> f32 {
    let rb = row * p.row_bytes;
    switch qt {
        case Q8_0: { return mv_q8_0(rb, u, xv); }
        case Q4_0: { return mv_q4_0(rb, u, xv); }
        case Q4_1: { return mv_q4_1(rb, u, xv); }
        case Q4_K: { return mv_q4_k(rb, u, xv); }
        case Q5_K: { return mv_q5_k(rb, u, xv); }
        case Q6_K: { return mv_q6_k(rb, u, xv); }
        case MXFP4: { return mv_mxfp4(rb, u, xv); }
        case Q5_0: { return mv_q5_0(rb, u, xv); }
        case Q5_1: { return mv_q5_1(rb, u, xv); }
        case Q2_K: { return mv_q2_k(rb, u, xv); }
        case Q3_K: { return mv_q3_k(rb, u, xv); }
        case IQ4_NL: { return mv_iq4_nl(rb, u, xv); }
        case IQ4_XS: { return mv_iq4_xs(rb, u, xv); }
        default: { return mv_float(qt, row, u, xv); }
    }
}

struct MvIds {
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
//#if subgroups
    @builtin(subgroup_id) sid: u32,
    @builtin(subgroup_size) sgs: u32,
    @builtin(subgroup_invocation_id) sii: u32,
//#endif
}

var<workgroup> mv_red: array<vec4<f32>, 256>; // MV_WG * MV_R

fn matvec_body(qt: u32, ids: MvIds) {
//#if subgroups
    // Lanes of a row in one subgroup whatever the driver's order of invocations.
    let li = ids.sid * ids.sgs + ids.sii;
//#else
    let li = ids.li;
//#endif
    let lanes = p.lanes;
    let lane = li % lanes;
    let row0 = ((ids.wid.x + ids.wid.y * ids.nwg.x) * (MV_WG / lanes) + li / lanes) * MV_R;
    let units = (p.cols + 31u) / 32u;
    // acc[r]: partial sums of row row0 + r, one component per token.
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var u = lane; u < units; u += lanes) {
        for (var t = 0u; t < p.n_tokens; t++) {
            let xv = load_x32(qt, t, u);
            let e = select(vec4<f32>(0.0), vec4<f32>(1.0), vec4<u32>(t) == vec4<u32>(0u, 1u, 2u, 3u));
            for (var r = 0u; r < MV_R; r++) {
                // Rows past the end compute the last row again and are never stored.
                acc[r] += e * mv_unit(qt, min(row0 + r, p.rows - 1u), u, xv);
            }
        }
    }
//#if subgroups
    for (var o = lanes / 2u; o > 0u; o >>= 1u) {
        for (var r = 0u; r < MV_R; r++) { acc[r] += subgroupShuffleXor(acc[r], o); }
    }
//#else
    for (var r = 0u; r < MV_R; r++) { mv_red[li * MV_R + r] = acc[r]; }
    workgroupBarrier();
    if (lane == 0u) {
        for (var k = 1u; k < lanes; k++) {
            for (var r = 0u; r < MV_R; r++) { acc[r] += mv_red[(li + k) * MV_R + r]; }
        }
    }
//#endif
    if (lane == 0u) {
        for (var r = 0u; r < MV_R; r++) {
            if (row0 + r < p.rows) {
                for (var t = 0u; t < p.n_tokens; t++) { store(t, row0 + r, acc[r][t]); }
            }
        }
    }
}

// 32 values (one block) of a row at column k0, dequantized with the block header read once:
// blocks of 32 decode both halves from one read of the header and of the 16 quant bytes;
// the super-block and float types take two 16-value reads.
alias V32 = array<vec4<f32>, 8>;

fn deq32(qt: u32, row: u32, k0: u32) -> V32 {
    var v: V32;
    let base = row * p.row_bytes;
    if (qt == Q8_0) {
        let o = base + (k0 / 32u) * 34u;
        let d = f16_at(o);
        let q0 = bytes16(o + 2u);
        let q1 = bytes16(o + 18u);
        for (var i = 0u; i < 4u; i++) {
            v[i] = vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(q0[i]) << (vec4<u32>(24u) - SH)) >> vec4<u32>(24u)) * d;
            v[4u + i] = vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(q1[i]) << (vec4<u32>(24u) - SH)) >> vec4<u32>(24u)) * d;
        }
    } else if (qt == Q4_0 || qt == Q4_1 || qt == MXFP4 || qt == Q5_0 || qt == Q5_1 || qt == IQ4_NL) {
        var o: u32;
        var q: vec4<u32>;
        var d: f32;
        var m = 0.0;
        var qh = 0u;
        if (qt == Q4_0) {
            o = base + (k0 / 32u) * 18u;
            d = f16_at(o);
            q = bytes16(o + 2u);
            m = -8.0 * d;
        } else if (qt == Q4_1) {
            o = base + (k0 / 32u) * 20u;
            d = f16_at(o);
            m = f16_at(o + 2u);
            q = bytes16(o + 4u);
        } else if (qt == Q5_0) {
            o = base + (k0 / 32u) * 22u;
            d = f16_at(o);
            qh = u16_at(o + 2u) | (u16_at(o + 4u) << 16u);
            q = bytes16(o + 6u);
            m = -16.0 * d;
        } else if (qt == Q5_1) {
            o = base + (k0 / 32u) * 24u;
            d = f16_at(o);
            m = f16_at(o + 2u);
            qh = u16_at(o + 4u) | (u16_at(o + 6u) << 16u);
            q = bytes16(o + 8u);
        } else if (qt == IQ4_NL) {
            o = base + (k0 / 32u) * 18u;
            d = f16_at(o);
            q = bytes16(o + 2u);
        } else {
            o = base + (k0 / 32u) * 17u;
            let e = byte_at(o);
            d = select(bitcast<f32>((e - 1u) << 23u), bitcast<f32>(0x00200000u << e), e < 2u);
            q = bytes16(o + 1u);
        }
        let lo = nibbles(q, 0u);
        let hi = nibbles(q, 4u);
        for (var i = 0u; i < 4u; i++) {
            if (qt == MXFP4) {
                v[i] = e2m1x2(lo[i]) * d;
                v[4u + i] = e2m1x2(hi[i]) * d;
            } else if (qt == IQ4_NL) {
                v[i] = d * iq4(lo[i]);
                v[4u + i] = d * iq4(hi[i]);
            } else if (qt == Q5_0 || qt == Q5_1) {
                v[i] = d * vec4<f32>(lo[i] | fifth_bits(qh, i)) + vec4<f32>(m);
                v[4u + i] = d * vec4<f32>(hi[i] | fifth_bits(qh >> 16u, i)) + vec4<f32>(m);
            } else {
                v[i] = d * vec4<f32>(lo[i]) + vec4<f32>(m);
                v[4u + i] = d * vec4<f32>(hi[i]) + vec4<f32>(m);
            }
        }
    } else {
        let a = deq16(qt, row, k0);
        let b = deq16(qt, row, k0 + 16u);
        for (var i = 0u; i < 4u; i++) {
            v[i] = a[i];
            v[4u + i] = b[i];
        }
    }
    return v;
}

// ---- prefill ----
// A workgroup of 64 invocations computes a tile of 64 tokens x 64 rows, each invocation a
// register tile of 8 rows x 8 tokens. Per step of 32 columns (one quant block, or one
// sub-block of a super-block) invocation i dequantizes the step's 32 weights of row i once
// (its block header read once) into workgroup memory, and stages 32 inputs; after one barrier
// every weight is used by all 64 tokens: per column, four vector reads from workgroup memory
// feed 64 multiply-adds. Two barriers per 32 columns.
const MM_WG: u32 = 64u;
const MM_ROWS: u32 = 64u;
const MM_TOKENS: u32 = 64u;
// Column k of the step: ws[k * 16 + i] holds rows 4i .. 4i + 4, xs[k * 16 + i] tokens 4i .. 4i + 4.
var<workgroup> ws: array<vec4<f32>, 512>;
var<workgroup> xs: array<vec4<f32>, 512>;

fn matmat_body(qt: u32, li: u32, wid: vec3<u32>) {
    let tx = li % 8u; // rows 8tx .. 8tx + 8
    let ty = li / 8u; // tokens 8ty .. 8ty + 8
    let n0 = wid.x * MM_ROWS;
    let m0 = wid.y * MM_TOKENS;
    let nt = min(MM_TOKENS, p.n_tokens - m0);
    let wrow = min(n0 + li, p.rows - 1u);
    // acc[2j + h][i]: row 8tx + 4h + i, token 8ty + j.
    var acc: array<vec4<f32>, 16>;
    for (var k0 = 0u; k0 < p.cols; k0 += 32u) {
        let wv = deq32(qt, wrow, k0);
        for (var k = 0u; k < 32u; k++) { ws[k * 16u + li / 4u][li % 4u] = wv[k / 4u][k % 4u]; }
        // Inputs: adjacent invocations read adjacent columns of a token.
        for (var j = 0u; j < 32u; j++) {
            let f = j * MM_WG + li;
            let t = f / 32u;
            let k = f % 32u;
            var v = 0.0;
            if (t < nt && k0 + k < p.cols) { v = x[p.x_offset + (m0 + t) * p.x_stride + k0 + k]; }
            xs[k * 16u + t / 4u][t % 4u] = v;
        }
        workgroupBarrier();
        for (var k = 0u; k < 32u; k++) {
            let b0 = ws[k * 16u + 2u * tx];
            let b1 = ws[k * 16u + 2u * tx + 1u];
            let a0 = xs[k * 16u + 2u * ty];
            let a1 = xs[k * 16u + 2u * ty + 1u];
            acc[0] += a0.x * b0; acc[1] += a0.x * b1; acc[2] += a0.y * b0; acc[3] += a0.y * b1;
            acc[4] += a0.z * b0; acc[5] += a0.z * b1; acc[6] += a0.w * b0; acc[7] += a0.w * b1;
            acc[8] += a1.x * b0; acc[9] += a1.x * b1; acc[10] += a1.y * b0; acc[11] += a1.y * b1;
            acc[12] += a1.z * b0; acc[13] += a1.z * b1; acc[14] += a1.w * b0; acc[15] += a1.w * b1;
        }
        workgroupBarrier();
    }
    for (var j = 0u; j < 8u; j++) {
        let t = 8u * ty + j;
        if (t < nt) {
            for (var i = 0u; i < 8u; i++) {
                let r = n0 + 8u * tx + i;
                if (r < p.rows) { store(m0 + t, r, acc[2u * j + i / 4u][i % 4u]); }
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
fn matvec_f32(ids: MvIds) { matvec_body(F32, ids); }
@compute @workgroup_size(64)
fn matmat_f32(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(F32, li, wid); }
@compute @workgroup_size(64)
fn embed_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(F32, gid, wid); }

@compute @workgroup_size(64)
fn matvec_f16(ids: MvIds) { matvec_body(F16, ids); }
@compute @workgroup_size(64)
fn matmat_f16(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(F16, li, wid); }
@compute @workgroup_size(64)
fn embed_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(F16, gid, wid); }

@compute @workgroup_size(64)
fn matvec_bf16(ids: MvIds) { matvec_body(BF16, ids); }
@compute @workgroup_size(64)
fn matmat_bf16(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(BF16, li, wid); }
@compute @workgroup_size(64)
fn embed_bf16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(BF16, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q8_0(ids: MvIds) { matvec_body(Q8_0, ids); }
@compute @workgroup_size(64)
fn matmat_q8_0(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q8_0, li, wid); }
@compute @workgroup_size(64)
fn embed_q8_0(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q8_0, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q4_0(ids: MvIds) { matvec_body(Q4_0, ids); }
@compute @workgroup_size(64)
fn matmat_q4_0(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q4_0, li, wid); }
@compute @workgroup_size(64)
fn embed_q4_0(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q4_0, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q4_1(ids: MvIds) { matvec_body(Q4_1, ids); }
@compute @workgroup_size(64)
fn matmat_q4_1(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q4_1, li, wid); }
@compute @workgroup_size(64)
fn embed_q4_1(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q4_1, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q4_k(ids: MvIds) { matvec_body(Q4_K, ids); }
@compute @workgroup_size(64)
fn matmat_q4_k(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q4_K, li, wid); }
@compute @workgroup_size(64)
fn embed_q4_k(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q4_K, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q5_k(ids: MvIds) { matvec_body(Q5_K, ids); }
@compute @workgroup_size(64)
fn matmat_q5_k(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q5_K, li, wid); }
@compute @workgroup_size(64)
fn embed_q5_k(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q5_K, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q6_k(ids: MvIds) { matvec_body(Q6_K, ids); }
@compute @workgroup_size(64)
fn matmat_q6_k(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q6_K, li, wid); }
@compute @workgroup_size(64)
fn embed_q6_k(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q6_K, gid, wid); }

@compute @workgroup_size(64)
fn matvec_mxfp4(ids: MvIds) { matvec_body(MXFP4, ids); }
@compute @workgroup_size(64)
fn matmat_mxfp4(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(MXFP4, li, wid); }
@compute @workgroup_size(64)
fn embed_mxfp4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(MXFP4, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q5_0(ids: MvIds) { matvec_body(Q5_0, ids); }
@compute @workgroup_size(64)
fn matmat_q5_0(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q5_0, li, wid); }
@compute @workgroup_size(64)
fn embed_q5_0(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q5_0, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q5_1(ids: MvIds) { matvec_body(Q5_1, ids); }
@compute @workgroup_size(64)
fn matmat_q5_1(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q5_1, li, wid); }
@compute @workgroup_size(64)
fn embed_q5_1(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q5_1, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q2_k(ids: MvIds) { matvec_body(Q2_K, ids); }
@compute @workgroup_size(64)
fn matmat_q2_k(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q2_K, li, wid); }
@compute @workgroup_size(64)
fn embed_q2_k(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q2_K, gid, wid); }

@compute @workgroup_size(64)
fn matvec_q3_k(ids: MvIds) { matvec_body(Q3_K, ids); }
@compute @workgroup_size(64)
fn matmat_q3_k(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(Q3_K, li, wid); }
@compute @workgroup_size(64)
fn embed_q3_k(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(Q3_K, gid, wid); }

@compute @workgroup_size(64)
fn matvec_iq4_nl(ids: MvIds) { matvec_body(IQ4_NL, ids); }
@compute @workgroup_size(64)
fn matmat_iq4_nl(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(IQ4_NL, li, wid); }
@compute @workgroup_size(64)
fn embed_iq4_nl(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(IQ4_NL, gid, wid); }

@compute @workgroup_size(64)
fn matvec_iq4_xs(ids: MvIds) { matvec_body(IQ4_XS, ids); }
@compute @workgroup_size(64)
fn matmat_iq4_xs(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) { matmat_body(IQ4_XS, li, wid); }
@compute @workgroup_size(64)
fn embed_iq4_xs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) { embed_body(IQ4_XS, gid, wid); }
