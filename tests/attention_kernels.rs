//! The attention kernels (RoPE with the KV-cache write, fused or not with the q/k/v projection;
//! partial attention and merge) against the CPU reference (`wgpt::ops::cpu`), in both shader
//! feature modes (subgroups/f16 where the device has them, and the portable paths), with f32 and
//! f16 KV caches, full, causal and sliding-ring attention, long contexts with many splits, caches
//! split across bindings and GQA groups of 1, 3, 8 and 9 query heads.
//!
//! f16 caches are compared with the CPU reference fed the same keys and values rounded to f16
//! (the GPU rotates in f32 and rounds once, so a value may land one f16 step away): budget
//! 2e-3 relative on attention outputs, one f16 step (1e-3 relative) on cache contents.

mod common;

use common::check::*;
use rand::{rngs::StdRng, SeedableRng};
use wgpt::gpu::{Gpu, Recorder};
use wgpt::ops::{self, cpu, AttnShape, Bf16Matrix, KvCache, KvSegment, RopeStyle};

const F32_TOL: f32 = 2e-5;
use common::budget::{F16_STEP, KERNEL_F16_ATTENTION as F16_ATTN_TOL, KERNEL_F32};

/// The first `n` values of a K or V buffer stored as `dtype`.
fn read_cache(g: &Gpu, buf: &wgpu::Buffer, n: usize, dtype: KvCache) -> Vec<f32> {
    match dtype {
        KvCache::F32 => read_f32(g, buf, n),
        KvCache::F16 => cpu::unpack_f16_pairs(&read_u32(g, buf, n / 2)),
    }
}

fn mode(g: &Gpu) -> &'static str {
    g.shader.name()
}

/// Fills K and V of every segment with NaN, so any slot read that was never written (or that
/// lies outside what a query may see and still counts) poisons the result.
fn poison(g: &Gpu, cache: &[KvSegment]) {
    for seg in cache {
        let words = (seg.k.size() / 4) as usize;
        let nan = match seg.dtype {
            KvCache::F32 => vec![f32::NAN.to_bits(); words],
            KvCache::F16 => vec![0x7e00_7e00u32; words],
        };
        g.write(&seg.k, 0, bytemuck::cast_slice(&nan));
        g.write(&seg.v, 0, bytemuck::cast_slice(&nan));
    }
}

struct Case {
    limit: Option<u64>,
    window: u32,
    ring: u32,
    chunks: &'static [usize],
    d: u32,
}

/// Runs rope + KV store + attention over a sequence in chunks and compares with the CPU, for
/// GQA groups of 1, 3, 8 (per-group kernel) and 9 (per-head kernel), both caches, both modes.
fn attention_case(c: Case) {
    for (hq, hkv) in [(2u32, 2u32), (6, 2), (16, 2), (9, 1)] {
        for g in common::gpu_modes(c.limit) {
            for dtype in [KvCache::F32, KvCache::F16] {
                attention_case_heads(&g, &c, hq, hkv, dtype);
            }
        }
    }
}

