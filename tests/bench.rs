//! `wgpt bench` and the pieces it stands on: the JSON report, the counted per-token costs
//! (dispatches, submits, readback, allocations), byte accounting and random models made on the GPU.

mod common;

use std::process::Command;

use common::{fixture, gpu};
use wgpt::models::{gpt_oss::synthetic, Model, Output, Want};

#[test]
fn bench_json_reports_counted_costs_of_a_model_directory() {
    let out = Command::new(env!("CARGO_BIN_EXE_wgpt"))
        .args(["bench", "-p", "16", "-n", "6", "--ctx", "40", "--json", "--profile"])
        .arg(fixture("tiny"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for key in [
        "device", "backend", "model", "prefill_tok_s", "decode_tok_s", "weight_bytes_per_token", "kv_bytes_per_token",
        "effective_gbps", "dispatches_per_token", "submits_per_token", "readback_bytes_per_token", "gpu_bytes_allocated",
        "load_seconds", "peak_read_gbps", "roofline_fraction",
    ] {
        assert!(r.get(key).is_some(), "missing {key} in {r}");
    }
    let cfg = wgpt::models::gpt_oss::config::from_dir(&fixture("tiny")).unwrap();
    let layers = cfg.num_hidden_layers as f64;
    let num = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} is not a number: {r}"));
    assert!(num("prefill_tok_s") > 0.0 && num("decode_tok_s") > 0.0);
    assert!(num("dispatches_per_token") <= 10.0 * layers + 4.0, "{r}");
    assert_eq!(num("submits_per_token"), 1.0);
    assert_eq!(num("readback_bytes_per_token"), 4.0);
    assert_eq!(num("allocations_per_token"), 0.0);
    assert_eq!(num("weight_bytes_per_token") as u64, cfg.moe_weight_bytes_per_token());
    assert!(num("peak_read_gbps") > 0.0);
    let expected_fraction = num("effective_gbps") / num("peak_read_gbps");
    assert!((num("roofline_fraction") - expected_fraction).abs() < 1e-9);
    // Timestamp queries exist on lavapipe: every kernel family of a decode step is timed.
    let profile = r["profile"].as_array().expect("profile rows");
    let kernels: Vec<&str> = profile.iter().map(|p| p["kernel"].as_str().unwrap()).collect();
    for k in ["matvec", "attn_partial", "route", "expert_gate_up_swiglu", "expert_down_accumulate", "argmax"] {
        assert!(kernels.iter().any(|x| x.starts_with(k)), "{k} missing from the profile {kernels:?}");
    }
    let shares: f64 = profile.iter().map(|p| p["share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-6);
}

#[test]
fn byte_accounting_matches_the_published_gpt_oss_20b_figures() {
    let cfg = synthetic::preset("gpt-oss-20b", None).unwrap();
    // gpt-oss-spec.md §10 counts 3,708,089,088 bytes with bf16 biases and norms; the kernels
    // here read those as f32, which adds their size once more.
    let h = 2880u64;
    let bf16_vectors_per_layer = 5120 + 2880 + 2 * 2880 + 64 + 32 + 4 * (5760 + 2880);
    let extra = 24 * bf16_vectors_per_layer * 2 + h * 2;
    assert_eq!(cfg.moe_weight_bytes_per_token(), 3_708_089_088 + extra);
    // 12 full layers read every position, 12 sliding layers at most 128; 8 heads x 64 x f32 x (K, V).
    assert_eq!(cfg.kv_bytes_per_token(4095), (12 * 4096 + 12 * 128) * 4096);
    assert!(synthetic::preset("gpt-oss-7b", None).is_err());
    assert!(synthetic::preset("gpt-oss-20b", Some(0)).is_err());
    assert_eq!(synthetic::preset("gpt-oss-120b", Some(3)).unwrap().num_local_experts, 128);
}

#[test]
fn synthetic_weights_of_a_small_config_run_and_give_finite_logits() {
    let mut cfg = wgpt::models::gpt_oss::config::from_dir(&fixture("tiny")).unwrap();
    cfg.num_hidden_layers = 2;
    cfg.sliding_layers = None;
    let model = Model::synthetic(gpu(None), cfg.clone(), 5, &mut |_, _| {}).unwrap();
    let mut session = model.session(64, 16).unwrap();
    let Output::Logits(logits) = pollster::block_on(session.forward(&[1, 2, 3], Want::LastLogits)).unwrap() else { panic!() };
    assert_eq!(logits.len(), cfg.vocab_size as usize);
    assert!(logits.iter().all(|v| v.is_finite()));
    // Random weights are not all equal: the logits spread.
    let (lo, hi) = logits.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(hi - lo > 1e-3, "{lo}..{hi}");
    // Same seed, same model.
    let again = Model::synthetic(gpu(None), cfg, 5, &mut |_, _| {}).unwrap();
    let mut s2 = again.session(64, 16).unwrap();
    let Output::Logits(l2) = pollster::block_on(s2.forward(&[1, 2, 3], Want::LastLogits)).unwrap() else { panic!() };
    assert_eq!(logits, l2);
}
