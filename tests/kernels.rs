//! Every kernel against its plain CPU reference (`wgpt::ops::cpu`) on random inputs with odd
//! sizes, on whatever adapter the machine has (lavapipe in CI), with and without tensors split
//! across many small bindings.

mod common;

use common::budget::{KERNEL_F32, KERNEL_F32_REORDERED};
use common::check::*;
use rand::{rngs::StdRng, SeedableRng};
use wgpt::gpu::{Gpu, GpuOptions, Recorder, ShaderFeatures};
use wgpt::ops::{self, cpu, Bf16Matrix, MatmulIo};

use common::gpu;

#[test]
fn embed_gather_matches_cpu() {
    for limit in [None, Some(300)] {
        let g = gpu(limit);
        let mut rng = StdRng::seed_from_u64(1);
        let (vocab, hidden) = (37, 18);
        let table = bf16_bits(&randn(&mut rng, vocab * hidden, 2.0));
        let m = Bf16Matrix::upload(&g, "embed", hidden as u32, &[bytemuck::cast_slice(&table)], None).unwrap();
        assert_eq!(m.slices.len() > 1, limit.is_some());
        let tokens = [0u32, 36, 5, 5, 17];
        let tok = g.storage_with("tokens", bytemuck::cast_slice(&tokens));
        let out = g.storage("out", (tokens.len() * hidden * 4) as u64);
        let mut enc = Recorder::new(&g);
        ops::embed(&mut enc, &tok, tokens.len() as u32, &m, &out);
        submit(&g, enc);
        assert_close("embed", &read_f32(&g, &out, tokens.len() * hidden), &cpu::embed(&table, hidden, &tokens), 0.0);
    }
}

#[test]
fn rmsnorm_matches_cpu() {
    let g = gpu(None);
    let mut rng = StdRng::seed_from_u64(2);
    let (t, h) = (3usize, 250usize);
    let x = randn(&mut rng, (t + 1) * h, 3.0);
    let w = randn(&mut rng, h, 1.5);
    let xb = g.storage_with("x", bytemuck::cast_slice(&x));
    let wb = g.storage_with("w", bytemuck::cast_slice(&w));
    let out = g.storage("out", (t * h * 4) as u64);
    let mut enc = Recorder::new(&g);
    ops::rmsnorm(&mut enc, &xb, 1, t as u32, h as u32, &wb, 1e-5, &out);
    submit(&g, enc);
    assert_close("rmsnorm", &read_f32(&g, &out, t * h), &cpu::rmsnorm(&x[h..], &w, 1e-5), 2e-6);
}

#[test]
fn matmul_bf16_matches_cpu_for_matvec_and_tiled_with_slices() {
    // Short rows (one thread per row in decode) and long rows (a workgroup per 4 rows).
    // Short rows, rows of a multiple of 8 (16-byte loads) and rows that are not.
    // Prefill tiles of 64 tokens x 64 rows: 70 tokens span two, with ragged ends in both.
    let cases = [(None, 67usize, 38usize), (Some(1024), 67, 38), (None, 37, 600), (Some(4000), 37, 600), (None, 29, 602), (None, 130, 66)];
    for ((limit, rows, cols), features) in cases.into_iter().flat_map(|c| [(c, None), (c, Some(ShaderFeatures::NONE))]) {
        let g = pollster::block_on(Gpu::new(&GpuOptions { max_binding_bytes: limit, features, ..Default::default() })).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let w = bf16_bits(&randn(&mut rng, rows * cols, 1.0));
        let bias = randn(&mut rng, rows, 1.0);
        let m = Bf16Matrix::upload(&g, "w", cols as u32, &[bytemuck::cast_slice(&w)], Some(&bias)).unwrap();
        for t in [1usize, 3, 21, 70] {
            let x = randn(&mut rng, t * cols, 1.0);
            let y0 = randn(&mut rng, t * rows, 1.0);
            let xb = g.storage_with("x", bytemuck::cast_slice(&x));
            let yb = g.storage_with("y", bytemuck::cast_slice(&y0));
            let mut enc = Recorder::new(&g);
            let io = MatmulIo { n_tokens: t as u32, x_offset: 0, x_stride: cols as u32, y_stride: rows as u32, y_offset: 0, accumulate: true };
            ops::matmul(&mut enc, &xb, &m, &yb, io);
            submit(&g, enc);
            let want: Vec<f32> =
                cpu::matmul_bf16(&x, &w, Some(&bias), rows, cols).iter().zip(&y0).map(|(a, b)| a + b).collect();
            let what = format!("matmul {rows}x{cols} t={t} limit={limit:?} features {}", g.shader.name());
            assert_close(&what, &read_f32(&g, &yb, t * rows), &want, KERNEL_F32);
        }
    }
}