fn attention_case_heads(g: &Gpu, c: &Case, hq: u32, hkv: u32, dtype: KvCache) {
    let (window, ring, d) = (c.window, c.ring, c.d);
    let mut rng = StdRng::seed_from_u64(4);
    let total: usize = c.chunks.iter().sum();
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
    if dtype == KvCache::F16 {
        (k_all, v_all) = (cpu::round_f16(&k_all), cpu::round_f16(&v_all));
    }
    let want = cpu::attention(&q_all, &k_all, &v_all, &sinks, hq as usize, hkv as usize, d as usize, 0, window as usize);

    let cache = KvSegment::allocate_as(g, "kv", ring, hkv, d, dtype).unwrap();
    let cache_bytes = (ring * hkv * d) as u64 * dtype.bytes_per_value();
    assert_eq!(cache.len() > 1, c.limit.is_some_and(|l| cache_bytes > l));
    poison(g, &cache);
    let sinks_b = g.storage_with("sinks", bytemuck::cast_slice(&sinks));
    let max_t = *c.chunks.iter().max().unwrap() as u32;
    let partials = g.storage("partials", ops::attention_partials_bytes(max_t, hq, d, cache.len() as u32));
    let q_b = g.storage("q", (max_t * hq * d) as u64 * 4);
    let out_b = g.storage("out", (max_t * hq * d) as u64 * 4);
    let mut got = vec![];
    let mut pos0 = 0;
    for &n in c.chunks {
        let qkv_b = g.storage_with("qkv", bytemuck::cast_slice(&qkv[pos0 * width..(pos0 + n) * width]));
        let cs_b = g.storage_with("cs", bytemuck::cast_slice(&cos_sin[pos0 * d as usize..(pos0 + n) * d as usize]));
        let a = AttnShape { n_tokens: n as u32, n_q_heads: hq, n_kv_heads: hkv, head_dim: d, pos0: pos0 as u32, ring, window };
        let mut enc = Recorder::new(g);
        ops::rope_qk_store(&mut enc, a, RopeStyle { interleaved: false, qk_norm: None, eps: 0.0 }, &qkv_b, &cs_b, &q_b, &cache);
        ops::attention(&mut enc, a, &q_b, &cache, &sinks_b, &partials, &out_b);
        submit(g, enc);
        got.extend(read_f32(g, &out_b, n * (hq * d) as usize));
        pos0 += n;
    }
    let tol = if dtype == KvCache::F16 { F16_ATTN_TOL } else { F32_TOL };
    let what = format!(
        "attention [{}] {hq}/{hkv} heads d={d} {} cache window={window} ring={ring} limit={:?}",
        mode(g),
        dtype.name(),
        c.limit
    );
    assert_close(&what, &got, &want, tol);
}

#[test]
fn attention_full_causal_matches_cpu() {
    attention_case(Case { limit: None, window: 0, ring: 64, chunks: &[7, 1, 1, 13, 1], d: 16 });
    // head_dim not a multiple of 4: rows end in a partly used vec4.
    attention_case(Case { limit: None, window: 0, ring: 16, chunks: &[5, 1, 1], d: 22 });
}

#[test]
fn attention_sliding_ring_matches_cpu() {
    // Window 5, chunks up to 7 tokens: the ring holds window + chunk - 1 slots, so the live
    // positions wrap around its end.
    attention_case(Case { limit: None, window: 5, ring: 11, chunks: &[7, 1, 1, 6, 1, 1, 1], d: 16 });
    // A ring larger than the window: slots outside the window hold stale keys that must not count.
    attention_case(Case { limit: None, window: 6, ring: 20, chunks: &[9, 1, 1, 1, 8, 1, 1, 1, 1, 1], d: 16 });
}

#[test]
fn attention_long_context_splits_matches_cpu() {
    attention_case(Case { limit: None, window: 0, ring: 200, chunks: &[150, 1, 1], d: 16 });
    // gpt-oss/SmolLM2 head size: tiles of 32 keys, dozens of splits per decoded token.
    attention_case(Case { limit: None, window: 0, ring: 700, chunks: &[128, 128, 128, 128, 128, 1, 1], d: 64 });
}

#[test]
fn attention_with_segmented_cache_matches_cpu() {
    // 2 KV heads x 16 dims x 4 bytes = 128 bytes per f32 slot: 3 slots per segment (6 for f16).
    attention_case(Case { limit: Some(400), window: 0, ring: 40, chunks: &[9, 1, 1, 12], d: 16 });
    attention_case(Case { limit: Some(400), window: 4, ring: 10, chunks: &[7, 1, 1, 6, 1], d: 16 });
}

