//! One sequence on a model: its KV cache (full layers sized to the context, sliding layers a
//! ring), its position, and the forward pass that records every layer's kernels into one
//! command buffer.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::{DispatchCache, Profiler, Recorder};
use crate::ops::sample::SampleScratch;
use crate::ops::{self, AttnShape, KvSegment, MatmulIo, RopeStyle, RouteIo, Swiglu};
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
    /// Host-readable copy of `token_out`, filled in the same command buffer as the forward pass.
    token_readback: wgpu::Buffer,
    /// Sampler buffers and (token, count) penalty pairs, created on the first sampled token.
    sampler: Option<(SampleScratch, wgpu::Buffer, u32)>,
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
    rings: Vec<u32>,
    s: Scratch,
    /// Kernel parameters and bind groups reused from one pass to the next.
    dispatch: DispatchCache,
    profiler: Option<Profiler>,
}

impl Session {
    pub(super) fn new(model: Arc<Model>, ctx: u32, chunk: u32) -> Result<Session> {
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
            caches.push(KvSegment::allocate(gpu, &format!("kv cache layer {l}"), ring, hkv, d)?);
            rings.push(ring);
        }
        let max_parts = ops::attention_max_parts(caches.iter().map(|c| c.len() as u32).max().unwrap_or(1));

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
            partials: f("attention partials", (hq * max_parts * (d + 2)) as u64 * 4),
            router: f("router logits", e as u64 * 4),
            ids: f("expert ids", k as u64 * 4),
            weights: f("expert weights", k as u64 * 4),
            act: f("MLP activations", mlp_act as u64 * 4),
            gate: f("MLP gate", dense_gate as u64 * 4),
            y: f("expert outputs", (k * h) as u64 * 4),
            logits: f("logits", v as u64 * 4),
            token_out: gpu.storage("argmax", 4),
            token_readback: gpu.staging("token readback", 4),
            sampler: None,
        };
        gpu.take_error()?;
        Ok(Session { model, ctx, chunk: t, pos: 0, history: Vec::new(), caches, rings, s, dispatch: DispatchCache::new(), profiler: None })
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

    /// Tokens already in the cache.
    pub fn position(&self) -> u32 {
        self.pos
    }

    pub fn context(&self) -> u32 {
        self.ctx
    }

    /// Tokens per prefill pass actually used (the request, bounded by binding limits).
    pub fn chunk(&self) -> u32 {
        self.chunk
    }

    /// Moves to position `pos` as if `pos` tokens (id 0) had been fed, without computing their
    /// keys and values (the cache keeps whatever it holds). Benchmarks use it to measure decode
    /// at a given depth; text generated after it is meaningless.
    pub fn fast_forward(&mut self, pos: u32) -> Result<()> {
        if pos >= self.ctx {
            return Err(Error::Input(format!("position {pos} is outside the context of {} tokens", self.ctx)));
        }
        self.pos = pos;
        self.history.resize(pos as usize, 0);
        Ok(())
    }

    /// Forgets the sequence (the cache is overwritten from position 0).
    pub fn reset(&mut self) {
        self.pos = 0;
        self.history.clear();
    }

    /// The tokens in the cache.
    pub fn tokens(&self) -> &[u32] {
        &self.history
    }

    /// Moves back to position `n`, keeping the cache before it. Sliding-window layers keep a ring
    /// of recent positions, so a long rewind starts over instead (returns false then).
    pub fn rewind(&mut self, n: u32) -> bool {
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
        let cfg = &self.model.cfg;
        if let Want::Sample(p) = want {
            p.validate()?;
        }
        if tokens.is_empty() {
            return Err(Error::Input("no tokens to process".into()));
        }
        if let Some(bad) = tokens.iter().find(|&&t| t >= cfg.vocab_size) {
            return Err(Error::Input(format!("token id {bad} is out of range for vocab_size {}", cfg.vocab_size)));
        }
        let end = self.pos as u64 + tokens.len() as u64;
        if end > self.ctx as u64 {
            return Err(Error::Input(format!(
                "{} tokens at position {} exceed the context of {} tokens (raise --ctx, up to {})",
                tokens.len(),
                self.pos,
                self.ctx,
                cfg.max_position_embeddings
            )));
        }
        let mut all = Vec::new();
        let n_chunks = tokens.len().div_ceil(self.chunk as usize);
        for (ci, chunk) in tokens.chunks(self.chunk as usize).enumerate() {
            let last = ci + 1 == n_chunks;
            // Intermediate chunks of a prompt only fill the cache unless every position's logits are wanted.
            let head = last || want == Want::AllLogits;
            match (want, self.run_chunk(chunk, want, head).await?) {
                (Want::AllLogits, Some(Output::Logits(l))) => all.extend(l),
                (_, Some(o)) if last => return Ok(o),
                _ => {}
            }
        }
        Ok(Output::Logits(all))
    }

    async fn run_chunk(&mut self, tokens: &[u32], want: Want<'_>, head: bool) -> Result<Option<Output>> {
        let model = self.model.clone();
        let m = &*model;
        if let (Want::Sample(params), true) = (want, head) {
            self.prepare_sampler(tokens, params);
        }
        let (cfg, gpu, w, s) = (&m.cfg, &*m.gpu, &m.weights, &self.s);
        let n = tokens.len() as u32;
        let (h, hq, hkv, d) = (cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim);
        let (k, v) = (cfg.num_experts_per_tok, cfg.vocab_size);
        let eps = cfg.rms_norm_eps;
        gpu.write(&s.tokens, 0, bytemuck::cast_slice(tokens));
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
            ops::rmsnorm(rec, &s.x, 0, n, h, &layer.attn_norm, eps, &s.xn);
            match &layer.qkv {
                Qkv::Stacked(Linear::Bf16(qkv)) if rope.is_plain() => {
                    ops::qkv_rope_store(rec, a, &s.xn, qkv, &s.qkv, &s.cos_sin, &s.q, &self.caches[l]);
                }
                qkv => {
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
        let mut logits_readback = None;
        if head {
            let first = n - rows;
            ops::rmsnorm(rec, &s.x, first, rows, h, &w.norm, eps, &s.xn);
            let head_io = MatmulIo { n_tokens: rows, x_offset: 0, x_stride: h, y_stride: v, y_offset: 0, accumulate: false };
            w.lm_head().apply(rec, &s.xn, &s.logits, head_io);
            match want {
                Want::Argmax => ops::argmax(rec, &s.logits, 0, v, &s.token_out),
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
                    rec.encoder().copy_buffer_to_buffer(&s.token_out, 0, &s.token_readback, 0, 4);
                    rec.note_readback(4);
                }
                Want::AllLogits | Want::LastLogits => {
                    let staging = gpu.staging("logits readback", rows as u64 * v as u64 * 4);
                    rec.encoder().copy_buffer_to_buffer(&s.logits, 0, &staging, 0, staging.size());
                    rec.note_readback(staging.size());
                    logits_readback = Some(staging);
                }
            }
        }
        recorder.submit();
        self.pos += n;
        self.history.extend_from_slice(tokens);
        if !head {
            gpu.wait()?;
            return Ok(None);
        }
        Ok(Some(match logits_readback {
            None => {
                let b = gpu.map_read(&s.token_readback, 4).await?;
                Output::Token(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            Some(staging) => {
                let b = gpu.map_read(&staging, rows as u64 * v as u64 * 4).await?;
                Output::Logits(bytemuck::pod_collect_to_vec(&b))
            }
        }))
    }
}
