//! GPU sampling (`ops::sample`) against the CPU reference (`sampling::sample_cpu`) on synthetic
//! logits: token-for-token agreement, filters, determinism, greedy, frequencies, penalties.

mod common;

use rand::{rngs::StdRng, Rng, SeedableRng};
use wgpt::gpu::{Gpu, Recorder};
use wgpt::ops::sample::{sample, sample_at, SampleScratch};
use wgpt::ops::{self, cpu};
use wgpt::sampling::{
    self, allowed_set_cpu, penalty_pairs, penalty_pairs_for, probabilities_cpu, random_u32, sample_cpu, SamplingParams,
};

const GPT_OSS_VOCAB: usize = 201_088;

fn gpu() -> std::sync::Arc<Gpu> {
    common::gpu(None)
}

fn submit(g: &Gpu, enc: Recorder) {
    enc.submit();
    g.wait().unwrap();
}

use common::check::{read_f32, read_u32};

fn pairs_buffer(g: &Gpu, pairs: &[[u32; 2]]) -> wgpu::Buffer {
    if pairs.is_empty() {
        g.storage("penalties", 8)
    } else {
        g.storage_with("penalties", bytemuck::cast_slice(pairs))
    }
}

/// GPU tokens for each step, many draws recorded per submission.
fn gpu_draws(
    g: &Gpu,
    scratch: &SampleScratch,
    logits: &[f32],
    history: &[u32],
    p: &SamplingParams,
    steps: &[u64],
) -> Vec<u32> {
    let lb = g.storage_with("logits", bytemuck::cast_slice(logits));
    let pairs = penalty_pairs_for(history, p);
    let pb = pairs_buffer(g, &pairs);
    let out = g.storage("tokens", steps.len() as u64 * 4);
    for (c, chunk) in steps.chunks(512).enumerate() {
        let mut enc = Recorder::new(&g);
        for (j, &step) in chunk.iter().enumerate() {
            let idx = (c * 512 + j) as u32;
            sample_at(&mut enc, &lb, 0, logits.len() as u32, &pb, pairs.len() as u32, p, step, scratch, &out, idx)
                .unwrap();
        }
        submit(g, enc);
    }
    read_u32(g, &out, steps.len())
}

fn uniform_logits(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale).collect()
}

/// Logits shaped like a language model's: a few strong candidates over a broad tail.
fn lm_logits(rng: &mut StdRng, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 8.0 - 6.0).collect();
    for _ in 0..5 {
        let i = rng.random_range(0..n);
        v[i] = 6.0 + rng.random::<f32>() * 4.0;
    }
    v
}

/// Distributions that stress the thresholds: ties, peaked, flat, masked.
fn shaped(n: usize, rng: &mut StdRng) -> Vec<(&'static str, Vec<f32>)> {
    let mut peaked = uniform_logits(rng, n, 2.0);
    peaked[n / 3] = 40.0;
    let mut masked = uniform_logits(rng, n, 3.0);
    for (i, v) in masked.iter_mut().enumerate() {
        if i % 3 != 0 {
            *v = f32::NEG_INFINITY;
        }
    }
    vec![
        ("ties", (0..n).map(|_| (rng.random_range(0..6) as f32) * 0.5).collect()),
        ("peaked", peaked),
        ("flat", vec![0.25; n]),
        ("masked", masked),
        ("lm", lm_logits(rng, n)),
        ("steep", uniform_logits(rng, n, 30.0)),
    ]
}

fn filter_params() -> Vec<SamplingParams> {
    let d = SamplingParams::default();
    vec![
        d.clone(),
        SamplingParams { top_k: 3, ..d.clone() },
        SamplingParams { top_k: 40, temperature: 0.7, ..d.clone() },
        SamplingParams { top_p: 0.9, ..d.clone() },
        SamplingParams { top_p: 0.3, temperature: 1.5, ..d.clone() },
        SamplingParams { min_p: 0.1, ..d.clone() },
        SamplingParams { top_k: 50, top_p: 0.8, min_p: 0.05, temperature: 0.8, ..d.clone() },
        SamplingParams { top_p: 1e-6, ..d.clone() },
        SamplingParams { min_p: 1.0, ..d.clone() },
    ]
}

