//! SmolLM2-135M-Instruct (Q4_1 GGUF, the real published file) end to end, against references
//! computed from the same file (tests/reference/llamacpp_reference.py):
//! - an exact reference, a float64 numpy forward of the dequantized tensors: logits within a
//!   tight tolerance and identical greedy continuations;
//! - llama.cpp itself, whose CPU kernels round activations to 8 bits and keep an f16 KV cache,
//!   so its logits differ from exact ones by up to ~1.7: high correlation, the same top-1
//!   wherever llama.cpp's top-2 margin is comfortable, and largely the same top-5 sets;
//! - the chat template and tokenizer read from the file: the rendered prompts are llama.cpp's.

mod common;

use std::sync::Arc;

use common::*;
use serde::Deserialize;
use wgpt::chat::{Conversation, Message, Role};
use wgpt::engine::Engine;
use wgpt::models::{Output, Want};

#[derive(Deserialize)]
struct MessageJson {
    role: String,
    content: String,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    messages: Vec<MessageJson>,
    prompt: Vec<u32>,
    continuation: Vec<u32>,
    exact_continuation: Vec<u32>,
    positions: Vec<usize>,
    topk_positions: Vec<usize>,
    topk_llamacpp: Vec<Vec<(u32, f32)>>,
    top2_margins: Vec<f32>,
    logits: String,
    exact_logits: String,
}

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

/// Largest |Δlogit| against the float64 reference.
const EXACT_TOL: f32 = common::budget::REAL_GGUF_LOGITS;
/// Minimum Pearson correlation of a logit row with llama.cpp's.
const MIN_CORR: f64 = 0.999;
/// llama.cpp's top-1 must be ours wherever its top-2 margin is at least this.
const COMFORTABLE_MARGIN: f32 = 0.5;

fn engine() -> Engine {
    Engine::load(gpu(None), &smollm2(), &mut |_, _| {}).expect("load SmolLM2")
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixture("smollm2/cases.json")).unwrap();
    serde_json::from_str::<Cases>(&text).unwrap().cases
}

fn corr(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().map(|&x| x as f64).sum::<f64>() / n, b.iter().map(|&x| x as f64).sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64 - ma, y as f64 - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    sab / (saa * sbb).sqrt()
}

fn top(row: &[f32], k: usize) -> Vec<u32> {
    let mut ids: Vec<u32> = (0..row.len() as u32).collect();
    ids.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]));
    ids.truncate(k);
    ids
}

#[test]
fn chat_template_and_tokenizer_render_llama_cpp_prompts() {
    let e = engine();
    for case in cases() {
        let mut conv = Conversation::default();
        for m in &case.messages {
            let role = match m.role.as_str() {
                "system" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => panic!("role {other}"),
            };
            conv.messages.push(Message::new(role, m.content.clone()));
        }
        assert_eq!(e.render(&conv).unwrap(), case.prompt, "{}: prompt ids", case.name);
    }
}

#[test]
fn logits_match_the_exact_reference_and_llama_cpp() {
    let e = engine();
    let vocab = e.model.cfg.vocab_size as usize;
    let mut session = e.model.session(512, 128).unwrap();
    let (mut worst_exact, mut worst_corr, mut top5_overlap, mut top5_total) = (0f32, 1f64, 0, 0);
    for case in cases() {
        // Teacher-forced over the prompt and llama.cpp's continuation.
        let mut input = case.prompt.clone();
        input.extend_from_slice(&case.continuation[..case.continuation.len() - 1]);
        session.reset();
        let Output::Logits(all) = pollster::block_on(session.forward(&input, Want::AllLogits)).unwrap() else { panic!() };
        let row = |p: usize| &all[p * vocab..][..vocab];
        let (_, exact) = read_npy(&fixture("smollm2").join(&case.exact_logits));
        let (_, lcpp) = read_npy(&fixture("smollm2").join(&case.logits));
        for (r, &p) in case.positions.iter().enumerate() {
            let d = max_abs_diff(row(p), &exact[r * vocab..][..vocab]);
            assert!(d <= EXACT_TOL, "{} position {p}: max |dlogit| vs float64 {d}", case.name);
            worst_exact = worst_exact.max(d);
            let c = corr(row(p), &lcpp[r * vocab..][..vocab]);
            assert!(c >= MIN_CORR, "{} position {p}: correlation with llama.cpp {c}", case.name);
            worst_corr = worst_corr.min(c);
        }
        for (i, &p) in case.topk_positions.iter().enumerate() {
            let theirs: Vec<u32> = case.topk_llamacpp[i].iter().map(|&(id, _)| id).collect();
            let margin = case.topk_llamacpp[i][0].1 - case.topk_llamacpp[i][1].1;
            let ours = top(row(p), 5);
            if margin >= COMFORTABLE_MARGIN {
                assert_eq!(ours[0], theirs[0], "{} position {p}: top-1 (llama.cpp margin {margin})", case.name);
            }
            top5_overlap += ours.iter().filter(|id| theirs[..5].contains(id)).count();
            top5_total += 5;
        }
    }
    let overlap = top5_overlap as f64 / top5_total as f64;
    eprintln!("SmolLM2: max |dlogit| vs float64 {worst_exact:.2e}; min correlation with llama.cpp {worst_corr:.6}; top-5 overlap {overlap:.3}");
    assert!(overlap >= 0.9, "top-5 sets agree with llama.cpp's on only {overlap:.3} of ids");
}

#[test]
fn greedy_continuations_match_the_exact_reference_and_llama_cpp() {
    let e = Arc::new(engine());
    let mut session = e.model.session(512, 128).unwrap();
    for case in cases() {
        let ids = greedy(&mut session, &case.prompt, case.exact_continuation.len());
        assert_eq!(ids, case.exact_continuation, "{}: greedy continuation vs float64", case.name);
        // llama.cpp agrees up to its first step whose top-2 margin is too thin for its rounding.
        let sure = case.top2_margins.iter().position(|&m| m < COMFORTABLE_MARGIN / 2.0).unwrap_or(ids.len());
        assert_eq!(ids[..sure], case.continuation[..sure], "{}: greedy continuation vs llama.cpp", case.name);
        eprintln!("{}: {} greedy tokens identical to float64, first {sure} to llama.cpp", case.name, ids.len());
    }
}
