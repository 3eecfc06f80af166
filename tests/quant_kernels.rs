//! GGUF-typed weights: the CPU dequantizer against the `gguf` Python package's output
//! (tests/fixtures/quant, written by tests/reference/quant_fixtures.py), and the GPU kernels
//! (`qmatmul` in its decode and prefill forms, `qembed`) against the CPU reference, with odd
//! row counts, bias, accumulation and matrices split over several small bindings.

mod common;

use common::check::{randn, read_f32};
use common::gpu_modes;
use rand::{rngs::StdRng, Rng, SeedableRng};
use wgpt::gpu::{Gpu, GpuOptions, Recorder};
use wgpt::ops::quant::TYPES;
use wgpt::ops::{cpu, qembed, qmatmul, MatmulIo, QMatrix, QType};

fn gpu(max_binding: Option<u64>) -> Gpu {
    pollster::block_on(Gpu::new(&GpuOptions { max_binding_bytes: max_binding, ..Default::default() })).expect("GPU adapter")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quant").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn file_name(t: QType) -> String {
    t.name().to_lowercase()
}

fn f16_bytes(v: f32) -> [u8; 2] {
    half::f16::from_f32(v).to_le_bytes()
}

/// Random but valid GGUF data for a [rows, cols] matrix: random quant bits, scales of sane
/// magnitude (f16 scales in about 1e-3..1e-1, e8m0 exponents near 2^-4).
fn random_matrix(rng: &mut StdRng, t: QType, rows: usize, cols: usize) -> Vec<u8> {
    let n_blocks = rows * cols / t.block_values() as usize;
    let bb = t.block_bytes() as usize;
    let mut out = Vec::with_capacity(n_blocks * bb);
    for _ in 0..n_blocks {
        let mut blk: Vec<u8> = (0..bb).map(|_| rng.random()).collect();
        let mut scale = |blk: &mut Vec<u8>, at: usize| {
            let s = 10f32.powf(rng.random_range(-3.0..-1.0));
            blk[at..at + 2].copy_from_slice(&f16_bytes(s));
        };
        match t {
            QType::F32 => blk.copy_from_slice(&rng.random_range(-2.0f32..2.0).to_le_bytes()),
            QType::F16 => blk.copy_from_slice(&f16_bytes(rng.random_range(-2.0..2.0))),
            QType::BF16 => blk.copy_from_slice(&half::bf16::from_f32(rng.random_range(-2.0..2.0)).to_le_bytes()),
            QType::Q8_0 | QType::Q4_0 | QType::Q5_0 | QType::IQ4_NL | QType::IQ4_XS => scale(&mut blk, 0),
            QType::Q4_1 | QType::Q5_1 | QType::Q4_K | QType::Q5_K => {
                scale(&mut blk, 0);
                scale(&mut blk, 2);
            }
            QType::Q2_K => {
                scale(&mut blk, 80);
                scale(&mut blk, 82);
            }
            QType::Q3_K => scale(&mut blk, 108),
            QType::Q6_K => scale(&mut blk, 208),
            QType::Mxfp4 => blk[0] = rng.random_range(120..132),
        }
        out.extend(blk);
    }
    out
}

/// Columns for a type: a few blocks, and for the float types a count that is not a multiple
/// of 8 (the kernels' chunk).
fn cols_for(t: QType) -> usize {
    match t.block_values() {
        1 => 261,
        32 => 320,
        _ => 512,
    }
}

#[test]
fn cpu_dequantize_matches_gguf_package() {
    for t in QType::ALL {
        let data = fixture(&format!("{}.bin", file_name(t)));
        let want: Vec<f32> = fixture(&format!("{}.f32", file_name(t)))
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let got = cpu::dequantize(t, &data, want.len()).unwrap();
        assert_eq!(got.len(), want.len(), "{}", t.name());
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            // Bit for bit: the same float operations in the same order.
            assert_eq!(a.to_bits(), b.to_bits(), "{}[{i}]: got {a}, want {b}", t.name());
        }
        assert!(want.iter().any(|v| *v != 0.0), "{}: fixture is all zeros", t.name());
        eprintln!("{}: {} values bit-exact", t.name(), want.len());
    }
}

