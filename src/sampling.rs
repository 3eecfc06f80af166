//! Sampling parameters, the host side of GPU sampling (`ops::sample`), and a plain CPU
//! reference sampler that follows the same algorithm with the same random numbers, so the two
//! agree token for token.
//!
//! # Algorithm
//!
//! For logits `x[0..n)`, a penalty list of (token id, count) pairs (see [`penalty_pairs`]) and a
//! step number:
//!
//! 1. **Clamp**: NaN becomes -1e30, everything else is clamped to [-1e30, 1e30] (so -inf masks
//!    work). Every later f32 result is clamped the same way.
//! 2. **Penalties** on the raw logits of the listed tokens, llama.cpp/HF style: repetition
//!    (`x > 0`: `x * (1/p)`, else `x * p`, with `1/p` rounded to f32 on the host), then OpenAI
//!    presence/frequency: `x - (presence + frequency * count)`.
//! 3. **Temperature**: `z = x * (1/T)` (`1/T` rounded to f32 on the host; 1 when greedy).
//! 4. **Greedy** ([`SamplingParams::is_greedy`]): the lowest index holding the largest `z`.
//! 5. **Keys and weights**: `d = zmax - z`; tokens with `d >= 22` are dead (weight 0, never
//!    drawn). Live tokens get the key `q = trunc(d * 65536)` (their log-probability gap to the
//!    best token, in 2^-16 nat steps) and the integer weight
//!    `w = floor(C[q >> 10] * F[q & 1023] / 2^30)` with `C[h] = round(2^30 e^(-h/64))` and
//!    `F[l] = round(2^30 e^(-l/65536))` ([`weight_tables`]), i.e. `w ~ 2^30 exp(z - zmax)`
//!    within 2e-5 relative. The best token has `q = 0` and `w = 2^30`. Softmax probabilities are
//!    `w / sum(w)`; all sums are exact 64-bit integers, so no result depends on summation order
//!    and no GPU `exp` is involved.
//! 6. **Top-k** (`0 < k < n`): keep keys `q <= t_k`, `t_k` the k-th smallest live key (all live
//!    tokens when fewer than k are live).
//! 7. **Top-p** (`top_p < 1`): over the top-k survivors with total weight `S`, keep `q <= t_p`
//!    where `t_p` is the smallest key whose cumulative weight (all survivors with `q <= t_p`)
//!    reaches `ceil(S * P / 2^24)`, `P = round(top_p * 2^24)`.
//! 8. **Min-p** (`min_p > 0`): keep `q <= floor(ln(1/min_p) * 65536)`, i.e. `p >= min_p * p_max`
//!    up to the 2^-16-nat key step.
//! 9. **Draw**: `U` = first word of Philox4x32-10 with counter (step lo, step hi, 0, 0) and key
//!    (seed lo, seed hi) ([`random_u32`]); `u = U / 2^32` (32 bits, finer than an f32
//!    uniform), computed on the host. Over the kept tokens with total
//!    weight `S`, `r = floor(S * U / 2^32)` and the token is the lowest index whose running
//!    weight sum (in index order) exceeds `r`.
//!
//! Tie rule: every filter is a threshold on the key `q`, so tokens with equal keys (equal
//! scaled logits, or scaled logits in the same 2^-16 step below the maximum) are kept or dropped
//! together; top-k may therefore keep more than k tokens, and top-p more than the smallest set.
//! The best token is always kept. Renormalising after the filters is implicit in drawing
//! against the kept total. Greedy ties go to the lowest index, as in `shaders/argmax.wgsl`.

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Sampling settings of one request.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; `<= 1e-5` means greedy. OpenAI recommends 1.0 for gpt-oss.
    pub temperature: f32,
    /// Keep the k most likely tokens (ties at the k-th kept too); 0 = off.
    pub top_k: u32,
    /// Keep the smallest most-likely set with at least this probability mass; 1.0 = off.
    pub top_p: f32,
    /// Drop tokens with probability below `min_p * p_max`; 0 = off.
    pub min_p: f32,
    /// Repetition penalty (llama.cpp/HF): positive logits divided by it, others multiplied; 1.0 = off.
    pub repetition_penalty: f32,
    /// Subtracted once from the logit of every token in the window (OpenAI); 0 = off.
    pub presence_penalty: f32,
    /// Subtracted per occurrence in the window (OpenAI); 0 = off.
    pub frequency_penalty: f32,
    /// How many of the most recent tokens the penalties look at.
    pub penalty_last_n: u32,
    /// Seed of the random stream; a draw depends only on (seed, step).
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            penalty_last_n: 64,
            seed: 0,
        }
    }
}

