//! Plain Rust references of every kernel, written for clarity rather than speed.
//! Tests compare each GPU kernel with these on random inputs.

use super::QType;
use crate::error::{Error, Result};

/// bf16 bits to f32 (exact).
pub fn bf16(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// FP4 E2M1 values by nibble.
pub const FP4: [f32; 16] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0];

/// Dequantizes one MXFP4 row: `blocks` holds cols/2 bytes, `scales` cols/32 bytes.
pub fn mxfp4_row(blocks: &[u8], scales: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(blocks.len() * 2);
    for (g, &s) in scales.iter().enumerate() {
        let scale = 2f32.powi(s as i32 - 127);
        for &b in &blocks[g * 16..g * 16 + 16] {
            out.push(FP4[(b & 15) as usize] * scale);
            out.push(FP4[(b >> 4) as usize] * scale);
        }
    }
    out
}

pub fn embed(table: &[u16], hidden: usize, tokens: &[u32]) -> Vec<f32> {
    tokens.iter().flat_map(|&t| table[t as usize * hidden..(t as usize + 1) * hidden].iter().map(|&b| bf16(b))).collect()
}

pub fn rmsnorm(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let h = weight.len();
    x.chunks(h)
        .flat_map(|row| {
            let ms = row.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>() / h as f64;
            let scale = 1.0 / (ms + eps as f64).sqrt();
            row.iter().zip(weight).map(move |(v, w)| (*v as f64 * scale) as f32 * w).collect::<Vec<_>>()
        })
        .collect()
}

/// y[t, r] = x[t] . W[r] + bias[r] with W bf16 [rows, cols].
pub fn matmul_bf16(x: &[f32], w: &[u16], bias: Option<&[f32]>, rows: usize, cols: usize) -> Vec<f32> {
    let n = x.len() / cols;
    let mut y = vec![0f32; n * rows];
    for t in 0..n {
        for r in 0..rows {
            let mut acc = 0f64;
            for c in 0..cols {
                acc += x[t * cols + c] as f64 * bf16(w[r * cols + c]) as f64;
            }
            y[t * rows + r] = acc as f32 + bias.map_or(0.0, |b| b[r]);
        }
    }
    y
}

/// NeoX half-split rotation of one head vector by (cos, sin) pairs.
pub fn rope(v: &[f32], cos_sin: &[f32]) -> Vec<f32> {
    let half = v.len() / 2;
    let mut out = vec![0f32; v.len()];
    for i in 0..half {
        let (c, s) = (cos_sin[2 * i], cos_sin[2 * i + 1]);
        out[i] = v[i] * c - v[i + half] * s;
        out[i + half] = v[i + half] * c + v[i] * s;
    }
    out
}

/// RoPE of one head with interleaved pairs (x[2i], x[2i+1]) (llama as stored in GGUF).
pub fn rope_interleaved(v: &[f32], cos_sin: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; v.len()];
    for i in 0..v.len() / 2 {
        let (c, s) = (cos_sin[2 * i], cos_sin[2 * i + 1]);
        out[2 * i] = v[2 * i] * c - v[2 * i + 1] * s;
        out[2 * i + 1] = v[2 * i + 1] * c + v[2 * i] * s;
    }
    out
}

/// silu(gate) * up, element-wise.
pub fn silu_mul(gate: &[f32], up: &[f32]) -> Vec<f32> {
    gate.iter().zip(up).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect()
}

/// Attention of queries q [T, Hq, D] at positions pos0.. over keys/values [N, Hkv, D] at
/// positions 0..N (N >= pos0 + T), with per-head sinks and an optional window (0 = none).
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    sinks: &[f32],
    n_q_heads: usize,
    n_kv_heads: usize,
    d: usize,
    pos0: usize,
    window: usize,
) -> Vec<f32> {
    let t_n = q.len() / (n_q_heads * d);
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0f32; q.len()];
    for t in 0..t_n {
        let qp = pos0 + t;
        let lo = if window == 0 { 0 } else { (qp + 1).saturating_sub(window) };
        for h in 0..n_q_heads {
            let g = h / (n_q_heads / n_kv_heads);
            let qv = &q[(t * n_q_heads + h) * d..][..d];
            let scores: Vec<f64> = (lo..=qp)
                .map(|j| {
                    let kv = &k[(j * n_kv_heads + g) * d..][..d];
                    qv.iter().zip(kv).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>() * scale
                })
                .collect();
            let m = scores.iter().cloned().fold(sinks[h] as f64, f64::max);
            let denom = scores.iter().map(|s| (s - m).exp()).sum::<f64>() + (sinks[h] as f64 - m).exp();
            for c in 0..d {
                let num: f64 =
                    scores.iter().enumerate().map(|(i, s)| (s - m).exp() * v[((lo + i) * n_kv_heads + g) * d + c] as f64).sum();
                out[(t * n_q_heads + h) * d + c] = (num / denom) as f32;
            }
        }
    }
    out
}