#[test]
fn validate_rejects_out_of_range_params() {
    let d = SamplingParams::default();
    assert!(d.validate().is_ok());
    assert!(SamplingParams::greedy().validate().is_ok());
    assert_eq!(d.temperature, 1.0);
    let bad = [
        SamplingParams { temperature: -0.1, ..d.clone() },
        SamplingParams { temperature: f32::NAN, ..d.clone() },
        SamplingParams { temperature: f32::INFINITY, ..d.clone() },
        SamplingParams { top_p: 0.0, ..d.clone() },
        SamplingParams { top_p: 1.01, ..d.clone() },
        SamplingParams { top_p: f32::NAN, ..d.clone() },
        SamplingParams { min_p: -0.01, ..d.clone() },
        SamplingParams { min_p: 1.5, ..d.clone() },
        SamplingParams { repetition_penalty: 0.0, ..d.clone() },
        SamplingParams { repetition_penalty: -1.0, ..d.clone() },
        SamplingParams { repetition_penalty: f32::INFINITY, ..d.clone() },
        SamplingParams { presence_penalty: f32::NAN, ..d.clone() },
        SamplingParams { frequency_penalty: f32::NEG_INFINITY, ..d.clone() },
        SamplingParams { penalty_last_n: sampling::MAX_PENALTY_LAST_N + 1, ..d.clone() },
    ];
    for p in bad {
        assert!(matches!(p.validate(), Err(wgpt::Error::Input(_))), "{p:?} accepted");
    }
    assert!(SamplingParams { temperature: 0.0, top_p: 1.0, min_p: 1.0, presence_penalty: -2.0, ..d.clone() }
        .validate()
        .is_ok());
    assert!(SamplingParams { temperature: 0.0, ..d.clone() }.is_greedy());
    assert!(SamplingParams { top_k: 1, ..d.clone() }.is_greedy());
    assert!(!d.is_greedy());
}

#[test]
fn penalty_pairs_count_the_window() {
    let h = [5, 3, 5, 9, 5, 3];
    assert_eq!(penalty_pairs(&h, 4), vec![[3, 1], [5, 2], [9, 1]]);
    assert_eq!(penalty_pairs(&h, 100), vec![[3, 2], [5, 3], [9, 1]]);
    assert!(penalty_pairs(&h, 0).is_empty());
    assert!(penalty_pairs_for(&h, &SamplingParams::default()).is_empty());
    let p = SamplingParams { presence_penalty: 0.5, penalty_last_n: 2, ..Default::default() };
    assert_eq!(penalty_pairs_for(&h, &p), vec![[3, 1], [5, 1]]);
}

