//! Every kernel against its plain CPU reference (`wgpt::ops::cpu`) on random inputs with odd
//! sizes, on whatever adapter the machine has (lavapipe in CI), with and without tensors split
//! across many small bindings.

use half::bf16;
use rand::{rngs::StdRng, Rng, SeedableRng};
use wgpt::gpu::{Gpu, GpuOptions, Recorder, ShaderFeatures};
use wgpt::ops::{self, cpu, Bf16Matrix, MatmulIo, Mxfp4Experts, Swiglu};

fn gpu(max_binding: Option<u64>) -> Gpu {
    pollster::block_on(Gpu::new(&GpuOptions { max_binding_bytes: max_binding, ..Default::default() })).expect("GPU adapter")
}

fn randn(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale).collect()
}

fn bf16_bits(v: &[f32]) -> Vec<u16> {
    v.iter().map(|x| bf16::from_f32(*x).to_bits()).collect()
}

fn read_f32(g: &Gpu, buf: &wgpu::Buffer, n: usize) -> Vec<f32> {
    let bytes = pollster::block_on(g.read(buf, 0, n as u64 * 4)).unwrap();
    bytemuck::cast_slice(&bytes).to_vec()
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0f32;
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let d = (a - b).abs() / (1.0 + b.abs());
        assert!(d.is_finite() && d <= tol, "{what}[{i}]: got {a}, want {b}");
        worst = worst.max(d);
    }
    eprintln!("{what}: max rel err {worst:.2e} over {} values", got.len());
}

fn submit(g: &Gpu, enc: Recorder) {
    enc.submit();
    g.wait().unwrap();
}

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
            assert_close(&what, &read_f32(&g, &yb, t * rows), &want, 1e-5);
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
            assert_close(&what, &read_f32(&g, &yb, t * rows), &want, 1e-4);
        }
    }
}

#[test]
fn topk_softmax_matches_cpu() {
    let g = gpu(None);
    let mut rng = StdRng::seed_from_u64(5);
    let (t, e, k) = (5usize, 32usize, 4usize);
    let mut logits = randn(&mut rng, t * e, 3.0);
    logits[3] = logits[7]; // a tie: the lower index wins
    let lb = g.storage_with("l", bytemuck::cast_slice(&logits));
    let ids = g.storage("ids", (t * k * 4) as u64);
    let w = g.storage("w", (t * k * 4) as u64);
    let mut enc = Recorder::new(&g);
    ops::topk_softmax(&mut enc, t as u32, e as u32, k as u32, &lb, &ids, &w);
    submit(&g, enc);
    let (want_ids, want_w) = cpu::topk_softmax(&logits, e, k);
    let got_ids: Vec<u32> = bytemuck::cast_slice(&pollster::block_on(g.read(&ids, 0, (t * k * 4) as u64)).unwrap()).to_vec();
    assert_eq!(got_ids, want_ids);
    assert_close("topk weights", &read_f32(&g, &w, t * k), &want_w, 1e-6);
}

#[test]
fn moe_route_matches_cpu() {
    // Unsplit (the fused kernel) and with the router split over bindings (three kernels).
    for limit in [None, Some(1024)] {
        let g = gpu(limit);
        let mut rng = StdRng::seed_from_u64(8);
        let (t, h, e, k) = (3usize, 200usize, 20usize, 4usize);
        let x = randn(&mut rng, t * h, 2.0);
        let norm_w = randn(&mut rng, h, 1.0);
        let w = bf16_bits(&randn(&mut rng, e * h, 0.2));
        let bias = randn(&mut rng, e, 0.5);
        let router = Bf16Matrix::upload(&g, "router", h as u32, &[bytemuck::cast_slice(&w)], Some(&bias)).unwrap();
        assert_eq!(router.slices.len() > 1, limit.is_some());
        let (xb, nb) = (g.storage_with("x", bytemuck::cast_slice(&x)), g.storage_with("n", bytemuck::cast_slice(&norm_w)));
        let (normed, logits) = (g.storage("xn", (t * h * 4) as u64), g.storage("logits", (t * e * 4) as u64));
        let (ids, weights) = (g.storage("ids", (t * k * 4) as u64), g.storage("w", (t * k * 4) as u64));
        let mut enc = Recorder::new(&g);
        let io = ops::RouteIo { x: &xb, normed: &normed, logits: &logits, ids: &ids, weights: &weights };
        ops::moe_route(&mut enc, t as u32, &nb, 1e-5, &router, k as u32, io);
        submit(&g, enc);
        let mut want_xn = Vec::new();
        let mut want_logits = Vec::new();
        for ti in 0..t {
            let xn = cpu::rmsnorm(&x[ti * h..(ti + 1) * h], &norm_w, 1e-5);
            want_logits.extend(cpu::matmul_bf16(&xn, &w, Some(&bias), e, h));
            want_xn.extend(xn);
        }
        let (want_ids, want_w) = cpu::topk_softmax(&want_logits, e, k);
        assert_close("normed", &read_f32(&g, &normed, t * h), &want_xn, 1e-5);
        let got_ids: Vec<u32> = bytemuck::cast_slice(&pollster::block_on(g.read(&ids, 0, (t * k * 4) as u64)).unwrap()).to_vec();
        assert_eq!(got_ids, want_ids, "limit {limit:?}");
        assert_close("route weights", &read_f32(&g, &weights, t * k), &want_w, 1e-5);
    }
}

