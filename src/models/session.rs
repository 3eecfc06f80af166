//! One sequence on a model: its KV cache (full layers sized to the context, sliding layers a
//! ring), its position, and the forward pass that records every layer's kernels into one
//! command buffer.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::{DispatchCache, Profiler, Recorder};
use crate::ops::sample::SampleScratch;
use crate::ops::{self, AttnShape, InputNorm, KvCache, KvSegment, MatmulIo, RopeStyle, RouteIo, Swiglu};
use crate::sampling::{penalty_pairs_for, SamplingParams};

use super::weights::{Linear, Mlp, Qkv};
use super::{Model, Output, Want};

/// Extra ring slots of sliding layers, so a chat can rewind this many tokens and keep its cache.
const REWIND_SLOTS: u32 = 1024;

/// Activation buffers for one chunk of up to `chunk` tokens.
struct Scratch {
    tokens: wgpu::Buffer,
    cos_sin: wgpu::Buffer,
    x: wgpu::Buffer,
    xn: wgpu::Buffer,
    qkv: wgpu::Buffer,
    q: wgpu::Buffer,
    attn: wgpu::Buffer,
    partials: wgpu::Buffer,
    router: wgpu::Buffer,
    ids: wgpu::Buffer,
    weights: wgpu::Buffer,
    act: wgpu::Buffer,
    /// Gate projection of a dense MLP (its up projection and activation go to `act`).
    gate: wgpu::Buffer,
    y: wgpu::Buffer,
    logits: wgpu::Buffer,
    token_out: wgpu::Buffer,
    /// Per-workgroup results of the first argmax stage.
    argmax_parts: wgpu::Buffer,
    /// Host-readable copies of `token_out`, filled in the same command buffer as the forward
    /// pass; two, used in turn, so one can be read while the next pass fills the other.
    token_readback: [wgpu::Buffer; 2],
    /// Sampler buffers and (token, count) penalty pairs, created on the first sampled token.
    sampler: Option<(SampleScratch, wgpu::Buffer, u32)>,
}

/// Where a pass's input tokens come from.
#[derive(Clone, Copy)]
enum Input<'a> {
    /// Written by the host.
    Host(&'a [u32]),
    /// The token the previous pass chose, copied on the GPU (the host need not know it yet).
    Chosen,
}

/// What a submitted pass leaves to read.
enum Readback {
    Nothing,
    /// The chosen token, in `token_readback[i]`.
    Token(usize),
    /// Logits of `rows` positions in a staging buffer.
    Logits(wgpu::Buffer, u32),
}

/// A submitted pass whose chosen token the host has not read yet.
struct InFlight {
    readback: usize,
    submission: wgpu::SubmissionIndex,
}

/// Host-side order of decode passes, recorded when tracing is on (see `Session::trace`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassEvent {
    /// The pass that feeds the token at `position` was submitted.
    Submitted { position: u32 },
    /// The token chosen by the pass that fed `position` was read back.
    Read { position: u32 },
}

/// One sequence: its KV cache (full layers sized to the context, sliding layers a ring)
/// and its position.
pub struct Session {
    model: Arc<Model>,
    ctx: u32,
    chunk: u32,
    pos: u32,
    /// The tokens whose keys and values are in the cache, in order.
    history: Vec<u32>,
    caches: Vec<Vec<KvSegment>>,
    kv: KvCache,
    rings: Vec<u32>,
    s: Scratch,
    /// Kernel parameters and bind groups reused from one pass to the next.
    dispatch: DispatchCache,
    profiler: Option<Profiler>,
    /// A pass queued ahead by `decode_next`: it feeds the last token returned and chooses the
    /// next one, which the host has not read yet.
    ahead: Option<InFlight>,
    /// Which `token_readback` the next pass fills.
    next_readback: usize,
    trace: Option<Vec<PassEvent>>,
}