/// Largest accepted `penalty_last_n` (counts stay exact in f32).
pub const MAX_PENALTY_LAST_N: u32 = 1 << 24;

impl SamplingParams {
    /// Greedy decoding settings.
    pub fn greedy() -> Self {
        SamplingParams { temperature: 0.0, ..Default::default() }
    }

    /// Checks every value's range.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |what: &str, v: f32, want: &str| Err(Error::Input(format!("sampling: {what} = {v}: expected {want}")));
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad("temperature", self.temperature, "a finite value >= 0");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", self.top_p, "a value in (0, 1]");
        }
        if !(self.min_p >= 0.0 && self.min_p <= 1.0) {
            return bad("min_p", self.min_p, "a value in [0, 1]");
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad("repetition_penalty", self.repetition_penalty, "a finite value > 0");
        }
        if !self.presence_penalty.is_finite() {
            return bad("presence_penalty", self.presence_penalty, "a finite value");
        }
        if !self.frequency_penalty.is_finite() {
            return bad("frequency_penalty", self.frequency_penalty, "a finite value");
        }
        if self.penalty_last_n > MAX_PENALTY_LAST_N {
            return Err(Error::Input(format!(
                "sampling: penalty_last_n = {}: expected at most {MAX_PENALTY_LAST_N}",
                self.penalty_last_n
            )));
        }
        Ok(())
    }

    /// Whether decoding picks the most likely token (temperature <= 1e-5 or top_k == 1).
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 1e-5 || self.top_k == 1
    }

    /// Whether any penalty is active.
    pub fn has_penalties(&self) -> bool {
        self.penalty_last_n > 0
            && (self.repetition_penalty != 1.0 || self.presence_penalty != 0.0 || self.frequency_penalty != 0.0)
    }

    /// The host-side constants of one draw over `n_vocab` tokens, shared by the kernels and the
    /// CPU reference.
    pub fn derive(&self, n_vocab: u32, step: u64) -> Derived {
        let greedy = self.is_greedy();
        let top_k = if !greedy && self.top_k > 0 && self.top_k < n_vocab { self.top_k } else { 0 };
        let top_p24 = if !greedy && self.top_p < 1.0 {
            ((self.top_p as f64 * (1u64 << 24) as f64).round() as u32).clamp(1, 1 << 24)
        } else {
            0
        };
        let t_cap = if !greedy && self.min_p > 0.0 {
            let t = (-(self.min_p as f64).ln() * 65536.0).floor();
            if t >= KEY_ALL as f64 {
                KEY_ALL
            } else {
                t.max(0.0) as u32
            }
        } else {
            KEY_ALL
        };
        Derived {
            greedy,
            inv_temp: if greedy { 1.0 } else { 1.0 / self.temperature },
            rep: self.repetition_penalty,
            inv_rep: 1.0 / self.repetition_penalty,
            presence: self.presence_penalty,
            frequency: self.frequency_penalty,
            top_k,
            top_p24,
            t_cap,
            rnd: random_u32(self.seed, step),
        }
    }
}

/// Host-side constants of one draw (see [`SamplingParams::derive`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Derived {
    pub greedy: bool,
    pub inv_temp: f32,
    pub rep: f32,
    pub inv_rep: f32,
    pub presence: f32,
    pub frequency: f32,
    /// 0 when top-k is off.
    pub top_k: u32,
    /// `round(top_p * 2^24)`, 0 when top-p is off.
    pub top_p24: u32,
    /// Largest key min-p keeps ([`KEY_ALL`] when off).
    pub t_cap: u32,
    /// The random word of this step.
    pub rnd: u32,
}