#[test]
fn moe_experts_match_cpu() {
    // Decode-sized batches (per token) and prefill-sized ones (grouped by expert), unsplit and split.
    for (limit, t) in [(None, 3usize), (Some(1000), 3), (None, 21), (Some(1000), 21)] {
        let g = gpu(limit);
        let mut rng = StdRng::seed_from_u64(6 + t as u64);
        let (n_exp, hidden, inter, k) = (5usize, 64usize, 96usize, 2usize);
        let rand_bytes = |rng: &mut StdRng, n: usize| (0..n).map(|_| rng.random::<u8>()).collect::<Vec<u8>>();
        let rand_scales = |rng: &mut StdRng, n: usize| (0..n).map(|_| rng.random_range(122u8..128)).collect::<Vec<u8>>();
        let gu_blocks = rand_bytes(&mut rng, n_exp * 2 * inter * hidden / 2);
        let gu_scales = rand_scales(&mut rng, n_exp * 2 * inter * hidden / 32);
        let gu_bias = randn(&mut rng, n_exp * 2 * inter, 1.0);
        let dn_blocks = rand_bytes(&mut rng, n_exp * hidden * inter / 2);
        let dn_scales = rand_scales(&mut rng, n_exp * hidden * inter / 32);
        let dn_bias = randn(&mut rng, n_exp * hidden, 1.0);
        let gu = Mxfp4Experts::upload(&g, "gu", n_exp as u32, 2 * inter as u32, hidden as u32, &gu_blocks, &gu_scales, &gu_bias, 2)
            .unwrap();
        let dn = Mxfp4Experts::upload(&g, "dn", n_exp as u32, hidden as u32, inter as u32, &dn_blocks, &dn_scales, &dn_bias, 1)
            .unwrap();
        assert_eq!(gu.slices.len() > 1, limit.is_some());
        let x = randn(&mut rng, t * hidden, 2.0);
        // Distinct experts per token, as top-k gives.
        let ids: Vec<u32> = (0..t)
            .flat_map(|_| {
                let first = rng.random_range(0..n_exp as u32);
                [first, (first + rng.random_range(1..n_exp as u32)) % n_exp as u32]
            })
            .collect();
        let weights = randn(&mut rng, t * k, 1.0);
        let residual = randn(&mut rng, t * hidden, 1.0);
        let (xb, idb, wb) = (
            g.storage_with("x", bytemuck::cast_slice(&x)),
            g.storage_with("ids", bytemuck::cast_slice(&ids)),
            g.storage_with("w", bytemuck::cast_slice(&weights)),
        );
        let rb = g.storage_with("res", bytemuck::cast_slice(&residual));
        let act = g.storage("act", (t * k * inter * 4) as u64);
        let y = g.storage("y", (t * k * hidden * 4) as u64);
        let sw = Swiglu { alpha: 1.702, limit: 7.0 };
        let mut enc = Recorder::new(&g);
        ops::expert_gate_up(&mut enc, t as u32, k as u32, &xb, &idb, &gu, sw, &act);
        // One fused dispatch when the experts fit one binding, down + accumulate when split.
        ops::expert_down_accumulate(&mut enc, t as u32, k as u32, &act, &idb, &dn, &wb, &y, &rb);
        submit(&g, enc);

        let (mut want_act, mut want_res, mut clamped) = (vec![], residual.clone(), 0);
        for ti in 0..t {
            for s in 0..k {
                let e = ids[ti * k + s] as usize;
                let (r, c) = (2 * inter, hidden);
                let h = cpu::mxfp4_matvec(
                    &gu_blocks[e * r * c / 2..][..r * c / 2],
                    &gu_scales[e * r * c / 32..][..r * c / 32],
                    &gu_bias[e * r..][..r],
                    r,
                    c,
                    &x[ti * c..][..c],
                );
                clamped += h.iter().filter(|v| v.abs() > 7.0).count();
                let a = cpu::swiglu(&h, 1.702, 7.0);
                let yv = cpu::mxfp4_matvec(
                    &dn_blocks[e * hidden * inter / 2..][..hidden * inter / 2],
                    &dn_scales[e * hidden * inter / 32..][..hidden * inter / 32],
                    &dn_bias[e * hidden..][..hidden],
                    hidden,
                    inter,
                    &a,
                );
                for i in 0..hidden {
                    want_res[ti * hidden + i] += weights[ti * k + s] * yv[i];
                }
                want_act.extend(a);
            }
        }
        assert!(clamped > 0, "the inputs should exercise the SwiGLU clamp");
        assert_close("gate_up+swiglu", &read_f32(&g, &act, t * k * inter), &want_act, 2e-5);
        // Down-projection terms reach a few hundred (activations up to 7 x FP4 up to 6 over 96
        // columns), so f32 sums in another order differ by ~1e-4 in absolute terms.
        assert_close("down+accumulate", &read_f32(&g, &rb, t * hidden), &want_res, 2e-4);
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