/// Values as an f16 KV cache holds them (round to nearest even): feed `attention` keys and
/// values through this to get the reference of an f16 cache.
pub fn round_f16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
}

/// Unpacks f16 pairs packed in u32 words (value 2i in the low half of word i).
pub fn unpack_f16_pairs(words: &[u32]) -> Vec<f32> {
    words.iter().flat_map(|&w| [half::f16::from_bits(w as u16).to_f32(), half::f16::from_bits((w >> 16) as u16).to_f32()]).collect()
}

/// Top-k experts (ties to the lower index) and the softmax over their logits, per token.
pub fn topk_softmax(logits: &[f32], n_experts: usize, k: usize) -> (Vec<u32>, Vec<f32>) {
    let mut ids = Vec::new();
    let mut weights = Vec::new();
    for row in logits.chunks(n_experts) {
        let mut order: Vec<usize> = (0..n_experts).collect();
        order.sort_by(|&a, &b| row[b].partial_cmp(&row[a]).unwrap().then(a.cmp(&b)));
        let top = &order[..k];
        let m = row[top[0]];
        let sum: f32 = top.iter().map(|&e| (row[e] - m).exp()).sum();
        for &e in top {
            ids.push(e as u32);
            weights.push((row[e] - m).exp() / sum);
        }
    }
    (ids, weights)
}

/// The clamped SwiGLU of gpt-oss on interleaved (gate, up) pairs.
pub fn swiglu(gate_up: &[f32], alpha: f32, limit: f32) -> Vec<f32> {
    gate_up
        .chunks(2)
        .map(|p| {
            let g = p[0].min(limit);
            let u = p[1].clamp(-limit, limit);
            g / (1.0 + (-alpha * g).exp()) * (u + 1.0)
        })
        .collect()
}

/// y = W . x + bias for one expert's MXFP4 matrix of `rows` rows.
pub fn mxfp4_matvec(blocks: &[u8], scales: &[u8], bias: &[f32], rows: usize, cols: usize, x: &[f32]) -> Vec<f32> {
    let (bb, sb) = (cols / 2, cols / 32);
    (0..rows)
        .map(|r| {
            let w = mxfp4_row(&blocks[r * bb..(r + 1) * bb], &scales[r * sb..(r + 1) * sb]);
            (w.iter().zip(x).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>()) as f32 + bias[r]
        })
        .collect()
}

/// Index of the largest value, lowest index on ties.
/// Index of the largest value, the lowest on ties; NaN never wins unless all are NaN (then 0).
pub fn argmax(v: &[f32]) -> u32 {
    let mut best: Option<usize> = None;
    for (i, x) in v.iter().enumerate() {
        if !x.is_nan() && best.is_none_or(|b| *x > v[b]) {
            best = Some(i);
        }
    }
    best.unwrap_or(0) as u32
}

/// Dequantizes the first `n_values` values of GGUF tensor data of type `qtype`, in the order
/// and with the float operations of ggml's `dequantize_row_*` (so results match it bit for bit).
pub fn dequantize(qtype: QType, bytes: &[u8], n_values: usize) -> Result<Vec<f32>> {
    let (bv, bb) = (qtype.block_values() as usize, qtype.block_bytes() as usize);
    if !n_values.is_multiple_of(bv) {
        return Err(Error::Input(format!("{n_values} values are not whole {bv}-value blocks of {}", qtype.name())));
    }
    let n_blocks = n_values / bv;
    if bytes.len() < n_blocks * bb {
        return Err(Error::Input(format!("{} bytes hold fewer than {n_values} values of {}", bytes.len(), qtype.name())));
    }
    let block = qtype.info().dequantize;
    let mut out = Vec::with_capacity(n_values);
    for blk in bytes[..n_blocks * bb].chunks_exact(bb) {
        block(blk, &mut out);
    }
    Ok(out)
}

// One block of each type (the `dequantize` column of the type table in quant.rs).

