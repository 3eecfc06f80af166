//! Text in, text out: a loaded model with its tokenizer, token generation one step at a time
//! ([`Generation`]) and chat turns in the harmony format ([`ChatTurn`]), shared by the CLI, the
//! server, the browser module and applications that embed wgpt.
//!
//! Generation advances in steps so that a caller decides how much work happens per call: a
//! render loop can ask for one token per frame, a server can interleave sessions, and a
//! command-line tool can run to the end with [`generate`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;
use web_time::{Duration, Instant};

use crate::chat::harmony::{Conversation, Event, Message, StopReason, StreamParser};
use crate::error::{Error, Result};
use crate::models::gpt_oss::{GptOss, Output, Session, Want};
use crate::sampling::SamplingParams;
use crate::tokenizer::Tokenizer;

/// A model on the GPU and the tokenizer that goes with it. Cloning is cheap and shares both.
#[derive(Clone)]
pub struct Engine {
    pub model: Arc<GptOss>,
    pub tokenizer: Tokenizer,
}

impl Engine {
    /// Loads `config.json`, the safetensors weights and `tokenizer.json` from a model directory.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(gpu: std::sync::Arc<crate::gpu::Gpu>, dir: &std::path::Path, progress: crate::models::gpt_oss::weights::Progress) -> Result<Engine> {
        let tok_path = dir.join("tokenizer.json");
        if !tok_path.exists() {
            return Err(Error::checkpoint(&tok_path, "missing: text generation needs the model's tokenizer.json"));
        }
        let tokenizer = Tokenizer::from_file(&tok_path)?;
        let model = GptOss::load(gpu, dir, progress)?;
        Self::new(model, tokenizer)
    }

    /// Pairs a loaded model with its tokenizer, checking that they fit together.
    pub fn new(model: Arc<GptOss>, tokenizer: Tokenizer) -> Result<Engine> {
        if tokenizer.vocab_size() > model.cfg.vocab_size as usize {
            return Err(Error::Input(format!(
                "the tokenizer has {} tokens, more than the model's vocab_size {}",
                tokenizer.vocab_size(),
                model.cfg.vocab_size
            )));
        }
        Ok(Engine { model, tokenizer })
    }

    /// A new conversation's KV cache of `ctx` tokens (see [`GptOss::session`]).
    pub fn session(&self, ctx: u32, chunk: u32) -> Result<Session> {
        self.model.session(ctx, chunk)
    }
}

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
            return Err(Error::Input(format!(
                "{} prompt tokens + {} new tokens exceed the context of {} tokens",
                prompt.len(),
                opts.max_tokens,
                session.context()
            )));
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
        let want = if self.want_greedy { Want::Argmax } else { Want::Sample(&self.opts.sampling) };
        let out = match self.pending {
            None => {
                self.stats.cached_tokens = session.reuse_prefix(&self.prompt);
                let t0 = Instant::now();
                let out = session.forward(&self.prompt[self.stats.cached_tokens..], want).await?;
                self.stats.time_to_first_token = t0.elapsed();
                self.decode_start = Some(Instant::now());
                out
            }
            Some(prev) => session.forward(&[prev], want).await?,
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

/// How to answer in a chat turn.
#[derive(Clone, Debug)]
pub struct ChatOptions {
    /// Largest number of tokens of the answer (reasoning included); lowered to what the
    /// session's context still holds.
    pub max_tokens: u32,
    pub sampling: SamplingParams,
}

/// One assistant turn of a conversation in the harmony format: the conversation is rendered,
/// then each step generates tokens and returns the parsed events (text per channel, tool calls).
/// Usable from a render loop: `step(session, 1)` does one token's work and returns.
pub struct ChatTurn {
    generation: Generation,
    parser: StreamParser,
    messages: Vec<Message>,
    ended: bool,
}

impl ChatTurn {
    /// Renders `conv` for the assistant's next message. The session keeps whatever prefix of the
    /// rendered prompt it already holds (a multi-turn chat only feeds the new messages).
    pub fn new(engine: &Engine, session: &Session, conv: &Conversation, opts: &ChatOptions) -> Result<ChatTurn> {
        let tok = &engine.tokenizer;
        let prompt = conv.render_for_completion(tok)?;
        let room = session.context() as usize;
        if prompt.len() >= room {
            return Err(Error::Input(format!(
                "the conversation ({} tokens) does not fit the context of {room} tokens (start over or use a larger context)",
                prompt.len()
            )));
        }
        let stop = vec![tok.special("<|return|>")?, tok.special("<|call|>")?];
        let max_tokens = opts.max_tokens.min((room - prompt.len()) as u32);
        let generation = Generation::new(session, &prompt, GenerateOptions { max_tokens, sampling: opts.sampling.clone(), stop })?;
        Ok(ChatTurn { generation, parser: StreamParser::new(tok)?, messages: Vec::new(), ended: false })
    }

    /// Generates up to `max_tokens` tokens and returns their events. After the last token the
    /// parser is flushed, so the final step also carries the last `MessageEnd` and `Done`.
    pub async fn step(&mut self, session: &mut Session, max_tokens: u32) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        for _ in 0..max_tokens.max(1) {
            match self.generation.step(session).await? {
                Some(id) => events.extend(self.parser.push(id)?),
                None => break,
            }
            if self.generation.is_done() {
                break;
            }
        }
        if self.generation.is_done() && !self.ended {
            self.ended = true;
            let finish = self.generation.finish();
            for ev in self.parser.finish()? {
                // A stop token already produced its `Done`; a cut-off answer reports the cut.
                if !matches!(ev, Event::Done(StopReason::EndOfStream)) || finish == Some(Finish::MaxTokens) {
                    events.push(ev);
                }
            }
        }
        for ev in &events {
            if let Event::MessageEnd(m) = ev {
                self.messages.push(m.clone());
            }
        }
        Ok(events)
    }

    /// Runs the turn to its end, passing each event to `on_event`.
    pub async fn run(&mut self, session: &mut Session, on_event: &mut dyn FnMut(&Event)) -> Result<()> {
        while !self.is_done() {
            for ev in self.step(session, 1).await? {
                on_event(&ev);
            }
        }
        Ok(())
    }

    /// True once the answer is complete (and the parser flushed).
    pub fn is_done(&self) -> bool {
        self.ended
    }

    /// Stops the turn; the next step flushes what was generated so far.
    pub fn cancel(&mut self) {
        self.generation.cancel();
    }

    /// A flag that stops the turn at its next step when set, from any thread.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.generation.cancel_flag()
    }

    /// The assistant messages completed so far, to append to the conversation.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    pub fn finish(&self) -> Option<Finish> {
        self.generation.finish()
    }

    pub fn stats(&self) -> &Stats {
        self.generation.stats()
    }

    pub fn usage(&self) -> Usage {
        self.generation.stats().usage(self.finish())
    }
}