#[test]
fn types_and_sizes() {
    assert_eq!(QType::from_ggml_id(3), Some(QType::Q4_1));
    assert_eq!(QType::from_ggml_id(39), Some(QType::Mxfp4));
    assert_eq!(QType::from_ggml_id(30), Some(QType::BF16));
    assert_eq!(QType::from_ggml_id(6), Some(QType::Q5_0));
    assert_eq!(QType::from_ggml_id(23), Some(QType::IQ4_XS));
    assert_eq!(QType::from_ggml_id(16), None);
    assert_eq!(QType::Q3_K.row_bytes(512).unwrap(), 220);
    assert_eq!(QType::Q5_0.row_bytes(64).unwrap(), 44);
    assert_eq!(QType::Q4_0.row_bytes(576).unwrap(), 324);
    assert_eq!(QType::Q6_K.row_bytes(512).unwrap(), 420);
    assert!(QType::Q4_K.row_bytes(576).is_err());
    assert!(cpu::dequantize(QType::Q8_0, &[0; 33], 32).is_err());
    assert!(cpu::dequantize(QType::Q8_0, &[0; 34], 31).is_err());
}

/// The type table is the one list of types: ids, names and sizes agree with it, every row's
/// entry points exist, and the WGSL type constants (the `switch` cases of matmul_quant.wgsl)
/// are the rows' positions.
#[test]
fn type_table_matches_the_wgsl_type_ids() {
    let src = include_str!("../shaders/matmul_quant.wgsl");
    // The block of type constants: from "// Type ids" to the next section.
    let block = src.split_once("// Type ids").expect("type id block").1.split_once("// ----").unwrap().0;
    let mut wgsl = std::collections::BTreeMap::new();
    for line in block.lines().filter(|l| l.starts_with("const ")) {
        // `const Q4_K: u32 = 6u;`
        let (name, value) = line["const ".len()..].split_once(": u32 = ").unwrap_or_else(|| panic!("{line}"));
        let v: usize = value.strip_suffix("u;").and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{line}"));
        wgsl.insert(name.to_string(), v);
    }
    assert_eq!(TYPES.len(), QType::ALL.len());
    let mut ids = std::collections::BTreeSet::new();
    for (i, row) in TYPES.iter().enumerate() {
        assert_eq!(row.qtype, QType::ALL[i]);
        assert_eq!(QType::from_ggml_id(row.ggml_id), Some(row.qtype), "{}", row.name);
        assert!(ids.insert(row.ggml_id), "ggml id {} twice", row.ggml_id);
        assert_eq!(wgsl.get(row.name), Some(&i), "{}: its WGSL type constant must be {i}", row.name);
        for k in &row.kernels {
            assert!(src.contains(&format!("fn {}(", k.entry)), "{}: no entry point {}", row.name, k.entry);
        }
        assert!(QType::supported().contains(row.name));
    }
    // No WGSL type constant without a row.
    assert_eq!(wgsl.len(), TYPES.len(), "WGSL type constants {wgsl:?}");
}

#[test]
fn allocate_rejects_partial_blocks_and_rows_over_the_binding_limit() {
    let g = gpu(Some(1024));
    let e = QMatrix::allocate(&g, "blk.0.ffn_up.weight", QType::Q4_K, 8, 300, false).err().expect("300 is no multiple of 256");
    let msg = e.to_string();
    assert!(msg.contains("blk.0.ffn_up.weight") && msg.contains("256"), "{msg}");
    let e = QMatrix::allocate(&g, "token_embd.weight", QType::Q8_0, 8, 1024, false).err().expect("a row of 1088 bytes");
    let msg = e.to_string();
    assert!(msg.contains("token_embd.weight") && msg.contains("binding"), "{msg}");
    let m = QMatrix::allocate(&g, "ok", QType::Q8_0, 8, 928, true).unwrap();
    assert_eq!(m.slices.len(), 8);
    let e = m.write(&g, "ok", &[0; 986 * 7]).err().expect("7 rows for 8");
    assert!(e.to_string().contains("ok") && e.to_string().contains("8 rows"), "{e}");
    m.write(&g, "ok", &[0; 986 * 8]).unwrap();
    let e = QMatrix::upload(&g, "half_row", QType::Q4_1, 64, &[0; 60], None).err().expect("1.5 rows");
    assert!(e.to_string().contains("half_row"), "{e}");
    let e = QMatrix::upload(&g, "bias", QType::Q4_1, 64, &[0; 80], Some(&[0.0; 3])).err().expect("3 biases for 2 rows");
    assert!(e.to_string().contains("bias values"), "{e}");
}

/// The error allowed in y[t, r]: relative to the sum of |x[t, c] * W[r, c]| (the size of the
/// terms the GPU adds in another order, in f32), plus the rounding of bias and y0.
fn check(what: &str, got: &[f32], want: &[f32], scale: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0f32;
    for (i, ((a, b), s)) in got.iter().zip(want).zip(scale).enumerate() {
        let d = (a - b).abs() / (s + b.abs() + 1e-30);
        assert!(d.is_finite() && d <= 1e-5, "{what}[{i}]: got {a}, want {b} (scale {s})");
        worst = worst.max(d);
    }
    eprintln!("{what}: max rel err {worst:.2e} over {} values", got.len());
}

