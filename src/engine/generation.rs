//! Token generation over a session, one step at a time: the prompt is fed on the first step,
//! then each step produces one token.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;
use web_time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::models::{Output, Session, Want};
use crate::sampling::SamplingParams;

/// How to generate.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub max_tokens: u32,
    pub sampling: SamplingParams,
    /// Generation ends after emitting any of these ids.
    pub stop: Vec<u32>,
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    Stop(u32),
    MaxTokens,
    /// The token callback or the cancel flag asked to stop.
    Cancelled,
}

/// Counts and timings of one generation.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were already in the cache.
    pub cached_tokens: usize,
    pub generated: usize,
    pub time_to_first_token: Duration,
    pub decode_time: Duration,
}

impl Stats {
    /// Tokens per second after the first one.
    pub fn decode_tok_s(&self) -> f64 {
        let secs = self.decode_time.as_secs_f64();
        if self.generated > 1 && secs > 0.0 {
            (self.generated - 1) as f64 / secs
        } else {
            0.0
        }
    }
    /// Prompt tokens processed per second (those not already cached).
    pub fn prefill_tok_s(&self) -> f64 {
        let secs = self.time_to_first_token.as_secs_f64();
        if secs > 0.0 {
            (self.prompt_tokens - self.cached_tokens) as f64 / secs
        } else {
            0.0
        }
    }

    /// The usage record reported at the end of a turn.
    pub fn usage(&self, finish: Option<Finish>) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens,
            cached_tokens: self.cached_tokens,
            completion_tokens: self.generated,
            time_to_first_token_s: self.time_to_first_token.as_secs_f64(),
            prefill_tok_s: self.prefill_tok_s(),
            decode_tok_s: self.decode_tok_s(),
            finish,
        }
    }
}

/// Token counts and speed of a finished (or stopped) generation, as reported to users.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub cached_tokens: usize,
    pub completion_tokens: usize,
    pub time_to_first_token_s: f64,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
    pub finish: Option<Finish>,
}

/// One generation in progress over a session: the prompt is fed on the first step, then each
/// step produces one token. Only the chosen id of each step is read back from the GPU.
pub struct Generation {
    prompt: Vec<u32>,
    opts: GenerateOptions,
    want_greedy: bool,
    /// The token produced by the last step, fed at the start of the next.
    pending: Option<u32>,
    stats: Stats,
    finish: Option<Finish>,
    decode_start: Option<Instant>,
    cancel: Arc<AtomicBool>,
    /// When the prompt started going in, once the cached prefix is known.
    prefill_start: Option<Instant>,
    /// Prompt tokens fed by [`Generation::prefill_step`] after the cached prefix.
    fed: usize,
}

impl Generation {
    /// Checks the request against the session's context. Nothing runs until the first step.
    pub fn new(session: &Session, prompt: &[u32], opts: GenerateOptions) -> Result<Generation> {
        opts.sampling.validate()?;
        if prompt.is_empty() {
            return Err(Error::Input("empty prompt".into()));
        }
        let needed = prompt.len() as u64 + opts.max_tokens as u64;
        if needed > session.context() as u64 {
            return Err(Error::ContextFull {
                tokens: needed,
                ctx: session.context(),
                message: format!(
                    "{} prompt tokens + {} new tokens exceed the context of {} tokens",
                    prompt.len(),
                    opts.max_tokens,
                    session.context()
                ),
            });
        }
        Ok(Generation {
            prompt: prompt.to_vec(),
            want_greedy: opts.sampling.is_greedy(),
            opts,
            pending: None,
            stats: Stats { prompt_tokens: prompt.len(), ..Default::default() },
            finish: if needed == prompt.len() as u64 { Some(Finish::MaxTokens) } else { None },
            decode_start: None,
            cancel: Arc::new(AtomicBool::new(false)),
            prefill_start: None,
            fed: 0,
        })
    }