#[test]
fn f16_cache_halves_kv_bytes() {
    let cfg = wgpt::models::gpt_oss::synthetic::preset("gpt-oss-20b", None).unwrap();
    let f32_bytes = cfg.kv_bytes_per_token_as(4095, KvCache::F32);
    assert_eq!(f32_bytes, cfg.kv_bytes_per_token(4095));
    assert_eq!(cfg.kv_bytes_per_token_as(4095, KvCache::F16) * 2, f32_bytes);
    let g = common::gpu(None);
    let (f32_seg, f16_seg) = (
        KvSegment::allocate(&g, "kv", 100, 8, 64).unwrap(),
        KvSegment::allocate_as(&g, "kv", 100, 8, 64, KvCache::F16).unwrap(),
    );
    assert_eq!(f16_seg[0].k.size() * 2, f32_seg[0].k.size());
    assert!(KvSegment::allocate_as(&g, "kv", 100, 8, 63, KvCache::F16).is_err());
}

#[test]
fn fused_qkv_rope_store_equals_projection_then_rope() {
    let (hq, hkv, cols, ring, pos0) = (4u32, 2u32, 48u32, 12u32, 9u32);
    // head_dim 20 with f32; the fused f16 write needs head_dim % 4 == 0 (24).
    // Without and with the attention RMSNorm taken inside the fused kernel (rmsnorm into
    // scratch first when unfused).
    let cases = [(20u32, KvCache::F32, false), (24, KvCache::F32, false), (24, KvCache::F16, false), (20, KvCache::F32, true), (24, KvCache::F16, true)];
    for (d, dtype, with_norm) in cases {
        let rows = (hq + 2 * hkv) * d;
        let mut rng = StdRng::seed_from_u64(12);
        let w = bf16_bits(&randn(&mut rng, (rows * cols) as usize, 0.3));
        let bias = randn(&mut rng, rows as usize, 0.5);
        let gamma: Vec<f32> = randn(&mut rng, cols as usize, 0.5).iter().map(|v| 1.0 + v).collect();
        for n in 1..=3u32 {
            let x = randn(&mut rng, (n * cols) as usize, 1.0);
            let cos_sin = randn(&mut rng, (n * d) as usize, 1.0);
            // Unsplit (one fused dispatch) and split into small bindings (projection, then RoPE).
            let run = |g: &Gpu, limit: bool| {
                let m = Bf16Matrix::upload(g, "qkv", cols, &[bytemuck::cast_slice(&w)], Some(&bias)).unwrap();
                let cache = KvSegment::allocate_as(g, "kv", ring, hkv, d, dtype).unwrap();
                assert_eq!(cache.len() > 1, limit);
                let (xb, cs) = (g.storage_with("x", bytemuck::cast_slice(&x)), g.storage_with("cs", bytemuck::cast_slice(&cos_sin)));
                let (qkv, q) = (g.storage("qkv", (n * rows * 4) as u64), g.storage("q", (n * hq * d * 4) as u64));
                let (gb, normed) = (g.storage_with("gamma", bytemuck::cast_slice(&gamma)), g.storage("normed", (n * cols * 4) as u64));
                let norm = with_norm.then_some(ops::InputNorm { weight: &gb, eps: 1e-5 });
                let a = AttnShape { n_tokens: n, n_q_heads: hq, n_kv_heads: hkv, head_dim: d, pos0, ring, window: 0 };
                let mut enc = Recorder::new(g);
                ops::qkv_rope_store(&mut enc, a, &xb, norm, &normed, &m, &qkv, &cs, &q, &cache);
                let dispatches = enc.dispatches();
                submit(g, enc);
                let (mut k, mut v) = (Vec::new(), Vec::new());
                for seg in &cache {
                    k.extend(read_cache(g, &seg.k, (seg.slots * hkv * d) as usize, dtype));
                    v.extend(read_cache(g, &seg.v, (seg.slots * hkv * d) as usize, dtype));
                }
                (read_f32(g, &q, (n * hq * d) as usize), k, v, dispatches)
            };
            for (whole, split) in common::gpu_modes(None).into_iter().zip(common::gpu_modes(Some(512))) {
                let (q1, k1, v1, fused) = run(&whole, false);
                let (q2, k2, v2, unfused) = run(&split, true);
                assert_eq!(fused, 1);
                assert!(unfused > 2);
                let what = format!("[{}] d={d} {} cache n={n} norm {with_norm}", mode(&whole), dtype.name());
                let tol = if dtype == KvCache::F16 { F16_STEP } else { KERNEL_F32 };
                assert_close(&format!("{what} q"), &q1, &q2, KERNEL_F32);
                assert_close(&format!("{what} k cache"), &k1, &k2, tol);
                assert_close(&format!("{what} v cache"), &v1, &v2, tol);
                // The slots of this chunk were written (the rest of the ring stays zero).
                let slot_len = (hkv * d) as usize;
                for t in 0..n {
                    let slot = ((pos0 + t) % ring) as usize;
                    assert!(k1[slot * slot_len..][..slot_len].iter().any(|&v| v != 0.0));
                    assert!(v1[slot * slot_len..][..slot_len].iter().any(|&v| v != 0.0));
                }
                let written = k1.iter().filter(|&&v| v != 0.0).count();
                assert!(written <= (n as usize) * slot_len, "{what}: values outside the chunk's slots");
            }
        }
    }
}