/// Keys at or beyond this are dead (weight 0): the logit is 22 or more below the maximum.
pub const KEY_DEAD: u32 = 22 * 65536;
/// The largest live key: a threshold that keeps every live token.
pub const KEY_ALL: u32 = KEY_DEAD - 1;
/// Weight of the best token.
pub const WEIGHT_ONE: u32 = 1 << 30;
const COARSE: usize = (KEY_DEAD >> 10) as usize;
const FINE: usize = 1024;
const LIM: f32 = 1e30;

/// The weight tables uploaded to the GPU: `C[0..1408)` then `F[0..1024)` (see the module docs).
pub fn weight_tables() -> &'static [u32] {
    static TABLES: OnceLock<Vec<u32>> = OnceLock::new();
    TABLES.get_or_init(|| {
        let one = WEIGHT_ONE as f64;
        let coarse = (0..COARSE).map(|h| (one * (-(h as f64) / 64.0).exp()).round() as u32);
        let fine = (0..FINE).map(|l| (one * (-(l as f64) / 65536.0).exp()).round() as u32);
        coarse.chain(fine).collect()
    })
}

/// The integer weight of a key (0 for dead keys).
pub fn weight(q: u32) -> u32 {
    if q >= KEY_DEAD {
        return 0;
    }
    let t = weight_tables();
    ((t[(q >> 10) as usize] as u64 * t[COARSE + (q & 1023) as usize] as u64) >> 30) as u32
}

/// The key of a scaled logit `z` given the maximum `zmax`.
pub fn key(z: f32, zmax: f32) -> u32 {
    let d = zmax - z;
    if d < 22.0 {
        (d * 65536.0) as u32
    } else {
        KEY_DEAD
    }
}

/// Philox4x32-10 (Salmon et al., SC 2011): one counter block under a key.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    const M0: u64 = 0xD251_1F53;
    const M1: u64 = 0xCD9E_8D57;
    const W0: u32 = 0x9E37_79B9;
    const W1: u32 = 0xBB67_AE85;
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let [mut k0, mut k1] = key;
    for _ in 0..10 {
        let p0 = M0 * c0 as u64;
        let p1 = M1 * c2 as u64;
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);
        k0 = k0.wrapping_add(W0);
        k1 = k1.wrapping_add(W1);
    }
    [c0, c1, c2, c3]
}

/// The random word of draw `step` under `seed`; the uniform number is `u = word / 2^32`.
pub fn random_u32(seed: u64, step: u64) -> u32 {
    philox4x32_10([step as u32, (step >> 32) as u32, 0, 0], [seed as u32, (seed >> 32) as u32])[0]
}

/// The (token id, count) pairs of the last `last_n` tokens of `history`, sorted by id, each id
/// once: the penalty list `ops::sample` reads (upload with `bytemuck::cast_slice`).
pub fn penalty_pairs(history: &[u32], last_n: u32) -> Vec<[u32; 2]> {
    let start = history.len().saturating_sub(last_n as usize);
    let mut window = history[start..].to_vec();
    window.sort_unstable();
    let mut pairs: Vec<[u32; 2]> = Vec::new();
    for id in window {
        match pairs.last_mut() {
            Some(last) if last[0] == id => last[1] += 1,
            _ => pairs.push([id, 1]),
        }
    }
    pairs
}

/// The penalty list for `params` (empty when no penalty is active).
pub fn penalty_pairs_for(history: &[u32], params: &SamplingParams) -> Vec<[u32; 2]> {
    if params.has_penalties() {
        penalty_pairs(history, params.penalty_last_n)
    } else {
        Vec::new()
    }
}

fn clean(v: f32) -> f32 {
    if v.is_nan() {
        -LIM
    } else {
        v.clamp(-LIM, LIM)
    }
}

/// The scaled logits `z` of steps 1-3 (what the GPU writes to `SampleScratch::z`).
pub fn scaled_logits_cpu(logits: &[f32], pairs: &[[u32; 2]], d: &Derived) -> Vec<f32> {
    let mut z: Vec<f32> = logits.iter().map(|&x| clean(clean(x) * d.inv_temp)).collect();
    for &[id, count] in pairs {
        if count == 0 || id as usize >= logits.len() {
            continue;
        }
        let y = clean(logits[id as usize]);
        let y = if y > 0.0 { y * d.inv_rep } else { y * d.rep };
        let y = clean(y - (d.presence + d.frequency * count as f32));
        z[id as usize] = clean(y * d.inv_temp);
    }
    z
}