#[test]
fn philox_matches_published_known_answers_and_draws_look_uniform() {
    assert_eq!(sampling::philox4x32_10([0; 4], [0; 2]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    assert_eq!(sampling::philox4x32_10([u32::MAX; 4], [u32::MAX; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    // Mean of u over steps and seeds; counts in 16 buckets.
    let mut buckets = [0u32; 16];
    let n = 64_000;
    for s in 0..n {
        let u = random_u32(s % 7, s / 7);
        buckets[(u >> 28) as usize] += 1;
    }
    let e = n as f64 / 16.0;
    let chi2: f64 = buckets.iter().map(|&c| (c as f64 - e).powi(2) / e).sum();
    assert!(chi2 < 40.0, "chi2 {chi2} over 15 degrees of freedom: {buckets:?}");
    assert_ne!(random_u32(1, 0), random_u32(2, 0));
    assert_ne!(random_u32(1, 0), random_u32(1, 1));
}

#[test]
fn integer_weights_follow_exp() {
    assert_eq!(sampling::weight(0), sampling::WEIGHT_ONE);
    assert_eq!(sampling::weight(sampling::KEY_DEAD), 0);
    assert_eq!(sampling::key(3.0, 3.0), 0);
    assert_eq!(sampling::key(-30.0, 3.0), sampling::KEY_DEAD);
    let one = sampling::WEIGHT_ONE as f64;
    let mut q = 0;
    while q < sampling::KEY_DEAD {
        let want = one * (-(q as f64) / 65536.0).exp();
        let got = sampling::weight(q) as f64;
        assert!((got - want).abs() <= 2e-5 * want + 2.0, "weight({q}) = {got}, want {want}");
        q += 37;
    }
}

#[test]
fn gpu_matches_cpu_token_for_token() {
    let g = gpu();
    let scratch = SampleScratch::new(&g, GPT_OSS_VOCAB as u32);
    let mut rng = StdRng::seed_from_u64(11);
    let mut params = filter_params();
    params.push(SamplingParams {
        repetition_penalty: 1.3,
        presence_penalty: 0.4,
        frequency_penalty: 0.3,
        top_p: 0.95,
        ..Default::default()
    });
    let mut checked = 0;
    for &(n, draws) in &[(7usize, 40u64), (1000, 40), (GPT_OSS_VOCAB, 3)] {
        let logits = if n == GPT_OSS_VOCAB { lm_logits(&mut rng, n) } else { uniform_logits(&mut rng, n, 6.0) };
        let history: Vec<u32> = (0..80).map(|_| rng.random_range(0..n as u32)).collect();
        for (pi, p) in params.iter().enumerate() {
            let p = SamplingParams { seed: 1000 + pi as u64, ..p.clone() };
            let steps: Vec<u64> = (0..draws).map(|s| s * 7919 + pi as u64).collect();
            let got = gpu_draws(&g, &scratch, &logits, &history, &p, &steps);
            for (&step, &tok) in steps.iter().zip(&got) {
                assert_eq!(tok, sample_cpu(&logits, &history, &p, step), "n={n} step={step} {p:?}");
                checked += 1;
            }
        }
    }
    eprintln!("{checked} draws agree");
}

#[test]
fn filters_never_leave_the_allowed_set() {
    let g = gpu();
    let scratch = SampleScratch::new(&g, 1000);
    let mut rng = StdRng::seed_from_u64(12);
    let mut total = 0;
    for n in [7usize, 1000] {
        for (name, logits) in shaped(n, &mut rng) {
            for (pi, p) in filter_params().into_iter().enumerate() {
                let p = SamplingParams { seed: pi as u64, ..p };
                let allowed = allowed_set_cpu(&logits, &[], &p);
                assert!(!allowed.is_empty());
                let steps: Vec<u64> = (0..60).collect();
                let got = gpu_draws(&g, &scratch, &logits, &[], &p, &steps);
                for (&step, &tok) in steps.iter().zip(&got) {
                    assert!(allowed.binary_search(&tok).is_ok(), "{name} n={n} {p:?}: token {tok} not allowed");
                    assert_eq!(tok, sample_cpu(&logits, &[], &p, step), "{name} n={n} step={step} {p:?}");
                }
                total += steps.len();
            }
        }
    }
    eprintln!("{total} draws inside the allowed sets");
}

#[test]
fn allowed_sets_follow_the_tie_rules() {
    // Keys tie exactly for equal logits: top-k keeps every token tied with the k-th.
    let logits = [1.0, 3.0, 2.0, 3.0, 2.0, 2.0, 0.0];
    let k = |k| SamplingParams { top_k: k, ..Default::default() };
    assert_eq!(allowed_set_cpu(&logits, &[], &k(2)), vec![1, 3]);
    assert_eq!(allowed_set_cpu(&logits, &[], &k(3)), vec![1, 2, 3, 4, 5]);
    assert_eq!(allowed_set_cpu(&logits, &[], &k(6)), vec![0, 1, 2, 3, 4, 5]);
    // Top-p: the 3.0 pair holds ~0.61 of the mass, adding the 2.0s reaches ~0.94.
    let p = |p| SamplingParams { top_p: p, ..Default::default() };
    assert_eq!(allowed_set_cpu(&logits, &[], &p(0.5)), vec![1, 3]);
    assert_eq!(allowed_set_cpu(&logits, &[], &p(0.6)), vec![1, 3]);
    assert_eq!(allowed_set_cpu(&logits, &[], &p(0.65)), vec![1, 2, 3, 4, 5]);
    assert_eq!(allowed_set_cpu(&logits, &[], &p(0.95)), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(allowed_set_cpu(&logits, &[], &p(1.0)).len(), 7);
    // Min-p: e^-1 ~ 0.368 of the best keeps the 2.0s, 0.37 does not.
    let m = |m| SamplingParams { min_p: m, ..Default::default() };
    assert_eq!(allowed_set_cpu(&logits, &[], &m(0.36)), vec![1, 2, 3, 4, 5]);
    assert_eq!(allowed_set_cpu(&logits, &[], &m(0.37)), vec![1, 3]);
    // Masked and far-below tokens are never allowed.
    let masked = [0.0, f32::NEG_INFINITY, 5.0, -40.0, f32::NAN];
    assert_eq!(allowed_set_cpu(&masked, &[], &SamplingParams::default()), vec![0, 2]);
}

#[test]
fn same_seed_repeats_and_different_seeds_differ() {
    let g = gpu();
    let scratch = SampleScratch::new(&g, 1000);
    let mut rng = StdRng::seed_from_u64(13);
    let logits = uniform_logits(&mut rng, 1000, 2.0);
    let steps: Vec<u64> = (0..64).collect();
    let p = |seed| SamplingParams { seed, top_p: 0.95, ..Default::default() };
    let a = gpu_draws(&g, &scratch, &logits, &[], &p(42), &steps);
    let b = gpu_draws(&g, &scratch, &logits, &[], &p(42), &steps);
    let c = gpu_draws(&g, &scratch, &logits, &[], &p(43), &steps);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Different steps give different draws.
    let distinct: std::collections::HashSet<_> = a.iter().collect();
    assert!(distinct.len() > 30, "{} distinct tokens in 64 draws", distinct.len());
}

#[test]
fn greedy_is_argmax_with_lowest_index_on_ties() {
    let g = gpu();
    let scratch = SampleScratch::new(&g, GPT_OSS_VOCAB as u32);
    let mut rng = StdRng::seed_from_u64(14);
    for n in [1usize, 7, 1000, GPT_OSS_VOCAB] {
        let mut logits = uniform_logits(&mut rng, n, 5.0);
        if n > 7 {
            // Two tied maxima: the lower index wins.
            logits[n / 2] = 9.0;
            logits[n / 5] = 9.0;
        }
        let want = cpu::argmax(&logits);
        let lb = g.storage_with("logits", bytemuck::cast_slice(&logits));
        let out = g.storage("argmax", 4);
        let parts = g.storage("argmax parts", ops::argmax_scratch_bytes(n as u32));
        let mut enc = Recorder::new(&g);
        ops::argmax(&mut enc, &lb, 0, n as u32, &parts, &out);
        submit(&g, enc);
        assert_eq!(read_u32(&g, &out, 1)[0], want);
        for p in [
            SamplingParams::greedy(),
            SamplingParams { temperature: 1e-6, seed: 3, ..Default::default() },
            SamplingParams { top_k: 1, temperature: 0.7, ..Default::default() },
        ] {
            let got = gpu_draws(&g, &scratch, &logits, &[], &p, &[0, 1, 2]);
            assert_eq!(got, vec![want; 3], "n={n} {p:?}");
            assert_eq!(sample_cpu(&logits, &[], &p, 5), want);
        }
    }
    // A small temperature that is not greedy still picks a clearly best token.
    let mut logits = uniform_logits(&mut rng, 1000, 5.0);
    logits[123] = 6.0;
    let p = SamplingParams { temperature: 1e-3, ..Default::default() };
    assert!(!p.is_greedy());
    assert_eq!(gpu_draws(&g, &scratch, &logits, &[], &p, &(0..20).collect::<Vec<_>>()), vec![123; 20]);
}

fn softmax(logits: &[f32], temperature: f64) -> Vec<f64> {
    let m = logits.iter().fold(f64::MIN, |m, &v| m.max(v as f64));
    let e: Vec<f64> = logits.iter().map(|&v| ((v as f64 - m) / temperature).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Pearson chi-square of observed counts against probabilities (cells with p = 0 must be empty).
fn chi_square(counts: &[u32], probs: &[f64]) -> f64 {
    let n: u32 = counts.iter().sum();
    counts
        .iter()
        .zip(probs)
        .map(|(&c, &p)| {
            if p == 0.0 {
                assert_eq!(c, 0, "a token with probability 0 was drawn");
                0.0
            } else {
                let e = p * n as f64;
                (c as f64 - e).powi(2) / e
            }
        })
        .sum()
}

#[test]
fn frequencies_match_softmax() {
    let g = gpu();
    let scratch = SampleScratch::new(&g, 7);
    let logits = [1.0f32, 2.5, -0.5, 0.0, 2.0, -3.0, 1.5];
    let draws = 6000u64;
    let steps: Vec<u64> = (0..draws).collect();
    for (p, want) in [
        (SamplingParams { temperature: 1.0, seed: 7, ..Default::default() }, softmax(&logits, 1.0)),
        (SamplingParams { temperature: 0.6, seed: 8, ..Default::default() }, softmax(&logits, 0.6)),
        (SamplingParams { temperature: 1.0, top_k: 3, seed: 9, ..Default::default() }, {
            // Softmax over the three best (2.5, 2.0, 1.5) only.
            let mut s = softmax(&logits, 1.0);
            for i in [0, 2, 3, 5] {
                s[i] = 0.0;
            }
            let t: f64 = s.iter().sum();
            s.iter().map(|v| v / t).collect()
        }),
    ] {
        let exact = probabilities_cpu(&logits, &[], &p);
        for (a, b) in exact.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{exact:?} vs {want:?}");
        }
        let mut counts = vec![0u32; logits.len()];
        for t in gpu_draws(&g, &scratch, &logits, &[], &p, &steps) {
            counts[t as usize] += 1;
        }
        let dof = want.iter().filter(|&&v| v > 0.0).count() - 1;
        // 99.99% quantiles of chi-square with 6 and 2 degrees of freedom.
        let limit = if dof == 6 { 27.9 } else { 18.4 };
        let chi2 = chi_square(&counts, &want);
        eprintln!("{p:?}: counts {counts:?}, chi2 {chi2:.2} ({dof} dof)");
        assert!(chi2 < limit, "chi2 {chi2} >= {limit}: {counts:?} vs {want:?}");
    }
}

#[test]
fn penalties_change_exactly_the_penalised_tokens() {
    let g = gpu();
    let scratch = SampleScratch::new(&g, 1000);
    let mut rng = StdRng::seed_from_u64(15);
    let n = 1000;
    let logits = uniform_logits(&mut rng, n, 4.0);
    let history: Vec<u32> = vec![3, 17, 17, 998, 500, 17, 3, 42, 999];
    let long: Vec<u32> = (0..300).map(|_| rng.random_range(0..400)).collect();
    let lb = g.storage_with("logits", bytemuck::cast_slice(&logits));
    let out = g.storage("token", 4);
    let mut cases = vec![
        (SamplingParams { repetition_penalty: 1.5, temperature: 0.8, ..Default::default() }, &history),
        (SamplingParams { presence_penalty: 0.7, frequency_penalty: 0.35, ..Default::default() }, &history),
        (
            SamplingParams {
                repetition_penalty: 0.9,
                presence_penalty: -0.5,
                frequency_penalty: 0.125,
                penalty_last_n: 5,
                ..Default::default()
            },
            &history,
        ),
    ];
    // Arbitrary values over a long history: every penalised value must match bit for bit.
    for _ in 0..12 {
        let p = SamplingParams {
            repetition_penalty: 0.5 + rng.random::<f32>() * 1.5,
            presence_penalty: rng.random::<f32>() * 4.0 - 2.0,
            frequency_penalty: rng.random::<f32>() * 4.0 - 2.0,
            temperature: 0.3 + rng.random::<f32>() * 1.7,
            penalty_last_n: 256,
            ..Default::default()
        };
        cases.push((p, &long));
    }
    for (p, history) in cases {
        let history = history.as_slice();
        let pairs = penalty_pairs_for(history, &p);
        assert!(!pairs.is_empty());
        let pb = pairs_buffer(&g, &pairs);
        let mut enc = Recorder::new(&g);
        sample(&mut enc, &lb, 0, n as u32, &pb, pairs.len() as u32, &p, 0, &scratch, &out).unwrap();
        submit(&g, enc);
        let d = p.derive(n as u32, 0);
        let z = read_f32(&g, &scratch.z, n);
        let want = sampling::scaled_logits_cpu(&logits, &pairs, &d);
        let plain = sampling::scaled_logits_cpu(&logits, &[], &d);
        assert_eq!(z, want, "{p:?}");
        let changed: Vec<u32> = (0..n as u32).filter(|&i| z[i as usize] != plain[i as usize]).collect();
        let ids: Vec<u32> = pairs.iter().map(|pc| pc[0]).collect();
        if history.len() < 100 {
            assert_eq!(changed, ids, "{p:?}");
        } else {
            // Random penalties can leave a logit unchanged only by coincidence.
            assert!(changed.iter().all(|i| ids.contains(i)) && changed.len() + 3 >= ids.len(), "{p:?}");
        }
        // The semantics on one token: rep divides positive logits and multiplies negative ones;
        // presence once, frequency per occurrence.
        for &[id, count] in &pairs {
            let x = logits[id as usize];
            let r = if x > 0.0 { x / p.repetition_penalty } else { x * p.repetition_penalty };
            let e = (r - p.presence_penalty - p.frequency_penalty * count as f32) / p.temperature;
            assert!((z[id as usize] - e).abs() <= 1e-5 * (1.0 + e.abs()), "token {id}: {} vs {e}", z[id as usize]);
        }
        assert_eq!(read_f32(&g, &lb, n), logits, "the logits buffer was modified");
    }
    // A heavily penalised best token is not chosen greedily.
    let best = cpu::argmax(&logits);
    let p = SamplingParams { temperature: 0.0, presence_penalty: 100.0, ..Default::default() };
    let tok = gpu_draws(&g, &scratch, &logits, &[best], &p, &[0])[0];
    assert_ne!(tok, best);
    assert_eq!(tok, sample_cpu(&logits, &[best], &p, 0));
}

#[test]
fn offsets_tiny_vocabularies_and_bad_input() {
    let g = gpu();
    let scratch = SampleScratch::new(&g, 64);
    let mut rng = StdRng::seed_from_u64(16);
    // Logits of row 2 of a [3, 7] buffer.
    let rows = uniform_logits(&mut rng, 21, 3.0);
    let lb = g.storage_with("logits", bytemuck::cast_slice(&rows));
    let pb = pairs_buffer(&g, &[]);
    let out = g.storage("token", 8);
    let p = SamplingParams { top_p: 0.9, seed: 5, ..Default::default() };
    for step in 0..10 {
        let mut enc = Recorder::new(&g);
        sample_at(&mut enc, &lb, 14, 7, &pb, 0, &p, step, &scratch, &out, 1).unwrap();
        submit(&g, enc);
        assert_eq!(read_u32(&g, &out, 2)[1], sample_cpu(&rows[14..], &[], &p, step));
    }
    // One token: always 0.
    assert_eq!(gpu_draws(&g, &scratch, &[0.5], &[], &p, &[0, 1, 2]), vec![0, 0, 0]);
    // Errors instead of out-of-bounds dispatches.
    let mut enc = Recorder::new(&g);
    assert!(sample(&mut enc, &lb, 0, 65, &pb, 0, &p, 0, &scratch, &out).is_err());
    assert!(sample(&mut enc, &lb, 15, 7, &pb, 0, &p, 0, &scratch, &out).is_err());
    assert!(sample(&mut enc, &lb, 0, 0, &pb, 0, &p, 0, &scratch, &out).is_err());
    let bad = SamplingParams { top_p: 0.0, ..Default::default() };
    assert!(sample(&mut enc, &lb, 0, 7, &pb, 0, &bad, 0, &scratch, &out).is_err());
    let pen = SamplingParams { presence_penalty: 1.0, ..Default::default() };
    assert!(sample(&mut enc, &lb, 0, 7, &pb, 2, &pen, 0, &scratch, &out).is_err());
    assert!(sample_at(&mut enc, &lb, 0, 7, &pb, 0, &p, 0, &scratch, &out, 2).is_err());
    drop(enc);
    g.take_error().unwrap();
}

#[test]
fn cpu_sampler_is_unbiased_over_many_seeds() {
    // The chi-square statistic of 6000 draws averages its 6 degrees of freedom over seeds
    // (standard error of the mean ~0.25 over 200 seeds).
    let logits = [1.0f32, 2.5, -0.5, 0.0, 2.0, -3.0, 1.5];
    let want = softmax(&logits, 1.0);
    let stats: Vec<f64> = (0..200u64)
        .map(|seed| {
            let p = SamplingParams { seed, ..Default::default() };
            let mut counts = vec![0u32; 7];
            for step in 0..6000 {
                counts[sample_cpu(&logits, &[], &p, step) as usize] += 1;
            }
            chi_square(&counts, &want)
        })
        .collect();
    let mean = stats.iter().sum::<f64>() / stats.len() as f64;
    eprintln!("mean chi2 {mean:.2} over {} seeds", stats.len());
    assert!((5.0..7.0).contains(&mean), "mean chi2 {mean}");
}