fn f16_at(b: &[u8], i: usize) -> f32 {
    half::f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

pub(crate) fn dequantize_f32(blk: &[u8], out: &mut Vec<f32>) {
    out.push(f32::from_le_bytes([blk[0], blk[1], blk[2], blk[3]]));
}

pub(crate) fn dequantize_f16(blk: &[u8], out: &mut Vec<f32>) {
    out.push(f16_at(blk, 0));
}

pub(crate) fn dequantize_bf16(blk: &[u8], out: &mut Vec<f32>) {
    out.push(bf16(u16::from_le_bytes([blk[0], blk[1]])));
}

pub(crate) fn dequantize_q8_0(blk: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(blk, 0);
    out.extend(blk[2..34].iter().map(|&q| q as i8 as f32 * d));
}

pub(crate) fn dequantize_q4_0(blk: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(blk, 0);
    let qs = &blk[2..18];
    out.extend(qs.iter().map(|&q| d * ((q & 15) as i32 - 8) as f32));
    out.extend(qs.iter().map(|&q| d * ((q >> 4) as i32 - 8) as f32));
}

pub(crate) fn dequantize_q4_1(blk: &[u8], out: &mut Vec<f32>) {
    let (d, m) = (f16_at(blk, 0), f16_at(blk, 2));
    let qs = &blk[4..20];
    out.extend(qs.iter().map(|&q| d * (q & 15) as f32 + m));
    out.extend(qs.iter().map(|&q| d * (q >> 4) as f32 + m));
}

pub(crate) fn dequantize_mxfp4(blk: &[u8], out: &mut Vec<f32>) {
    let d = e8m0_half(blk[0]);
    let qs = &blk[1..17];
    out.extend(qs.iter().map(|&q| d * MXFP4_DOUBLED[(q & 15) as usize] as f32));
    out.extend(qs.iter().map(|&q| d * MXFP4_DOUBLED[(q >> 4) as usize] as f32));
}

pub(crate) fn dequantize_q4_k(blk: &[u8], out: &mut Vec<f32>) {
    q4_q5_k(blk, &[], &blk[16..144], out);
}

pub(crate) fn dequantize_q5_k(blk: &[u8], out: &mut Vec<f32>) {
    q4_q5_k(blk, &blk[16..48], &blk[48..176], out);
}

/// Q4_K and Q5_K (`qh` empty for Q4_K): 64 values per 32 bytes of nibbles, low nibbles first,
/// then high nibbles.
fn q4_q5_k(blk: &[u8], qh: &[u8], qs: &[u8], out: &mut Vec<f32>) {
    let (d, dmin) = (f16_at(blk, 0), f16_at(blk, 2));
    let scales = &blk[4..16];
    for j in 0..8 {
        let (sc, m) = scale_min_k4(scales, j);
        let (d1, m1) = (d * sc as f32, dmin * m as f32);
        for l in 0..32 {
            let byte = qs[(j / 2) * 32 + l];
            let mut q = if j % 2 == 0 { byte & 15 } else { byte >> 4 };
            if !qh.is_empty() {
                q |= ((qh[l] >> j) & 1) << 4;
            }
            out.push(d1 * q as f32 - m1);
        }
    }
}

pub(crate) fn dequantize_q6_k(blk: &[u8], out: &mut Vec<f32>) {
    let (ql, qh, scales) = (&blk[0..128], &blk[128..192], &blk[192..208]);
    let d = f16_at(blk, 208);
    for v in 0..256 {
        let (half, i, l) = (v / 128, (v % 128) / 32, v % 32);
        let low = ql[half * 64 + (i % 2) * 32 + l] >> ((i / 2) * 4) & 15;
        let high = (qh[half * 32 + l] >> (2 * i)) & 3;
        let q = (low | high << 4) as i32 - 32;
        out.push(d * scales[v / 16] as i8 as f32 * q as f32);
    }
}

pub(crate) fn dequantize_q5_0(blk: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(blk, 0);
    let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
    q5(&blk[6..22], qh, out, |q| d * (q as i32 - 16) as f32);
}

pub(crate) fn dequantize_q5_1(blk: &[u8], out: &mut Vec<f32>) {
    let (d, m) = (f16_at(blk, 0), f16_at(blk, 2));
    let qh = u32::from_le_bytes([blk[4], blk[5], blk[6], blk[7]]);
    q5(&blk[8..24], qh, out, |q| d * q as f32 + m);
}

/// Q5_0/Q5_1: value j < 16 is the low nibble of byte j, value j + 16 its high nibble, each with
/// bit j (j + 16) of `qh` as its fifth bit.
fn q5(qs: &[u8], qh: u32, out: &mut Vec<f32>, f: impl Fn(u8) -> f32) {
    for j in 0..32 {
        let nibble = if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 };
        out.push(f(nibble | (((qh >> j) & 1) as u8) << 4));
    }
}

/// Q2_K: 16 scale bytes (4-bit scale, 4-bit min per 16 values), 64 bytes of 2-bit quants,
/// f16 d, f16 dmin. Per 128 values: value 32i + l is bits 2i of byte l.
pub(crate) fn dequantize_q2_k(blk: &[u8], out: &mut Vec<f32>) {
    let (scales, qs) = (&blk[0..16], &blk[16..80]);
    let (d, dmin) = (f16_at(blk, 80), f16_at(blk, 82));
    for v in 0..256 {
        let (half, i, l) = (v / 128, (v % 128) / 32, v % 32);
        let q = (qs[half * 32 + l] >> (2 * i)) & 3;
        let sc = scales[v / 16];
        let (dl, ml) = (d * (sc & 15) as f32, dmin * (sc >> 4) as f32);
        out.push(dl * q as f32 - ml);
    }
}