/// `add`: with a bias and accumulating into y (else y is overwritten with x . W alone).
fn matmul_case(t: QType, limit: Option<u64>, rows: usize, cols: usize, seed: u64, add: bool) {
    for g in gpu_modes(limit) {
        matmul_case_on(&g, t, limit, rows, cols, seed, add);
    }
}

fn matmul_case_on(g: &Gpu, t: QType, limit: Option<u64>, rows: usize, cols: usize, seed: u64, add: bool) {
    let mode = g.shader.name();
    let mut rng = StdRng::seed_from_u64(seed);
    let data = random_matrix(&mut rng, t, rows, cols);
    let bias = randn(&mut rng, rows, 1.0);
    let m = QMatrix::upload(&g, "w", t, cols as u32, &data, add.then_some(&bias[..])).unwrap();
    assert_eq!(m.slices.len() > 1, limit.is_some(), "{}: slices", t.name());
    let w = cpu::dequantize(t, &data, rows * cols).unwrap();
    // Decode (up to 4 tokens), one prefill tile of tokens (17, 40) and two (70).
    for n in [1usize, 3, 17, 40, 70] {
        // Inputs start one row in (x_offset) with a wider stride; outputs land in the middle
        // of wider rows (y_offset), added to what is there.
        let (x_stride, y_stride, y_off) = (cols + 3, rows + 5, 2);
        let x = randn(&mut rng, (n + 1) * x_stride, 1.0);
        let y0 = randn(&mut rng, n * y_stride, 1.0);
        let xb = g.storage_with("x", bytemuck::cast_slice(&x));
        let yb = g.storage_with("y", bytemuck::cast_slice(&y0));
        let io = MatmulIo {
            n_tokens: n as u32,
            x_offset: x_stride as u32,
            x_stride: x_stride as u32,
            y_stride: y_stride as u32,
            y_offset: y_off as u32,
            accumulate: add,
        };
        let mut rec = Recorder::new(&g);
        qmatmul(&mut rec, &xb, &m, &yb, io);
        rec.submit();
        g.wait().unwrap();
        let xs: Vec<f32> = (0..n).flat_map(|i| x[(i + 1) * x_stride..][..cols].to_vec()).collect();
        let prod = cpu::qmatmul(t, &data, add.then_some(&bias[..]), rows, cols, &xs).unwrap();
        let mut want = y0.clone();
        let mut scale = vec![0f32; want.len()];
        for i in 0..n {
            for r in 0..rows {
                let k = i * y_stride + y_off + r;
                want[k] = prod[i * rows + r] + if add { y0[k] } else { 0.0 };
                let abs: f64 = (0..cols).map(|c| (xs[i * cols + c] as f64 * w[r * cols + c] as f64).abs()).sum();
                scale[k] = abs as f32 + if add { bias[r].abs() + y0[k].abs() } else { 0.0 };
            }
        }
        let got = read_f32(&g, &yb, n * y_stride);
        check(&format!("qmatmul {} {rows}x{cols} n={n} limit={limit:?} add={add} features={mode}", t.name()), &got, &want, &scale);
    }
}

fn embed_case(t: QType, limit: Option<u64>, seed: u64) {
    for g in gpu_modes(limit) {
        embed_case_on(&g, t, limit, seed);
    }
}

fn embed_case_on(g: &Gpu, t: QType, limit: Option<u64>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (rows, cols) = (23usize, cols_for(t));
    let data = random_matrix(&mut rng, t, rows, cols);
    let m = QMatrix::upload(&g, "embd", t, cols as u32, &data, None).unwrap();
    assert_eq!(m.slices.len() > 1, limit.is_some(), "{}: slices", t.name());
    let tokens = [0u32, 22, 5, 5, 17, 11, 1];
    let tb = g.storage_with("tokens", bytemuck::cast_slice(&tokens));
    let out = g.storage("out", (tokens.len() * cols * 4) as u64);
    let mut rec = Recorder::new(&g);
    qembed(&mut rec, &tb, tokens.len() as u32, &m, &out);
    rec.submit();
    g.wait().unwrap();
    let w = cpu::dequantize(t, &data, rows * cols).unwrap();
    let want: Vec<f32> = tokens.iter().flat_map(|&tok| w[tok as usize * cols..][..cols].to_vec()).collect();
    let got = read_f32(&g, &out, tokens.len() * cols);
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        // Exact but for the rounding of a fused multiply-add where the GPU contracts
        // d * q + m (Q4_1, K-quants): one ulp of the larger term, at most the row's largest value.
        let row_max = want[i / cols * cols..][..cols].iter().fold(0f32, |m, v| m.max(v.abs()));
        let tol = row_max * f32::EPSILON;
        assert!((a - b).abs() <= tol, "qembed {} limit={limit:?} [{i}]: got {a}, want {b}", t.name());
    }
    assert!(want.iter().any(|v| *v != 0.0));
}