/// What the filters leave: the kept keys' bound, or the greedy token.
enum Plan {
    Greedy(u32),
    Keep { keys: Vec<u32>, t: u32 },
}

fn plan(logits: &[f32], history: &[u32], params: &SamplingParams, step: u64) -> (Plan, Derived) {
    assert!(!logits.is_empty(), "sampling needs at least one logit");
    let d = params.derive(logits.len() as u32, step);
    let z = scaled_logits_cpu(logits, &penalty_pairs_for(history, params), &d);
    let zmax = z.iter().fold(-LIM, |m, &v| m.max(v));
    if d.greedy {
        let i = z.iter().position(|&v| v == zmax).unwrap_or(0);
        return (Plan::Greedy(i as u32), d);
    }
    let keys: Vec<u32> = z.iter().map(|&v| key(v, zmax)).collect();
    let mut live: Vec<u32> = keys.iter().copied().filter(|&q| q < KEY_DEAD).collect();
    live.sort_unstable();
    let mut t = KEY_ALL;
    if d.top_k > 0 && (d.top_k as usize) <= live.len() {
        t = live[d.top_k as usize - 1];
    }
    if d.top_p24 > 0 {
        let kept: Vec<u32> = live.iter().copied().filter(|&q| q <= t).collect();
        let total: u64 = kept.iter().map(|&q| weight(q) as u64).sum();
        let target = ((total as u128 * d.top_p24 as u128 + (1 << 24) - 1) >> 24) as u64;
        let mut acc = 0u64;
        for &q in &kept {
            acc += weight(q) as u64;
            if acc >= target {
                t = q;
                break;
            }
        }
    }
    (Plan::Keep { keys, t: t.min(d.t_cap) }, d)
}

/// Samples one token exactly as `ops::sample` does (same algorithm, same random numbers).
/// `history` is the token history the penalties look at (its last `penalty_last_n` tokens).
pub fn sample_cpu(logits: &[f32], history: &[u32], params: &SamplingParams, step: u64) -> u32 {
    match plan(logits, history, params, step) {
        (Plan::Greedy(i), _) => i,
        (Plan::Keep { keys, t }, d) => {
            let total: u64 = keys.iter().filter(|&&q| q <= t).map(|&q| weight(q) as u64).sum();
            let r = ((total as u128 * d.rnd as u128) >> 32) as u64;
            let mut acc = 0u64;
            for (i, &q) in keys.iter().enumerate() {
                if q <= t {
                    acc += weight(q) as u64;
                    if acc > r {
                        return i as u32;
                    }
                }
            }
            unreachable!("the best token always has a positive weight")
        }
    }
}

/// The tokens the filters (greedy, top-k, top-p, min-p) leave with a positive weight, ascending.
/// Independent of the seed and step.
pub fn allowed_set_cpu(logits: &[f32], history: &[u32], params: &SamplingParams) -> Vec<u32> {
    match plan(logits, history, params, 0).0 {
        Plan::Greedy(i) => vec![i],
        Plan::Keep { keys, t } => {
            (0..keys.len() as u32).filter(|&i| keys[i as usize] <= t && weight(keys[i as usize]) > 0).collect()
        }
    }
}

/// The probability of each token under the sampler (0 outside the allowed set).
pub fn probabilities_cpu(logits: &[f32], history: &[u32], params: &SamplingParams) -> Vec<f64> {
    let mut p = vec![0.0; logits.len()];
    match plan(logits, history, params, 0).0 {
        Plan::Greedy(i) => p[i as usize] = 1.0,
        Plan::Keep { keys, t } => {
            let w: Vec<u64> = keys.iter().map(|&q| if q <= t { weight(q) as u64 } else { 0 }).collect();
            let total: u64 = w.iter().sum();
            for (pi, wi) in p.iter_mut().zip(w) {
                *pi = wi as f64 / total as f64;
            }
        }
    }
    p
}
