//! Every kernel against its plain CPU reference (`wgpt::ops::cpu`) on random inputs with odd
//! sizes, on whatever adapter the machine has (lavapipe in CI), with and without tensors split
//! across many small bindings.

use half::bf16;
use rand::{rngs::StdRng, Rng, SeedableRng};
use wgpt::gpu::{Gpu, GpuOptions, Recorder};
use wgpt::ops::{self, cpu, AttnShape, Bf16Matrix, KvSegment, MatmulIo, RopeStyle};

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
    for (limit, rows, cols) in [(None, 67usize, 38usize), (Some(1024), 67, 38), (None, 37, 600), (Some(4000), 37, 600), (None, 29, 602)] {
        let g = gpu(limit);
        let mut rng = StdRng::seed_from_u64(3);
        let w = bf16_bits(&randn(&mut rng, rows * cols, 1.0));
        let bias = randn(&mut rng, rows, 1.0);
        let m = Bf16Matrix::upload(&g, "w", cols as u32, &[bytemuck::cast_slice(&w)], Some(&bias)).unwrap();
        for t in [1usize, 3, 21] {
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
            assert_close(&format!("matmul {rows}x{cols} t={t} limit={limit:?}"), &read_f32(&g, &yb, t * rows), &want, 1e-5);
        }
    }
}

/// Runs rope + KV store + attention over a sequence in chunks and compares with the CPU.
fn attention_case(limit: Option<u64>, window: u32, ring: u32, chunks: &[usize]) {
    // Groups of 3 query heads take the per-head kernel, groups of 4 the per-group one.
    for (hq, hkv) in [(6u32, 2u32), (8, 2)] {
        attention_case_heads(limit, window, ring, chunks, hq, hkv);
    }
}

fn attention_case_heads(limit: Option<u64>, window: u32, ring: u32, chunks: &[usize], hq: u32, hkv: u32) {
    let g = gpu(limit);
    let mut rng = StdRng::seed_from_u64(4);
    let d = 16u32;
    let total: usize = chunks.iter().sum();
    let width = ((hq + 2 * hkv) * d) as usize;
    let qkv = randn(&mut rng, total * width, 1.5);
    let cos_sin: Vec<f32> = (0..total * d as usize / 2)
        .flat_map(|i| {
            let a = i as f32 * 0.37;
            [a.cos() * 1.3, a.sin() * 1.3]
        })
        .collect();
    let sinks = randn(&mut rng, hq as usize, 2.0);
    // CPU: rotated q, k and plain v for every position.
    let (mut q_all, mut k_all, mut v_all) = (vec![], vec![], vec![]);
    for t in 0..total {
        let cs = &cos_sin[t * d as usize..][..d as usize];
        let row = &qkv[t * width..][..width];
        for h in 0..(hq + 2 * hkv) as usize {
            let v = &row[h * d as usize..][..d as usize];
            if h < hq as usize {
                q_all.extend(cpu::rope(v, cs));
            } else if h < (hq + hkv) as usize {
                k_all.extend(cpu::rope(v, cs));
            } else {
                v_all.extend_from_slice(v);
            }
        }
    }
    let want = cpu::attention(&q_all, &k_all, &v_all, &sinks, hq as usize, hkv as usize, d as usize, 0, window as usize);

    let cache = KvSegment::allocate(&g, "kv", ring, hkv, d).unwrap();
    assert_eq!(cache.len() > 1, limit.is_some());
    let sinks_b = g.storage_with("sinks", bytemuck::cast_slice(&sinks));
    let max_t = *chunks.iter().max().unwrap() as u64;
    let parts = ops::attention_max_parts(cache.len() as u32) as u64;
    let partials = g.storage("partials", max_t * hq as u64 * parts * (d as u64 + 2) * 4);
    let q_b = g.storage("q", max_t * (hq * d) as u64 * 4);
    let out_b = g.storage("out", max_t * (hq * d) as u64 * 4);
    let mut got = vec![];
    let mut pos0 = 0;
    for &n in chunks {
        let qkv_b = g.storage_with("qkv", bytemuck::cast_slice(&qkv[pos0 * width..(pos0 + n) * width]));
        let cs_b = g.storage_with("cs", bytemuck::cast_slice(&cos_sin[pos0 * d as usize..(pos0 + n) * d as usize]));
        let a = AttnShape { n_tokens: n as u32, n_q_heads: hq, n_kv_heads: hkv, head_dim: d, pos0: pos0 as u32, ring, window };
        let mut enc = Recorder::new(&g);
        ops::rope_qk_store(&mut enc, a, RopeStyle { interleaved: false, qk_norm: None, eps: 0.0 }, &qkv_b, &cs_b, &q_b, &cache);
        ops::attention(&mut enc, a, &q_b, &cache, &sinks_b, &partials, &out_b);
        submit(&g, enc);
        got.extend(read_f32(&g, &out_b, n * (hq * d) as usize));
        pos0 += n;
    }
    assert_close(&format!("attention {hq}/{hkv} heads window={window} ring={ring} limit={limit:?}"), &got, &want, 2e-5);
}

