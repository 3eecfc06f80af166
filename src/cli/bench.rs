//! `wgpt bench`: llama-bench-style prefill (pp) and decode (tg) speed, with bytes per token
//! and the fraction of the device's measured read bandwidth.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use wgpt::bench::{self, BenchOptions, BenchReport};
use wgpt::gpu::Gpu;
use wgpt::models::{gpt_oss::synthetic, Model};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// A model directory or Hugging Face repo id (or use --synthetic).
    pub model: Option<String>,
    /// Random weights of a published model's shapes, made on the GPU: gpt-oss-20b or gpt-oss-120b.
    #[arg(long, conflicts_with = "model")]
    pub synthetic: Option<String>,
    /// Keep only the first N layers of the synthetic model.
    #[arg(long, requires = "synthetic")]
    pub layers: Option<u32>,
    /// Prompt tokens processed in one pass (pp).
    #[arg(short = 'p', long, default_value_t = 512)]
    pub prefill: u32,
    /// Tokens generated one by one (tg).
    #[arg(short = 'n', long, default_value_t = 128)]
    pub decode: u32,
    /// Tokens already in the KV cache when decode is measured.
    #[arg(long, default_value_t = 0)]
    pub ctx: u32,
    /// GPU time per kernel family (timestamp queries).
    #[arg(long)]
    pub profile: bool,
    /// Also time each decode mat-vec alone at the model's real shapes.
    #[arg(long)]
    pub kernels: bool,
    /// How the KV cache stores keys and values: f32 or f16.
    #[arg(long, default_value = "f32")]
    pub kv_cache: wgpt::models::KvCache,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Peak resident memory of this process (Linux), which on a CPU Vulkan driver includes the
/// "GPU" memory.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn bench(
    args: &BenchArgs,
    gpu: impl FnOnce() -> Result<Arc<Gpu>>,
    load: impl FnOnce(&str) -> Result<Arc<Model>>,
) -> Result<()> {
    let t0 = Instant::now();
    let (model, name) = match (&args.synthetic, &args.model) {
        (Some(preset), _) => {
            let cfg = synthetic::preset(preset, args.layers)?;
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template("making random weights on the GPU {bar:30} {pos}/{len} layers")
                    .expect("valid template"),
            );
            let model = Model::synthetic(gpu()?, cfg, args.seed as u32, &mut |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            });
            bar.finish_and_clear();
            let name = match args.layers {
                Some(n) => format!("{preset} (synthetic, {n} layers)"),
                None => format!("{preset} (synthetic)"),
            };
            (model?, name)
        }
        (None, Some(spec)) => (load(spec)?, spec.clone()),
        (None, None) => bail!("give a model directory or repo id, or --synthetic gpt-oss-20b|gpt-oss-120b"),
    };
    let load_seconds = t0.elapsed().as_secs_f64();
    if args.kernels && model.cfg.num_local_experts == 0 {
        bail!("--kernels times gpt-oss's mat-vecs (bf16 attention and MXFP4 experts) and this model has no experts; --profile times every kernel of its decode step");
    }
    let opts = BenchOptions { prefill: args.prefill, decode: args.decode, depth: args.ctx, profile: args.profile, seed: args.seed };
    let report = pollster::block_on(bench::run_with(&model, &name, load_seconds, &opts, args.kv_cache))?;
    let kernels = if args.kernels {
        Some(pollster::block_on(bench::kernels(&model.gpu, &model.cfg, report.peak_read_gbps))?)
    } else {
        None
    };
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(rss) = peak_rss_bytes() {
            v["host_peak_rss_bytes"] = rss.into();
        }
        if let Some(k) = &kernels {
            v["kernels"] = serde_json::to_value(k)?;
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print_table(&report);
    if let Some(k) = kernels {
        println!("\n| kernel | shape | MB | µs | GB/s | of peak |\n|---|---|---:|---:|---:|---:|");
        for r in k {
            println!(
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.2} |",
                r.kernel,
                r.shape,
                r.bytes as f64 / 1e6,
                r.us,
                r.gbps,
                r.roofline_fraction
            );
        }
    }
    Ok(())
}

fn print_table(r: &BenchReport) {
    println!("{} on {} ({}, {}; shader features: {})", r.model, r.device, r.backend, r.driver, r.shader_features);
    println!("| test | tokens/s |\n|---|---:|");
    if r.prefill_tokens > 0 {
        println!("| pp{} | {:.2} |", r.prefill_tokens, r.prefill_tok_s);
    }
    if r.decode_tokens > 0 {
        println!("| tg{} @ depth {} | {:.2} |", r.decode_tokens, r.depth, r.decode_tok_s);
    }
    println!(
        "decode reads {:.3} GB of weights + {:.3} MB of KV per token: {:.2} GB/s effective, peak read {:.2} GB/s, roofline fraction {:.3}",
        r.weight_bytes_per_token as f64 / 1e9,
        r.kv_bytes_per_token as f64 / 1e6,
        r.effective_gbps,
        r.peak_read_gbps,
        r.roofline_fraction
    );
    println!(
        "per token: {:.0} dispatches, {:.0} submits, {:.0} bytes read back, {:.0} allocations, {:.0} µs of host time; GPU memory {:.2} GB; load {:.2}s",
        r.dispatches_per_token,
        r.submits_per_token,
        r.readback_bytes_per_token,
        r.allocations_per_token,
        r.host_us_per_token,
        r.gpu_bytes_allocated as f64 / 1e9,
        r.load_seconds
    );
    if let Some(rss) = peak_rss_bytes() {
        println!("host peak RSS {:.2} GB", rss as f64 / 1e9);
    }
    if let Some(p) = &r.profile {
        println!("\n| kernel | calls/token | µs/token | GB/s | share |\n|---|---:|---:|---:|---:|");
        for k in p {
            println!("| {} | {:.1} | {:.1} | {:.1} | {:.1}% |", k.kernel, k.calls_per_token, k.us_per_token, k.gbps, k.share * 100.0);
        }
    }
}