/// A binding limit that splits a matrix of `rows` rows into about four slices.
fn small_limit(t: QType, rows: usize) -> u64 {
    let rb = t.row_bytes(cols_for(t) as u32).unwrap();
    (rb * (rows as u64).div_ceil(4)).next_multiple_of(4)
}

/// Columns of one block (one 32-value unit of the kernels for the float types, less).
fn one_block(t: QType) -> usize {
    match t.block_values() {
        1 => 7,
        bv => bv as usize,
    }
}

/// Long rows: many blocks, so that a decode row is shared by the most invocations (32).
fn long_cols(t: QType) -> usize {
    match t.block_values() {
        1 => 2085,
        _ => 2048,
    }
}

fn all_cases(t: QType) {
    let cols = cols_for(t);
    // 37 rows: not a multiple of the rows of a decode workgroup or of a prefill tile.
    matmul_case(t, None, 37, cols, 1, true);
    matmul_case(t, Some(small_limit(t, 37)), 37, cols, 2, true);
    // More rows than one prefill tile; no bias, y overwritten.
    matmul_case(t, None, 70, cols, 3, false);
    // Rows of a single block; long rows.
    matmul_case(t, None, 37, one_block(t), 6, true);
    matmul_case(t, None, 13, long_cols(t), 7, false);
    embed_case(t, None, 4);
    embed_case(t, Some(small_limit(t, 23)), 5);
}

#[test]
fn f32_kernels_match_cpu() {
    all_cases(QType::F32);
}

#[test]
fn f16_kernels_match_cpu() {
    all_cases(QType::F16);
}

#[test]
fn bf16_kernels_match_cpu() {
    all_cases(QType::BF16);
}

#[test]
fn q8_0_kernels_match_cpu() {
    all_cases(QType::Q8_0);
}

#[test]
fn q4_0_kernels_match_cpu() {
    all_cases(QType::Q4_0);
}

#[test]
fn q4_1_kernels_match_cpu() {
    all_cases(QType::Q4_1);
}

#[test]
fn q4_k_kernels_match_cpu() {
    all_cases(QType::Q4_K);
}

#[test]
fn q5_k_kernels_match_cpu() {
    all_cases(QType::Q5_K);
}

#[test]
fn q6_k_kernels_match_cpu() {
    all_cases(QType::Q6_K);
}

#[test]
fn mxfp4_kernels_match_cpu() {
    all_cases(QType::Mxfp4);
}

#[test]
fn q5_0_kernels_match_cpu() {
    all_cases(QType::Q5_0);
}

#[test]
fn q5_1_kernels_match_cpu() {
    all_cases(QType::Q5_1);
}

#[test]
fn q2_k_kernels_match_cpu() {
    all_cases(QType::Q2_K);
}

#[test]
fn q3_k_kernels_match_cpu() {
    all_cases(QType::Q3_K);
}

#[test]
fn iq4_nl_kernels_match_cpu() {
    all_cases(QType::IQ4_NL);
}

#[test]
fn iq4_xs_kernels_match_cpu() {
    all_cases(QType::IQ4_XS);
}

/// Every f16 bit pattern that is a finite number (normals, subnormals, both zeros) decodes
/// exactly in the kernels' bit-arithmetic f16 conversion: an F16 matrix holding all of them,
/// gathered row by row.
#[test]
fn every_finite_f16_decodes_exactly() {
    let g = gpu(None);
    let bits: Vec<u16> = (0..=u16::MAX).filter(|b| (b & 0x7c00) != 0x7c00).collect();
    let cols = 512;
    let rows = bits.len().div_ceil(cols);
    let mut all = bits.clone();
    all.resize(rows * cols, 0);
    let bytes: Vec<u8> = all.iter().flat_map(|b| b.to_le_bytes()).collect();
    let m = QMatrix::upload(&g, "f16 patterns", QType::F16, cols as u32, &bytes, None).unwrap();
    let tokens: Vec<u32> = (0..rows as u32).collect();
    let tok = g.storage_with("tokens", bytemuck::cast_slice(&tokens));
    let out = g.storage("out", (rows * cols * 4) as u64);
    let mut rec = Recorder::new(&g);
    qembed(&mut rec, &tok, rows as u32, &m, &out);
    rec.submit();
    g.wait().unwrap();
    let got = read_f32(&g, &out, rows * cols);
    for (i, &b) in all.iter().enumerate() {
        let want = half::f16::from_bits(b).to_f32();
        assert_eq!(got[i].to_bits(), want.to_bits(), "f16 bits {b:#06x}: got {}, want {want}", got[i]);
    }
}