/// RoPE in both pair styles, with and without per-head q/k RMSNorm (qwen3), and the cache write.
#[test]
fn rope_styles_and_qk_norm_match_cpu() {
    let mut rng = StdRng::seed_from_u64(11);
    let (hq, hkv, d, n, pos0) = (6u32, 2u32, 24u32, 5usize, 3u32);
    let width = ((hq + 2 * hkv) * d) as usize;
    let qkv = randn(&mut rng, n * width, 1.5);
    let cos_sin: Vec<f32> = (0..n * d as usize / 2).flat_map(|i| [(i as f32 * 0.3).cos(), (i as f32 * 0.3).sin()]).collect();
    let (qn, kn) = (randn(&mut rng, d as usize, 1.0), randn(&mut rng, d as usize, 1.0));
    let eps = 1e-6f32;
    for g in common::gpu_modes(None) {
        let norms = (g.storage_with("q norm", bytemuck::cast_slice(&qn)), g.storage_with("k norm", bytemuck::cast_slice(&kn)));
        for dtype in [KvCache::F32, KvCache::F16] {
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
                let cache = KvSegment::allocate_as(&g, "kv", 16, hkv, d, dtype).unwrap();
                let q_b = g.storage("q", (n as u32 * hq * d) as u64 * 4);
                let a = AttnShape { n_tokens: n as u32, n_q_heads: hq, n_kv_heads: hkv, head_dim: d, pos0, ring: 16, window: 0 };
                let style = RopeStyle { interleaved, qk_norm: with_norm.then_some(&norms), eps };
                let mut enc = Recorder::new(&g);
                let qkv_b = g.storage_with("qkv", bytemuck::cast_slice(&qkv));
                let cs_b = g.storage_with("cs", bytemuck::cast_slice(&cos_sin));
                ops::rope_qk_store(&mut enc, a, style, &qkv_b, &cs_b, &q_b, &cache);
                submit(&g, enc);
                let what = format!("[{}] rope interleaved={interleaved} qk_norm={with_norm} {} cache", mode(&g), dtype.name());
                assert_close(&format!("{what} q"), &read_f32(&g, &q_b, q_want.len()), &q_want, KERNEL_F32);
                let kv_len = (hkv * d) as usize;
                let k_got = read_cache(&g, &cache[0].k, 16 * kv_len, dtype);
                let v_got = read_cache(&g, &cache[0].v, 16 * kv_len, dtype);
                let slots = pos0 as usize * kv_len..(pos0 as usize + n) * kv_len;
                match dtype {
                    KvCache::F32 => {
                        assert_close(&format!("{what} k"), &k_got[slots.clone()], &k_want, KERNEL_F32);
                        assert_close(&format!("{what} v"), &v_got[slots], &v_want, 0.0);
                    }
                    KvCache::F16 => {
                        assert_close(&format!("{what} k"), &k_got[slots.clone()], &cpu::round_f16(&k_want), F16_STEP);
                        // Values are copied, not computed: exactly the f16 rounding.
                        assert_close(&format!("{what} v"), &v_got[slots], &cpu::round_f16(&v_want), 0.0);
                    }
                }
            }
        }
    }
}