impl Session {
    pub(super) fn new(model: Arc<Model>, ctx: u32, chunk: u32, kv: KvCache) -> Result<Session> {
        let cfg = &model.cfg;
        let gpu = &model.gpu;
        if ctx == 0 || ctx > cfg.max_position_embeddings {
            return Err(Error::Input(format!(
                "context {ctx} must be between 1 and the model's max_position_embeddings {}",
                cfg.max_position_embeddings
            )));
        }
        let (h, hq, hkv, d) = (cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim);
        let (e, k, i, v) = (cfg.num_local_experts, cfg.num_experts_per_tok, cfg.intermediate_size, cfg.vocab_size);
        // MLP activations per token: k experts' worth, or one dense MLP's (up, then the activation).
        let mlp_act = if e > 0 { k * i } else { i };
        let dense_gate = if e > 0 { 0 } else { i };

        // KV caches: the ring of a sliding layer also holds a chunk's own keys.
        let chunk_req = chunk.clamp(1, ctx);
        let mut caches = Vec::new();
        let mut rings = Vec::new();
        for l in 0..cfg.num_hidden_layers as usize {
            let ring = if cfg.is_sliding(l) { (cfg.sliding_window + chunk_req - 1 + REWIND_SLOTS).min(ctx) } else { ctx };
            caches.push(KvSegment::allocate_as(gpu, &format!("kv cache layer {l}"), ring, hkv, d, kv)?);
            rings.push(ring);
        }
        let max_segments = caches.iter().map(|c| c.len() as u32).max().unwrap_or(1);
        let max_parts = ops::attention_max_parts(max_segments);

        // Per-token sizes of the activations; a chunk must keep each within one binding.
        let per_token: [(&str, u64); 8] = [
            ("hidden", h as u64 * 4),
            ("qkv", cfg.qkv_width() as u64 * 4),
            ("attention", (hq * d) as u64 * 4),
            ("attention partials", (hq * max_parts * (d + 2)) as u64 * 4),
            ("router", e as u64 * 4),
            ("MLP activations", mlp_act as u64 * 4),
            ("expert outputs", (k * h) as u64 * 4),
            ("logits", v as u64 * 4),
        ];
        let limit = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size);
        let mut t = chunk_req as u64;
        for (what, bytes) in per_token {
            if bytes > limit {
                return Err(Error::Gpu(format!("{what} of one token need {bytes} bytes, over the adapter's binding limit {limit}")));
            }
            t = t.min(limit / bytes.max(1));
        }
        let t = t as u32;
        let f = |what: &str, per: u64| gpu.storage(what, per * t as u64);
        let s = Scratch {
            tokens: f("tokens", 4),
            cos_sin: f("cos_sin", d as u64 * 4),
            x: f("residual", h as u64 * 4),
            xn: f("normed", h as u64 * 4),
            qkv: f("qkv", cfg.qkv_width() as u64 * 4),
            q: f("q", (hq * d) as u64 * 4),
            attn: f("attention out", (hq * d) as u64 * 4),
            partials: gpu.storage("attention partials", ops::attention_partials_bytes(t, hq, d, max_segments)),
            router: f("router logits", e as u64 * 4),
            ids: f("expert ids", k as u64 * 4),
            weights: f("expert weights", k as u64 * 4),
            act: f("MLP activations", mlp_act as u64 * 4),
            gate: f("MLP gate", dense_gate as u64 * 4),
            y: f("expert outputs", (k * h) as u64 * 4),
            logits: f("logits", v as u64 * 4),
            token_out: gpu.storage("argmax", 4),
            argmax_parts: gpu.storage("argmax partials", ops::argmax_scratch_bytes(v)),
            token_readback: [gpu.staging("token readback", 4), gpu.staging("token readback", 4)],
            sampler: None,
        };
        gpu.take_error()?;
        Ok(Session {
            model,
            ctx,
            chunk: t,
            pos: 0,
            history: Vec::new(),
            caches,
            kv,
            rings,
            s,
            dispatch: DispatchCache::new(),
            profiler: None,
            ahead: None,
            next_readback: 0,
            trace: None,
        })
    }

    /// Dispatches, submits and GPU objects created by this session's passes so far.
    pub fn record_stats(&self) -> crate::gpu::RecordStats {
        self.dispatch.stats
    }

    /// Times every dispatch of the following passes on the GPU (when the adapter can).
    /// Returns false when it cannot.
    pub fn enable_profiling(&mut self, max_dispatches: u32) -> bool {
        self.profiler = Profiler::new(&self.model.gpu, max_dispatches);
        self.profiler.is_some()
    }

    /// GPU timings of the dispatches since the last call (empty without profiling).
    pub async fn take_timings(&mut self) -> Result<Vec<crate::gpu::Timing>> {
        match &mut self.profiler {
            Some(p) => p.collect(&self.model.gpu).await,
            None => Ok(Vec::new()),
        }
    }

    /// Tokens already in the cache (a pass queued ahead by `decode_next` is not counted).
    pub fn position(&self) -> u32 {
        self.pos - self.ahead.is_some() as u32
    }

    pub fn context(&self) -> u32 {
        self.ctx
    }

    /// How this session's KV cache stores keys and values.
    pub fn kv_cache(&self) -> KvCache {
        self.kv
    }

    /// Tokens per prefill pass actually used (the request, bounded by binding limits).
    pub fn chunk(&self) -> u32 {
        self.chunk
    }

    /// Moves to position `pos` as if `pos` tokens (id 0) had been fed, without computing their
    /// keys and values (the cache keeps whatever it holds). Benchmarks use it to measure decode
    /// at a given depth; text generated after it is meaningless.
    pub fn fast_forward(&mut self, pos: u32) -> Result<()> {
        self.settle()?;
        if pos >= self.ctx {
            return Err(Error::Input(format!("position {pos} is outside the context of {} tokens", self.ctx)));
        }
        self.pos = pos;
        self.history.resize(pos as usize, 0);
        Ok(())
    }

    /// Forgets the sequence (the cache is overwritten from position 0).
    pub fn reset(&mut self) {
        let _ = self.settle();
        self.pos = 0;
        self.history.clear();
    }

    /// The tokens in the cache (a pass queued ahead by `decode_next` is not counted).
    pub fn tokens(&self) -> &[u32] {
        &self.history[..self.history.len() - self.ahead.is_some() as usize]
    }

    /// Moves back to position `n`, keeping the cache before it. Sliding-window layers keep a ring
    /// of recent positions, so a long rewind starts over instead (returns false then).
    pub fn rewind(&mut self, n: u32) -> bool {
        let _ = self.settle();
        let window = self.model.cfg.sliding_window;
        let kept = n <= self.pos && self.rings.iter().all(|&ring| ring >= self.ctx || self.pos - n <= ring - window.min(ring));
        if kept {
            self.pos = n;
            self.history.truncate(n as usize);
        } else {
            self.reset();
        }
        kept
    }

    /// Prepares to feed `prompt` from the start: keeps the cached prefix it shares with the
    /// sequence so far and returns how many of its tokens are already in the cache (at most
    /// `prompt.len() - 1`, so the last token is always fed and its logits computed).
    pub fn reuse_prefix(&mut self, prompt: &[u32]) -> usize {
        let _ = self.settle();
        let common = self.history.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        let keep = common.min(prompt.len().saturating_sub(1));
        if self.rewind(keep as u32) {
            keep
        } else {
            0
        }
    }

    /// Creates the sampler's buffers once, and uploads the penalty pairs of the recent history
    /// (the tokens in the cache followed by `incoming`).
    fn prepare_sampler(&mut self, incoming: &[u32], params: &SamplingParams) {
        let gpu = &*self.model.gpu;
        // Only the last `penalty_last_n` tokens count.
        let from_history = (params.penalty_last_n as usize).saturating_sub(incoming.len()).min(self.history.len());
        let mut recent = self.history[self.history.len() - from_history..].to_vec();
        recent.extend_from_slice(incoming);
        let pairs = penalty_pairs_for(&recent, params);
        let needed = pairs.len().max(1) as u32;
        let sampler = &mut self.s.sampler;
        if sampler.as_ref().is_none_or(|(_, b, _)| b.size() < needed as u64 * 8) {
            let scratch = match sampler.take() {
                Some((scratch, _, _)) => scratch,
                None => SampleScratch::new(gpu, self.model.cfg.vocab_size),
            };
            let cap = needed.next_power_of_two().max(64);
            *sampler = Some((scratch, gpu.storage("penalty pairs", cap as u64 * 8), 0));
        }
        let (_, buf, n) = sampler.as_mut().expect("created above");
        if !pairs.is_empty() {
            gpu.write(buf, 0, bytemuck::cast_slice(&pairs));
        }
        *n = pairs.len() as u32;
    }

    /// Feeds `tokens` at the current position and returns what `want` asks for.
    pub async fn forward(&mut self, tokens: &[u32], want: Want<'_>) -> Result<Output> {
        if let Want::Sample(p) = want {
            p.validate()?;
        }
        if tokens.is_empty() {
            return Err(Error::Input("no tokens to process".into()));
        }
        self.settle()?;
        let vocab = self.model.cfg.vocab_size;
        if let Some(bad) = tokens.iter().find(|&&t| t >= vocab) {
            return Err(Error::Input(format!("token id {bad} is out of range for vocab_size {vocab}")));
        }
        self.check_room(tokens.len().min(u32::MAX as usize) as u32)?;
        let mut all = Vec::new();
        let n_chunks = tokens.len().div_ceil(self.chunk as usize);
        for (ci, chunk) in tokens.chunks(self.chunk as usize).enumerate() {
            let last = ci + 1 == n_chunks;
            // Intermediate chunks of a prompt only fill the cache unless every position's logits are wanted.
            let head = last || want == Want::AllLogits;
            let (readback, _) = self.submit_chunk(Input::Host(chunk), want, head)?;
            match (want, self.read(readback, None).await?) {
                (Want::AllLogits, Some(Output::Logits(l))) => all.extend(l),
                (_, Some(o)) if last => return Ok(o),
                _ => {}
            }
        }
        Ok(Output::Logits(all))
    }

    /// Records and submits one pass over a chunk; returns what it leaves to read.
    fn submit_chunk(&mut self, input: Input, want: Want<'_>, head: bool) -> Result<(Readback, wgpu::SubmissionIndex)> {
        let model = self.model.clone();
        let m = &*model;
        if let (Want::Sample(params), true) = (want, head) {
            // A token chosen on the GPU is fed only without penalties (see `decode_next`).
            self.prepare_sampler(if let Input::Host(t) = input { t } else { &[] }, params);
        }
        let readback_index = self.next_readback;
        let (cfg, gpu, w, s) = (&m.cfg, &*m.gpu, &m.weights, &self.s);
        let n = match input {
            Input::Host(tokens) => tokens.len() as u32,
            Input::Chosen => 1,
        };
        let (h, hq, hkv, d) = (cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim);
        let (k, v) = (cfg.num_experts_per_tok, cfg.vocab_size);
        let eps = cfg.rms_norm_eps;
        gpu.write(&s.cos_sin, 0, bytemuck::cast_slice(&m.rope.cos_sin(self.pos, n)));
        let io = |x_stride: u32, y_stride: u32, accumulate: bool| MatmulIo {
            n_tokens: n,
            x_offset: 0,
            x_stride,
            y_stride,
            y_offset: 0,
            accumulate,
        };
        let act = Swiglu { alpha: cfg.swiglu_alpha, limit: cfg.swiglu_limit };

        let mut recorder = Recorder::profiled(gpu, &mut self.dispatch, self.profiler.as_mut());
        let rec = &mut recorder;
        match input {
            Input::Host(tokens) => gpu.write(&s.tokens, 0, bytemuck::cast_slice(tokens)),
            Input::Chosen => rec.encoder().copy_buffer_to_buffer(&s.token_out, 0, &s.tokens, 0, 4),
        }
        w.embed.gather(rec, &s.tokens, n, &s.x);
        for (l, layer) in w.layers.iter().enumerate() {
            let a = AttnShape {
                n_tokens: n,
                n_q_heads: hq,
                n_kv_heads: hkv,
                head_dim: d,
                pos0: self.pos,
                ring: self.rings[l],
                window: if cfg.is_sliding(l) { cfg.sliding_window } else { 0 },
            };
            let rope = RopeStyle { interleaved: cfg.rope_interleaved, qk_norm: layer.qk_norm.as_ref(), eps };
            match &layer.qkv {
                Qkv::Stacked(Linear::Bf16(qkv)) if rope.is_plain() => {
                    // The attention norm is taken inside the fused decode kernel.
                    let norm = InputNorm { weight: &layer.attn_norm, eps };
                    ops::qkv_rope_store(rec, a, &s.x, Some(norm), &s.xn, qkv, &s.qkv, &s.cos_sin, &s.q, &self.caches[l]);
                }
                qkv => {
                    ops::rmsnorm(rec, &s.x, 0, n, h, &layer.attn_norm, eps, &s.xn);
                    let width = cfg.qkv_width();
                    let parts: Vec<(&Linear, u32)> = match qkv {
                        Qkv::Stacked(m) => vec![(m, 0)],
                        Qkv::Separate { q, k, v } => vec![(q, 0), (k, hq * d), (v, (hq + hkv) * d)],
                    };
                    for (m, offset) in parts {
                        m.apply(rec, &s.xn, &s.qkv, MatmulIo { y_offset: offset, ..io(h, width, false) });
                    }
                    ops::rope_qk_store(rec, a, rope, &s.qkv, &s.cos_sin, &s.q, &self.caches[l]);
                }
            }
            ops::attention(rec, a, &s.q, &self.caches[l], &layer.sinks, &s.partials, &s.attn);
            layer.o.apply(rec, &s.attn, &s.x, io(hq * d, h, true));
            match &layer.mlp {
                Mlp::Moe { router, gate_up, down } => {
                    let route = RouteIo { x: &s.x, normed: &s.xn, logits: &s.router, ids: &s.ids, weights: &s.weights };
                    let routed = ops::moe_route(rec, n, &layer.mlp_norm, eps, router, k, route);
                    ops::expert_gate_up(rec, n, k, &s.xn, routed, gate_up, act, &s.act);
                    ops::expert_down_accumulate(rec, n, k, &s.act, routed, down, &s.y, &s.x);
                }
                Mlp::Dense { gate, up, down } => {
                    let i = cfg.intermediate_size;
                    ops::rmsnorm(rec, &s.x, 0, n, h, &layer.mlp_norm, eps, &s.xn);
                    gate.apply(rec, &s.xn, &s.gate, io(h, i, false));
                    up.apply(rec, &s.xn, &s.act, io(h, i, false));
                    ops::silu_mul(rec, n * i, &s.gate, &s.act);
                    down.apply(rec, &s.act, &s.x, io(i, h, true));
                }
            }
        }
        let rows = if want == Want::AllLogits { n } else { 1 };
        let mut readback = Readback::Nothing;
        if head {
            let first = n - rows;
            // The final norm happens inside the LM head's mat-vec where it can.
            let head_io = MatmulIo { n_tokens: rows, x_offset: first * h, x_stride: h, y_stride: v, y_offset: 0, accumulate: false };
            let norm = InputNorm { weight: &w.norm, eps };
            w.lm_head().apply_normed(rec, &s.x, norm, &s.xn, &s.logits, head_io);
            match want {
                Want::Argmax => ops::argmax(rec, &s.logits, 0, v, &s.argmax_parts, &s.token_out),
                Want::Sample(params) => {
                    let (scratch, pairs, n_pairs) = s.sampler.as_ref().expect("prepared above");
                    let step = (self.pos + n) as u64;
                    ops::sample::sample(rec, &s.logits, 0, v, pairs, *n_pairs, params, step, scratch, &s.token_out)?;
                }
                Want::AllLogits | Want::LastLogits => {}
            }
            // The result is copied out in this same command buffer: one submit per pass.
            match want {
                Want::Argmax | Want::Sample(_) => {
                    rec.encoder().copy_buffer_to_buffer(&s.token_out, 0, &s.token_readback[readback_index], 0, 4);
                    rec.note_readback(4);
                    readback = Readback::Token(readback_index);
                }
                Want::AllLogits | Want::LastLogits => {
                    let staging = gpu.staging("logits readback", rows as u64 * v as u64 * 4);
                    rec.encoder().copy_buffer_to_buffer(&s.logits, 0, &staging, 0, staging.size());
                    rec.note_readback(staging.size());
                    readback = Readback::Logits(staging, rows);
                }
            }
        }
        let submission = recorder.submit();
        if let Readback::Token(_) = readback {
            self.next_readback ^= 1;
        }
        if let Some(trace) = &mut self.trace {
            trace.push(PassEvent::Submitted { position: self.pos + n - 1 });
        }
        self.pos += n;
        match input {
            Input::Host(tokens) => self.history.extend_from_slice(tokens),
            // Filled in when the previous pass's token is read.
            Input::Chosen => self.history.push(u32::MAX),
        }
        Ok((readback, submission))
    }

    /// Waits for what a pass left to read (only for the submission `after` when given).
    async fn read(&mut self, readback: Readback, after: Option<wgpu::SubmissionIndex>) -> Result<Option<Output>> {
        let gpu = &*self.model.gpu;
        Ok(match readback {
            Readback::Nothing => {
                gpu.wait()?;
                None
            }
            Readback::Token(i) => {
                let b = gpu.map_read_after(&self.s.token_readback[i], 4, after).await?;
                Some(Output::Token(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            }
            Readback::Logits(staging, rows) => {
                let b = gpu.map_read(&staging, rows as u64 * self.model.cfg.vocab_size as u64 * 4).await?;
                Some(Output::Logits(bytemuck::pod_collect_to_vec(&b)))
            }
        })
    }

    /// The next token after `prev`, the token the last pass chose (as `forward` or this
    /// function returned it). With `ahead`, the pass that feeds the returned token and chooses
    /// the one after it is submitted before this returns — before the returned token is even
    /// read back — so the GPU never waits for the host between tokens; the next call then only
    /// waits for that pass. Pass `ahead = false` for the last token wanted. A pass queued ahead
    /// that is not wanted after all (a stop token) is undone by any other use of the session.
    /// Sampling with penalties needs each token on the host first, so it never runs ahead.
    pub async fn decode_next(&mut self, prev: u32, want: Want<'_>, ahead: bool) -> Result<u32> {
        let cfg = &self.model.cfg;
        match want {
            Want::Argmax => {}
            Want::Sample(p) => p.validate()?,
            Want::AllLogits | Want::LastLogits => return Err(Error::Input("decode_next chooses a token: want Argmax or Sample".into())),
        }
        if prev >= cfg.vocab_size {
            return Err(Error::Input(format!("token id {prev} is out of range for vocab_size {}", cfg.vocab_size)));
        }
        let ahead = ahead && !matches!(want, Want::Sample(p) if p.has_penalties());
        // The pass that feeds `prev`, unless it is already queued.
        let queued = self.ahead.is_some() && self.history.last() == Some(&prev);
        if !queued {
            self.settle()?;
            self.check_room(1)?;
            let (readback, submission) = self.submit_chunk(Input::Host(&[prev]), want, true)?;
            let Readback::Token(readback) = readback else { unreachable!("a chosen token is read back") };
            self.ahead = Some(InFlight { readback, submission });
        }
        let current = self.ahead.take().expect("queued above");
        // Queue the pass after it, fed on the GPU with the token `current` chooses.
        let mut next = None;
        if ahead && self.pos < self.ctx {
            let (readback, submission) = self.submit_chunk(Input::Chosen, want, true)?;
            let Readback::Token(readback) = readback else { unreachable!("a chosen token is read back") };
            next = Some(InFlight { readback, submission });
        }
        let position = self.pos - 1 - next.is_some() as u32;
        let id = match self.read(Readback::Token(current.readback), Some(current.submission)).await {
            Ok(Some(Output::Token(id))) => id,
            Ok(_) => unreachable!("a token readback gives a token"),
            Err(e) => {
                // The queued pass is undone; the failed one stays counted in the cache.
                let _ = self.settle_with(next);
                return Err(e);
            }
        };
        if let Some(trace) = &mut self.trace {
            trace.push(PassEvent::Read { position });
        }
        if next.is_some() {
            *self.history.last_mut().expect("pushed by submit_chunk") = id;
        }
        self.ahead = next;
        Ok(id)
    }

    /// Undoes a pass queued ahead by `decode_next` (waiting for it): the cache is as if only
    /// the tokens returned so far had been fed.
    fn settle(&mut self) -> Result<()> {
        let ahead = self.ahead.take();
        self.settle_with(ahead)
    }

    fn settle_with(&mut self, ahead: Option<InFlight>) -> Result<()> {
        if ahead.is_some() {
            let waited = self.model.gpu.wait();
            self.pos -= 1;
            self.history.pop();
            waited?;
        }
        Ok(())
    }

    fn check_room(&self, n: u32) -> Result<()> {
        if self.pos as u64 + n as u64 > self.ctx as u64 {
            return Err(Error::ContextFull {
                tokens: self.pos as u64 + n as u64,
                ctx: self.ctx,
                message: format!(
                    "{n} tokens at position {} exceed the context of {} tokens (raise --ctx, up to {})",
                    self.pos, self.ctx, self.model.cfg.max_position_embeddings
                ),
            });
        }
        Ok(())
    }

    /// Records the order of decode passes from now on (`take_trace` returns it).
    pub fn trace(&mut self) {
        self.trace = Some(Vec::new());
    }

    /// The decode passes recorded since `trace` or the last call.
    pub fn take_trace(&mut self) -> Vec<PassEvent> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }
}
