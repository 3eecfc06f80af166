//! Speed measurements: prefill and decode tokens/s of a model, the bytes each decoded token
//! reads, and the device's own streaming-read bandwidth measured in the same run, so that
//! `roofline_fraction` means the same on any device. Also per-kernel GPU time (`profile`) and
//! a micro-benchmark of every mat-vec at the model's real shapes (`kernels`).
//!
//! Decode at batch 1 is bound by memory bandwidth: each token reads every attention weight, the
//! LM head and the chosen experts once. The byte counts (`Model::weight_bytes_per_token`,
//! `Config::kv_bytes_per_token`) are those the kernels actually read (bf16 weights, MXFP4
//! experts, f32 biases, norms and KV cache).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use web_time::Instant;

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder};
use crate::models::{Config, KvCache, Model, Output, Want};
use crate::ops::{self, Bf16Matrix, Fill, MatmulIo, Mxfp4Experts, RouteIo, Routed, Swiglu};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Prompt tokens processed in one pass (llama-bench's pp512).
    pub prefill: u32,
    /// Tokens generated one at a time (tg128).
    pub decode: u32,
    /// Tokens already in the KV cache when decode is measured.
    pub depth: u32,
    /// Time every kernel on the GPU (when the adapter has timestamp queries).
    pub profile: bool,
    pub seed: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions { prefill: 512, decode: 128, depth: 0, profile: false, seed: 1 }
    }
}

/// One benchmark run, printed as JSON by `wgpt bench --json`.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub device: String,
    pub backend: String,
    pub driver: String,
    /// Optional shader features the kernels used (`none`, `subgroups`, `f16`, `subgroups,f16`).
    pub shader_features: String,
    /// How the KV cache stored keys and values (`f32` or `f16`).
    pub kv_cache: String,
    pub model: String,
    pub layers: u32,
    pub prefill_tokens: u32,
    pub decode_tokens: u32,
    pub depth: u32,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
    /// Weight bytes one decoded token reads.
    pub weight_bytes_per_token: u64,
    /// KV-cache bytes one decoded token reads (at the middle of the measured decode).
    pub kv_bytes_per_token: u64,
    /// (weight + KV bytes per token) × decode tokens/s, in GB/s.
    pub effective_gbps: f64,
    /// The device's streaming-read bandwidth measured by `read_bandwidth` in this run.
    pub peak_read_gbps: f64,
    pub roofline_fraction: f64,
    pub dispatches_per_token: f64,
    pub submits_per_token: f64,
    pub readback_bytes_per_token: f64,
    /// Buffers and bind groups created per decoded token (after the first steps).
    pub allocations_per_token: f64,
    /// Host (CPU) time to record and submit one decoded token's pass, in microseconds.
    pub host_us_per_token: f64,
    pub gpu_bytes_allocated: u64,
    pub load_seconds: f64,
    /// GPU time per kernel family per decoded token, with `--profile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Vec<KernelProfile>>,
}

/// GPU time of one kernel family in a decoded token.
#[derive(Clone, Debug, Serialize)]
pub struct KernelProfile {
    pub kernel: String,
    pub calls_per_token: f64,
    pub us_per_token: f64,
    pub gbps: f64,
    /// Share of the GPU time of the token.
    pub share: f64,
}

/// Streaming-read bandwidth of the device in GB/s: a buffer as large as one binding allows (up
/// to 1 GiB) read repeatedly by `read_bandwidth`, in the GPU layout and the CPU-driver layout;
/// the faster counts.
pub async fn peak_read_gbps(gpu: &Gpu) -> Result<f64> {
    let bytes = (gpu.max_binding.min(1 << 30) / 16 * 16).max(16);
    let buf = gpu.storage("bandwidth source", bytes);
    let sink = gpu.storage("bandwidth sink", 16);
    let mut rec = Recorder::new(gpu);
    ops::fill_random(&mut rec, &buf, bytes, Fill::Bits, 7);
    ops::read_bandwidth(&mut rec, &buf, bytes, &sink, false);
    ops::read_bandwidth(&mut rec, &buf, bytes, &sink, true);
    rec.submit();
    gpu.wait()?;
    // Enough passes for about 4 GB, at least 3.
    let reps = (4_000_000_000 / bytes).clamp(3, 64) as u32;
    let mut best = 0.0f64;
    for blocked in [false, true, false, true] {
        let mut rec = Recorder::new(gpu);
        for _ in 0..reps {
            ops::read_bandwidth(&mut rec, &buf, bytes, &sink, blocked);
        }
        let t0 = Instant::now();
        rec.submit();
        gpu.read(&sink, 0, 4).await?;
        let secs = t0.elapsed().as_secs_f64();
        best = best.max(bytes as f64 * reps as f64 / secs / 1e9);
    }
    Ok(best)
}