    /// Produces the next token (feeding the prompt first, reusing whatever prefix the session
    /// already holds), or `None` once the generation has ended.
    pub async fn step(&mut self, session: &mut Session) -> Result<Option<u32>> {
        if self.finish.is_some() {
            return Ok(None);
        }
        if self.cancel.load(Ordering::Relaxed) {
            self.end(Finish::Cancelled);
            return Ok(None);
        }
        let prefill_t0 = if self.pending.is_none() { Some(self.begin(session)) } else { None };
        let want = if self.want_greedy { Want::Argmax } else { Want::Sample(&self.opts.sampling) };
        let out = match self.pending {
            None => {
                let t0 = prefill_t0.unwrap_or_else(Instant::now);
                let out = session.forward(&self.prompt[self.stats.cached_tokens + self.fed..], want).await?;
                self.stats.time_to_first_token = t0.elapsed();
                self.decode_start = Some(Instant::now());
                out
            }
            // The pass after this one is queued before this token is read back, unless this
            // is the last token wanted.
            Some(prev) => Output::Token(session.decode_next(prev, want, self.stats.generated as u32 + 1 < self.opts.max_tokens).await?),
        };
        let Output::Token(id) = out else {
            return Err(Error::Gpu("expected a token from the sampler".into()));
        };
        self.stats.generated += 1;
        self.pending = Some(id);
        if self.opts.stop.contains(&id) {
            self.end(Finish::Stop(id));
        } else if self.stats.generated as u32 >= self.opts.max_tokens {
            self.end(Finish::MaxTokens);
        }
        Ok(Some(id))
    }

    /// Keeps the cached prefix of the prompt, once; returns when feeding the prompt began.
    fn begin(&mut self, session: &mut Session) -> Instant {
        if let Some(t) = self.prefill_start {
            return t;
        }
        self.stats.cached_tokens = session.reuse_prefix(&self.prompt);
        let now = Instant::now();
        self.prefill_start = Some(now);
        now
    }

    /// Feeds up to `max_tokens` prompt tokens without generating, so that a long prompt can be
    /// spread over several calls (frames); the first [`Generation::step`] then feeds the rest.
    /// Returns how many were fed: 0 once only the prompt's last token is left (it is always fed
    /// by `step`, which produces the first token).
    pub async fn prefill_step(&mut self, session: &mut Session, max_tokens: u32) -> Result<usize> {
        if self.finish.is_some() || self.pending.is_some() {
            return Ok(0);
        }
        self.begin(session);
        let from = self.stats.cached_tokens + self.fed;
        let n = self.prompt.len().saturating_sub(from + 1).min(max_tokens as usize);
        if n == 0 {
            return Ok(0);
        }
        session.forward(&self.prompt[from..from + n], Want::Argmax).await?;
        self.fed += n;
        Ok(n)
    }

    /// True once the first token was produced (the whole prompt is in the cache).
    pub fn prompt_done(&self) -> bool {
        self.pending.is_some() || self.finish.is_some()
    }

    fn end(&mut self, why: Finish) {
        if self.finish.is_some() {
            return;
        }
        if let Some(t) = self.decode_start {
            self.stats.decode_time = t.elapsed();
        }
        self.finish = Some(why);
    }

    /// Stops at the next step (the tokens so far stay in the session's cache).
    pub fn cancel(&mut self) {
        self.end(Finish::Cancelled);
    }

    /// A flag that stops the generation at its next step when set, from any thread.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// Why the generation ended, once it has.
    pub fn finish(&self) -> Option<Finish> {
        self.finish
    }

    pub fn is_done(&self) -> bool {
        self.finish.is_some()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// Feeds `prompt` (reusing whatever prefix the session already holds) and generates tokens,
/// calling `on_token` for each as soon as it is known; `on_token` returns false to stop.
pub async fn generate(
    session: &mut Session,
    prompt: &[u32],
    opts: &GenerateOptions,
    cancel: &AtomicBool,
    on_token: &mut dyn FnMut(u32) -> Result<bool>,
) -> Result<(Stats, Finish)> {
    let mut generation = Generation::new(session, prompt, opts.clone())?;
    while let Some(id) = generation.step(session).await? {
        if !on_token(id)? || cancel.load(Ordering::Relaxed) {
            generation.cancel();
        }
    }
    let finish = generation.finish().unwrap_or(Finish::MaxTokens);
    Ok((generation.stats, finish))
}