/// Q3_K: 32 bytes of high bits, 64 bytes of 2-bit quants (laid out as Q2_K's), 12 bytes of
/// 6-bit scales, f16 d. Value 32i + l of each 128 takes bit 4 * half + i of high byte l; the
/// quant is the 2-bit value - 4 where that bit is clear.
pub(crate) fn dequantize_q3_k(blk: &[u8], out: &mut Vec<f32>) {
    let (hmask, qs, scales) = (&blk[0..32], &blk[32..96], &blk[96..108]);
    let d = f16_at(blk, 108);
    for v in 0..256 {
        let (half, i, l) = (v / 128, (v % 128) / 32, v % 32);
        let low = (qs[half * 32 + l] >> (2 * i)) & 3;
        let high = (hmask[l] >> (4 * half + i)) & 1;
        let q = low as i32 - if high == 0 { 4 } else { 0 };
        let dl = d * (q3_k_scale(scales, v / 16) as i32 - 32) as f32;
        out.push(dl * q as f32);
    }
}

/// 6-bit scale `i` (0..16) of a Q3_K super-block from its 12 packed bytes: the low 4 bits are
/// the low (i < 8) or high nibble of byte i % 8, the top 2 bits are bits 2 (i / 4) of byte
/// 8 + i % 4.
pub(crate) fn q3_k_scale(s: &[u8], i: usize) -> u8 {
    ((s[i % 8] >> (4 * (i / 8))) & 15) | (((s[8 + i % 4] >> (2 * (i / 4))) & 3) << 4)
}

/// The 16 values of the non-linear 4-bit types (IQ4_NL, IQ4_XS).
pub const IQ4_VALUES: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// IQ4_NL: f16 d, 16 quant bytes (nibbles as Q4_0) indexing `IQ4_VALUES`.
pub(crate) fn dequantize_iq4_nl(blk: &[u8], out: &mut Vec<f32>) {
    iq4(f16_at(blk, 0), &blk[2..18], out);
}

/// IQ4_XS: f16 d, 2 bytes of high scale bits, 4 bytes of low scale bits, 8 x 16 quant bytes;
/// 32-value sub-block j has the 6-bit scale (low nibble j of the 4 bytes) | (bits 2j of the
/// high pair) << 4, minus 32, and its nibbles as IQ4_NL.
pub(crate) fn dequantize_iq4_xs(blk: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(blk, 0);
    let high = u16::from_le_bytes([blk[2], blk[3]]);
    for j in 0..8 {
        let ls = ((blk[4 + j / 2] >> (4 * (j % 2))) & 15) | ((((high >> (2 * j)) & 3) as u8) << 4);
        iq4(d * (ls as i32 - 32) as f32, &blk[8 + 16 * j..24 + 16 * j], out);
    }
}

fn iq4(d: f32, qs: &[u8], out: &mut Vec<f32>) {
    out.extend(qs.iter().map(|&q| d * IQ4_VALUES[(q & 15) as usize] as f32));
    out.extend(qs.iter().map(|&q| d * IQ4_VALUES[(q >> 4) as usize] as f32));
}

/// ggml's MXFP4 values: E2M1 doubled, so the e8m0 scale is halved to match.
const MXFP4_DOUBLED: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// 2^(e - 128), subnormal for e < 2.
fn e8m0_half(e: u8) -> f32 {
    let bits = if e < 2 { 0x0020_0000u32 << e } else { (e as u32 - 1) << 23 };
    f32::from_bits(bits)
}

/// Scale and min `j` (0..8) from the 12 packed bytes of a Q4_K/Q5_K super-block: the first
/// four pairs sit in the low 6 bits of bytes 0..8; the others take 4 bits from bytes 8..12 and
/// their top 2 bits from the spare top bits of bytes 0..8.
fn scale_min_k4(s: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// y[t, r] = x[t] . W[r] + bias[r] with W [rows, cols] given as GGUF data of type `qtype`.
pub fn qmatmul(qtype: QType, w: &[u8], bias: Option<&[f32]>, rows: usize, cols: usize, x: &[f32]) -> Result<Vec<f32>> {
    let w = dequantize(qtype, w, rows * cols)?;
    let n = x.len() / cols;
    let mut y = vec![0f32; n * rows];
    for t in 0..n {
        for r in 0..rows {
            let acc: f64 = (0..cols).map(|c| x[t * cols + c] as f64 * w[r * cols + c] as f64).sum();
            y[t * rows + r] = acc as f32 + bias.map_or(0.0, |b| b[r]);
        }
    }
    Ok(y)
}