fn random_tokens(n: u32, vocab: u32, seed: u64) -> Vec<u32> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % vocab as u64) as u32
        })
        .collect()
}

fn token(out: Output) -> Result<u32> {
    match out {
        Output::Token(id) => Ok(id),
        Output::Logits(_) => Err(Error::Gpu("expected a token".into())),
    }
}

/// Measures prefill and decode of `model` (see [`BenchOptions`]) with an f32 KV cache.
pub async fn run(model: &Arc<Model>, model_name: &str, load_seconds: f64, opts: &BenchOptions) -> Result<BenchReport> {
    run_with(model, model_name, load_seconds, opts, KvCache::F32).await
}

/// `run` with the KV cache stored as `kv`.
pub async fn run_with(model: &Arc<Model>, model_name: &str, load_seconds: f64, opts: &BenchOptions, kv: KvCache) -> Result<BenchReport> {
    let cfg = &model.cfg;
    let gpu = &model.gpu;
    if opts.prefill == 0 && opts.decode == 0 {
        return Err(Error::Input("nothing to measure: both prefill and decode are 0 tokens".into()));
    }
    let peak = peak_read_gbps(gpu).await?;

    let mut prefill_tok_s = 0.0;
    if opts.prefill > 0 {
        let mut session = model.session_with(opts.prefill + 8, opts.prefill, kv)?;
        // Compiles the prefill kernels before timing.
        token(session.forward(&random_tokens(8, cfg.vocab_size, opts.seed + 1), Want::Argmax).await?)?;
        session.reset();
        let prompt = random_tokens(opts.prefill, cfg.vocab_size, opts.seed);
        let t0 = Instant::now();
        token(session.forward(&prompt, Want::Argmax).await?)?;
        prefill_tok_s = opts.prefill as f64 / t0.elapsed().as_secs_f64();
    }

    let warmup = 2;
    let ctx = opts.depth + opts.decode + warmup + 2;
    let mut session = model.session_with(ctx, 1, kv)?;
    let mut id = random_tokens(1, cfg.vocab_size, opts.seed)[0];
    if opts.depth > 0 {
        session.fast_forward(opts.depth)?;
    }
    for _ in 0..warmup {
        id = token(session.forward(&[id], Want::Argmax).await?)?;
    }
    let before = session.record_stats();
    let t0 = Instant::now();
    // As generation runs: each token's pass is queued before the previous token is read back.
    for i in 0..opts.decode {
        id = session.decode_next(id, Want::Argmax, i + 1 < opts.decode).await?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let after = session.record_stats();
    let n = opts.decode.max(1) as f64;
    let decode_tok_s = if opts.decode > 0 { opts.decode as f64 / secs } else { 0.0 };
    let weight_bytes = model.weight_bytes_per_token();
    let kv_bytes = cfg.kv_bytes_per_token_as(opts.depth + warmup + opts.decode / 2, kv);
    let effective_gbps = (weight_bytes + kv_bytes) as f64 * decode_tok_s / 1e9;

    let profile = if opts.profile { Some(profile_decode(&mut session, id).await?) } else { None };

    Ok(BenchReport {
        device: gpu.info.name.clone(),
        backend: format!("{:?}", gpu.info.backend).to_lowercase(),
        driver: format!("{} {}", gpu.info.driver, gpu.info.driver_info).trim().to_string(),
        shader_features: gpu.shader.name().to_string(),
        kv_cache: kv.name().to_string(),
        model: model_name.to_string(),
        layers: cfg.num_hidden_layers,
        prefill_tokens: opts.prefill,
        decode_tokens: opts.decode,
        depth: opts.depth,
        prefill_tok_s,
        decode_tok_s,
        weight_bytes_per_token: weight_bytes,
        kv_bytes_per_token: kv_bytes,
        effective_gbps,
        peak_read_gbps: peak,
        roofline_fraction: if peak > 0.0 { effective_gbps / peak } else { 0.0 },
        dispatches_per_token: (after.dispatches - before.dispatches) as f64 / n,
        submits_per_token: (after.submits - before.submits) as f64 / n,
        readback_bytes_per_token: (after.readback_bytes - before.readback_bytes) as f64 / n,
        allocations_per_token: ((after.buffers_created + after.bind_groups_created)
            - (before.buffers_created + before.bind_groups_created)) as f64
            / n,
        host_us_per_token: (after.host_nanos - before.host_nanos) as f64 / n / 1e3,
        gpu_bytes_allocated: gpu.allocated_bytes(),
        load_seconds,
        profile,
    })
}

/// GPU time per kernel family over a few decoded tokens.
async fn profile_decode(session: &mut crate::models::Session, mut id: u32) -> Result<Vec<KernelProfile>> {
    const MAX_TIMED: u32 = 2048;
    if !session.enable_profiling(MAX_TIMED) {
        return Err(Error::Gpu("--profile needs TIMESTAMP_QUERY, which this adapter does not have".into()));
    }
    let room = session.context().saturating_sub(session.position() + 1);
    let before = session.record_stats().dispatches;
    id = token(session.forward(&[id], Want::Argmax).await?)?;
    let per_token = (session.record_stats().dispatches - before).max(1) as u32;
    let tokens = (MAX_TIMED / per_token).clamp(1, 8).min(room.max(1)) - 1;
    for _ in 0..tokens {
        id = token(session.forward(&[id], Want::Argmax).await?)?;
    }
    let _ = id;
    let timings = session.take_timings().await?;
    let n_tokens = (tokens + 1) as f64;
    let mut by_kernel: BTreeMap<&str, (u64, f64, u64)> = BTreeMap::new();
    for t in &timings {
        let e = by_kernel.entry(t.kernel).or_default();
        e.0 += 1;
        e.1 += t.nanos;
        e.2 += t.bytes;
    }
    let total: f64 = by_kernel.values().map(|v| v.1).sum::<f64>().max(1.0);
    let mut rows: Vec<KernelProfile> = by_kernel
        .into_iter()
        .map(|(kernel, (calls, nanos, bytes))| KernelProfile {
            kernel: kernel.to_string(),
            calls_per_token: calls as f64 / n_tokens,
            us_per_token: nanos / n_tokens / 1e3,
            gbps: if nanos > 0.0 { bytes as f64 / nanos } else { 0.0 },
            share: nanos / total,
        })
        .collect();
    rows.sort_by(|a, b| b.us_per_token.total_cmp(&a.us_per_token));
    Ok(rows)
}

/// One mat-vec of the decode path at the model's real shape.
#[derive(Clone, Debug, Serialize)]
pub struct KernelBench {
    pub kernel: String,
    pub shape: String,
    pub bytes: u64,
    pub us: f64,
    pub gbps: f64,
    pub roofline_fraction: f64,
}

/// Times each decode mat-vec of `cfg` (one layer's weights, random, on the GPU) and reports
/// its achieved bandwidth against `peak_gbps`.
pub async fn kernels(gpu: &Gpu, cfg: &Config, peak_gbps: f64) -> Result<Vec<KernelBench>> {
    let (h, v, e, k, i) = (cfg.hidden_size, cfg.vocab_size, cfg.num_local_experts, cfg.num_experts_per_tok, cfg.intermediate_size);
    if e == 0 || k == 0 {
        return Err(Error::Input(
            "--kernels times gpt-oss's mat-vecs (bf16 attention and MXFP4 experts) and this model has no experts; \
             --profile times every kernel of its decode step"
                .into(),
        ));
    }
    let (hq, d) = (cfg.num_attention_heads, cfg.head_dim);
    let qkv_w = cfg.qkv_width();
    let act_f = |rec: &mut Recorder, b: &wgpu::Buffer| ops::fill_random(rec, b, b.size(), Fill::F32 { base: 0.0, scale: 1.0 }, 3);
    let x = gpu.storage("x", h.max(hq * d) as u64 * 4);
    let y = gpu.storage("y", v.max(qkv_w).max(h * k) as u64 * 4);
    let act = gpu.storage("act", (k * i) as u64 * 4);
    let residual = gpu.storage("residual", h as u64 * 4);
    let ids: Vec<u32> = (0..k).map(|j| j * e / k).collect();
    let ids = gpu.storage_with("ids", bytemuck::cast_slice(&ids));
    let weights = gpu.storage_with("weights", bytemuck::cast_slice(&vec![1.0f32 / k as f32; k as usize]));
    let (norm, logits) = (gpu.storage("norm", h as u64 * 4), gpu.storage("logits", e as u64 * 4));
    let (route_ids, route_w) = (gpu.storage("route ids", k as u64 * 4), gpu.storage("route weights", k as u64 * 4));

    let qkv = Bf16Matrix::allocate(gpu, "qkv", qkv_w, h, true)?;
    let o = Bf16Matrix::allocate(gpu, "o", h, hq * d, true)?;
    let router = Bf16Matrix::allocate(gpu, "router", e, h, true)?;
    let gate_up = Mxfp4Experts::allocate(gpu, "gate_up", e, 2 * i, h, 2)?;
    let down = Mxfp4Experts::allocate(gpu, "down", e, h, i, 1)?;
    let lm_head = Bf16Matrix::allocate(gpu, "lm_head", v, h, false)?;
    {
        let mut rec = Recorder::new(gpu);
        for b in [&x, &act, &residual, &norm] {
            act_f(&mut rec, b);
        }
        for m in [&qkv, &o, &router, &lm_head] {
            for s in &m.slices {
                ops::fill_random(&mut rec, &s.buffers[0], s.buffers[0].size(), Fill::Bf16 { base: 0.0, scale: 0.05 }, 5);
            }
        }
        for x in [&gate_up, &down] {
            for s in &x.slices {
                ops::fill_random(&mut rec, &s.buffers[0], s.buffers[0].size(), Fill::Bits, 9);
                ops::fill_random(&mut rec, &s.buffers[1], s.buffers[1].size(), Fill::Mxfp4Scales, 11);
            }
        }
        rec.submit();
        gpu.wait()?;
    }
    let io = |cols: u32, accumulate: bool| MatmulIo { n_tokens: 1, x_offset: 0, x_stride: cols, y_stride: 0, y_offset: 0, accumulate };
    let mx = |rows: u64, cols: u64| rows * (cols / 2 + cols / 32 + 4);
    let swiglu = Swiglu { alpha: cfg.swiglu_alpha, limit: cfg.swiglu_limit };
    type Op<'a> = Box<dyn Fn(&mut Recorder) + 'a>;
    let cases: Vec<(&str, String, u64, Op)> = vec![
        ("matvec qkv", format!("{qkv_w}x{h} bf16"), qkv_w as u64 * h as u64 * 2, Box::new(|r| ops::matmul(r, &x, &qkv, &y, io(h, false)))),
        ("matvec o", format!("{h}x{} bf16", hq * d), h as u64 * (hq * d) as u64 * 2, Box::new(|r| ops::matmul(r, &x, &o, &residual, io(hq * d, true)))),
        (
            "route (norm + router + top-k)",
            format!("{e}x{h} bf16"),
            e as u64 * h as u64 * 2,
            Box::new(|r| {
                let rio = RouteIo { x: &residual, normed: &act, logits: &logits, ids: &route_ids, weights: &route_w };
                ops::moe_route(r, 1, &norm, cfg.rms_norm_eps, &router, k, rio);
            }),
        ),
        (
            "experts gate_up + swiglu",
            format!("{k} of {e}x{}x{h} mxfp4", 2 * i),
            k as u64 * mx(2 * i as u64, h as u64),
            Box::new(|r| ops::expert_gate_up(r, 1, k, &x, Routed::chosen(&ids, &weights, None), &gate_up, swiglu, &act)),
        ),
        (
            "experts down + accumulate",
            format!("{k} of {e}x{h}x{i} mxfp4"),
            k as u64 * mx(h as u64, i as u64),
            Box::new(|r| ops::expert_down_accumulate(r, 1, k, &act, Routed::chosen(&ids, &weights, None), &down, &y, &residual)),
        ),
        ("matvec lm_head", format!("{v}x{h} bf16"), v as u64 * h as u64 * 2, Box::new(|r| ops::matmul(r, &x, &lm_head, &y, io(h, false)))),
    ];
    let mut out = Vec::new();
    for (name, shape, bytes, op) in cases {
        // Warm up (pipelines), then enough calls for about 2 GB of reads.
        let mut rec = Recorder::new(gpu);
        op(&mut rec);
        rec.submit();
        gpu.wait()?;
        let calls = (2_000_000_000 / bytes.max(1)).clamp(3, 500);
        let mut rec = Recorder::new(gpu);
        for _ in 0..calls {
            op(&mut rec);
        }
        let t0 = Instant::now();
        rec.submit();
        gpu.read(&residual, 0, 4).await?;
        let us = t0.elapsed().as_secs_f64() * 1e6 / calls as f64;
        let gbps = bytes as f64 / us / 1e3;
        out.push(KernelBench {
            kernel: name.to_string(),
            shape,
            bytes,
            us,
            gbps,
            roofline_fraction: if peak_gbps > 0.0 { gbps / peak_gbps } else { 0.0 },
        });
    }
    gpu.take_error()?;
    Ok(out)
}