#[test]
fn matmul_with_the_input_norm_folded_in_matches_rmsnorm_then_matmul() {
    // Short rows (one invocation per row), rows of a multiple of 8 (16-byte loads), other rows;
    // decode batches fold the norm into the mat-vec, longer ones normalize into scratch first.
    for ((rows, cols), features) in [(67usize, 38usize), (37, 600), (29, 602)]
        .into_iter()
        .flat_map(|c| [(c, None), (c, Some(ShaderFeatures::NONE))])
    {
        let g = pollster::block_on(Gpu::new(&GpuOptions { features, ..Default::default() })).unwrap();
        let mut rng = StdRng::seed_from_u64(5);
        let w = bf16_bits(&randn(&mut rng, rows * cols, 1.0));
        let m = Bf16Matrix::upload(&g, "w", cols as u32, &[bytemuck::cast_slice(&w)], None).unwrap();
        let gamma: Vec<f32> = randn(&mut rng, cols, 1.0).iter().map(|v| 1.0 + v).collect();
        let gb = g.storage_with("gamma", bytemuck::cast_slice(&gamma));
        for (t, skip) in [(1usize, 0usize), (1, 2), (3, 1), (21, 0)] {
            let x = randn(&mut rng, (t + skip) * cols, 3.0);
            let xb = g.storage_with("x", bytemuck::cast_slice(&x));
            let yb = g.storage("y", (t * rows * 4) as u64);
            let scratch = g.storage("scratch", (t * cols * 4) as u64);
            let io = MatmulIo {
                n_tokens: t as u32,
                x_offset: (skip * cols) as u32,
                x_stride: cols as u32,
                y_stride: rows as u32,
                y_offset: 0,
                accumulate: false,
            };
            let mut enc = Recorder::new(&g);
            ops::matmul_normed(&mut enc, &xb, ops::InputNorm { weight: &gb, eps: 1e-5 }, &scratch, &m, &yb, io);
            assert_eq!(enc.dispatches(), if t <= 4 { 1 } else { 2 }, "the norm is folded into decode mat-vecs");
            submit(&g, enc);
            let normed = cpu::rmsnorm(&x[skip * cols..], &gamma, 1e-5);
            let want = cpu::matmul_bf16(&normed, &w, None, rows, cols);
            let what = format!("normed matmul {rows}x{cols} t={t} skip={skip} features {}", g.shader.name());
            // The f32 norm against the reference's f64 one: each normalized input carries an f32
            // rounding into a dot product of up to 600 terms.
            assert_close(&what, &read_f32(&g, &yb, t * rows), &want, KERNEL_F32_REORDERED);
        }
    }
}

#[test]
fn argmax_matches_cpu_with_ties_nan_and_infinities() {
    for features in [None, Some(ShaderFeatures::NONE)] {
        let g = pollster::block_on(Gpu::new(&GpuOptions { features, ..Default::default() })).expect("GPU adapter");
        let mut rng = StdRng::seed_from_u64(7);
        // One partial workgroup, one exactly full, many with a ragged end; 201,088 is gpt-oss's vocabulary.
        for n in [1usize, 5, 1024, 5003, 49152, 201_088] {
            let mut cases = vec![randn(&mut rng, n, 10.0)];
            if n > 4000 {
                // Ties in different workgroups and within one: the lowest index wins.
                let mut v = randn(&mut rng, n, 10.0);
                v[n - 3] = 50.0;
                v[1234] = 50.0;
                v[1235] = 50.0;
                cases.push(v);
                // NaN never wins; -0 and +0 tie; everything -inf but one -3e38.
                let mut v = randn(&mut rng, n, 10.0);
                v[100] = f32::NAN;
                v[n - 1] = f32::NAN;
                v[2000] = 60.0;
                v[3000] = f32::INFINITY;
                cases.push(v);
                let mut v = vec![f32::NEG_INFINITY; n];
                v[n / 2 + 1] = -3e38;
                cases.push(v);
                let mut v = vec![-0.0f32; n];
                v[n - 7] = 0.0;
                cases.push(v);
            }
            cases.push(vec![f32::NAN; n]);
            for v in cases {
                let pad = [vec![0f32; 3], v.clone()].concat();
                let b = g.storage_with("l", bytemuck::cast_slice(&pad));
                let out = g.storage("o", 4);
                let parts = g.storage("parts", ops::argmax_scratch_bytes(n as u32));
                let mut enc = Recorder::new(&g);
                ops::argmax(&mut enc, &b, 3, n as u32, &parts, &out);
                submit(&g, enc);
                let got: Vec<u32> = bytemuck::cast_slice(&pollster::block_on(g.read(&out, 0, 4)).unwrap()).to_vec();
                assert_eq!(got[0], cpu::argmax(&v), "n={n} features {}", g.shader.name());
            }
        }
    }
    // The CPU reference's rules, spelled out.
    assert_eq!(cpu::argmax(&[1.0, 3.0, 3.0, f32::NAN]), 1);
    assert_eq!(cpu::argmax(&[f32::NAN, 2.0, f32::NAN]), 1);
    assert_eq!(cpu::argmax(&[f32::NAN, f32::NAN]), 0);
    assert_eq!(cpu::argmax(&[-0.0, 0.0]), 0);
}

#[test]
fn silu_mul_matches_cpu() {
    let g = gpu(None);
    let mut rng = StdRng::seed_from_u64(12);
    let n = 1000;
    let (gate, up) = (randn(&mut rng, n, 6.0), randn(&mut rng, n, 2.0));
    let (gb, ub) = (g.storage_with("gate", bytemuck::cast_slice(&gate)), g.storage_with("up", bytemuck::cast_slice(&up)));
    let mut enc = Recorder::new(&g);
    ops::silu_mul(&mut enc, n as u32, &gb, &ub);
    submit(&g, enc);
    assert_close("silu_mul", &read_f32(&g, &ub, n), &cpu::silu_mul(&gate, &up), 1e-6);
}