#[test]
fn attention_full_causal_matches_cpu() {
    attention_case(None, 0, 64, &[7, 1, 1, 13, 1]);
}

#[test]
fn attention_sliding_ring_matches_cpu() {
    // Window 5, chunks up to 7 tokens: the ring holds window + chunk - 1 slots.
    attention_case(None, 5, 11, &[7, 1, 1, 6, 1, 1, 1]);
}

#[test]
fn attention_long_context_splits_matches_cpu() {
    attention_case(None, 0, 200, &[150, 1, 1]);
}

#[test]
fn attention_with_segmented_cache_matches_cpu() {
    // 2 KV heads x 16 dims x 4 bytes = 128 bytes per slot: 3 slots per segment.
    attention_case(Some(400), 0, 40, &[9, 1, 1, 12]);
    attention_case(Some(400), 4, 10, &[7, 1, 1, 6, 1]);
}

#[test]
fn argmax_matches_cpu_with_ties() {
    let g = gpu(None);
    let mut rng = StdRng::seed_from_u64(7);
    let mut v = randn(&mut rng, 5003, 10.0);
    v[4000] = 50.0;
    v[1234] = 50.0;
    let pad = [vec![0f32; 3], v.clone()].concat();
    let b = g.storage_with("l", bytemuck::cast_slice(&pad));
    let out = g.storage("o", 4);
    let mut enc = Recorder::new(&g);
    ops::argmax(&mut enc, &b, 3, v.len() as u32, &out);
    submit(&g, enc);
    let got: Vec<u32> = bytemuck::cast_slice(&pollster::block_on(g.read(&out, 0, 4)).unwrap()).to_vec();
    assert_eq!(got[0], cpu::argmax(&v));
    assert_eq!(got[0], 1234);
}

#[test]
fn fused_qkv_rope_store_equals_projection_then_rope() {
    let (hq, hkv, d, cols, ring, pos0) = (4u32, 2u32, 20u32, 48u32, 12u32, 9u32);
    let rows = (hq + 2 * hkv) * d;
    let mut rng = StdRng::seed_from_u64(12);
    let w = bf16_bits(&randn(&mut rng, (rows * cols) as usize, 0.3));
    let bias = randn(&mut rng, rows as usize, 0.5);
    for n in 1..=3u32 {
        let x = randn(&mut rng, (n * cols) as usize, 1.0);
        let cos_sin = randn(&mut rng, (n * d) as usize, 1.0);
        // Unsplit (one fused dispatch) and split into small bindings (projection, then RoPE).
        let run = |limit: Option<u64>| {
            let g = gpu(limit);
            let m = Bf16Matrix::upload(&g, "qkv", cols, &[bytemuck::cast_slice(&w)], Some(&bias)).unwrap();
            let cache = KvSegment::allocate(&g, "kv", ring, hkv, d).unwrap();
            assert_eq!(cache.len() > 1, limit.is_some());
            let (xb, cs) = (g.storage_with("x", bytemuck::cast_slice(&x)), g.storage_with("cs", bytemuck::cast_slice(&cos_sin)));
            let (qkv, q) = (g.storage("qkv", (n * rows * 4) as u64), g.storage("q", (n * hq * d * 4) as u64));
            let a = AttnShape { n_tokens: n, n_q_heads: hq, n_kv_heads: hkv, head_dim: d, pos0, ring, window: 0 };
            let mut enc = Recorder::new(&g);
            ops::qkv_rope_store(&mut enc, a, &xb, &m, &qkv, &cs, &q, &cache);
            let dispatches = enc.dispatches();
            submit(&g, enc);
            let (mut k, mut v) = (Vec::new(), Vec::new());
            for seg in &cache {
                k.extend(read_f32(&g, &seg.k, (seg.slots * hkv * d) as usize));
                v.extend(read_f32(&g, &seg.v, (seg.slots * hkv * d) as usize));
            }
            (read_f32(&g, &q, (n * hq * d) as usize), k, v, dispatches)
        };
        let (q1, k1, v1, fused) = run(None);
        let (q2, k2, v2, unfused) = run(Some(512));
        assert_eq!(fused, 1);
        assert!(unfused > 2);
        assert_close("q", &q1, &q2, 1e-5);
        assert_close("k cache", &k1, &k2, 1e-5);
        assert_close("v cache", &v1, &v2, 1e-5);
        // The slots of this chunk were written (the rest of the ring stays zero).
        let slot_len = (hkv * d) as usize;
        for t in 0..n {
            let slot = ((pos0 + t) % ring) as usize;
            assert!(k1[slot * slot_len..][..slot_len].iter().any(|&v| v != 0.0));
        }
    }
}

/// RoPE in both pair styles, with and without per-head q/k RMSNorm (qwen3), and the cache write.
#[test]
fn rope_styles_and_qk_norm_match_cpu() {
    let g = gpu(None);
    let mut rng = StdRng::seed_from_u64(11);
    let (hq, hkv, d, n, pos0) = (6u32, 2u32, 24u32, 5usize, 3u32);
    let width = ((hq + 2 * hkv) * d) as usize;
    let qkv = randn(&mut rng, n * width, 1.5);
    let cos_sin: Vec<f32> = (0..n * d as usize / 2).flat_map(|i| [(i as f32 * 0.3).cos(), (i as f32 * 0.3).sin()]).collect();
    let (qn, kn) = (randn(&mut rng, d as usize, 1.0), randn(&mut rng, d as usize, 1.0));
    let eps = 1e-6f32;
    let norms = (g.storage_with("q norm", bytemuck::cast_slice(&qn)), g.storage_with("k norm", bytemuck::cast_slice(&kn)));
    for (interleaved, with_norm) in [(false, false), (true, false), (false, true), (true, true)] {
        let (mut q_want, mut k_want, mut v_want) = (vec![], vec![], vec![]);
        for t in 0..n {
            let cs = &cos_sin[t * d as usize..][..d as usize];
            for h in 0..(hq + 2 * hkv) as usize {
                let mut v = qkv[t * width + h * d as usize..][..d as usize].to_vec();
                if h >= (hq + hkv) as usize {
                    v_want.extend(v);
                    continue;
                }
                if with_norm {
                    let w = if h < hq as usize { &qn } else { &kn };
                    v = cpu::rmsnorm(&v, w, eps);
                }
                let r = if interleaved { cpu::rope_interleaved(&v, cs) } else { cpu::rope(&v, cs) };
                if h < hq as usize { q_want.extend(r) } else { k_want.extend(r) }
            }
        }
        let cache = KvSegment::allocate(&g, "kv", 16, hkv, d).unwrap();
        let q_b = g.storage("q", (n as u32 * hq * d) as u64 * 4);
        let a = AttnShape { n_tokens: n as u32, n_q_heads: hq, n_kv_heads: hkv, head_dim: d, pos0, ring: 16, window: 0 };
        let style = RopeStyle { interleaved, qk_norm: with_norm.then_some(&norms), eps };
        let mut enc = Recorder::new(&g);
        let qkv_b = g.storage_with("qkv", bytemuck::cast_slice(&qkv));
        let cs_b = g.storage_with("cs", bytemuck::cast_slice(&cos_sin));
        ops::rope_qk_store(&mut enc, a, style, &qkv_b, &cs_b, &q_b, &cache);
        submit(&g, enc);
        let what = format!("rope interleaved={interleaved} qk_norm={with_norm}");
        assert_close(&format!("{what} q"), &read_f32(&g, &q_b, q_want.len()), &q_want, 1e-5);
        let kv_len = (hkv * d) as usize;
        let k_got = read_f32(&g, &cache[0].k, 16 * kv_len);
        let v_got = read_f32(&g, &cache[0].v, 16 * kv_len);
        let slots = pos0 as usize * kv_len..(pos0 as usize + n) * kv_len;
        assert_close(&format!("{what} k"), &k_got[slots.clone()], &k_want, 1e-5);
        assert_close(&format!("{what} v"), &v_got[slots], &v_want, 0.0);
    }
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
