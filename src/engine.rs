//! Text in, text out: a loaded model with its tokenizer, and the token generation loop shared
//! by the CLI (and later the server and the browser).

use std::sync::atomic::{AtomicBool, Ordering};

use web_time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::models::gpt_oss::{GptOss, Output, Session, Want};
use crate::sampling::SamplingParams;
use crate::tokenizer::Tokenizer;

/// A model on the GPU and the tokenizer that goes with it.
pub struct Engine {
    pub model: std::sync::Arc<GptOss>,
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
        if tokenizer.vocab_size() > model.cfg.vocab_size as usize {
            return Err(Error::checkpoint(
                &tok_path,
                format!("{} tokens, more than the model's vocab_size {}", tokenizer.vocab_size(), model.cfg.vocab_size),
            ));
        }
        Ok(Engine { model, tokenizer })
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

/// Feeds `prompt` (reusing whatever prefix the session already holds) and generates tokens,
/// calling `on_token` for each as soon as it is known; `on_token` returns false to stop.
/// Only the chosen id of each step is read back from the GPU.
pub async fn generate(
    session: &mut Session,
    prompt: &[u32],
    opts: &GenerateOptions,
    cancel: &AtomicBool,
    on_token: &mut dyn FnMut(u32) -> Result<bool>,
) -> Result<(Stats, Finish)> {
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
    let want = if opts.sampling.is_greedy() { Want::Argmax } else { Want::Sample(&opts.sampling) };
    let mut stats = Stats { prompt_tokens: prompt.len(), ..Default::default() };
    stats.cached_tokens = session.reuse_prefix(prompt);
    let t0 = Instant::now();
    let mut out = session.forward(&prompt[stats.cached_tokens..], want).await?;
    stats.time_to_first_token = t0.elapsed();
    let t1 = Instant::now();
    let finish = loop {
        let Output::Token(id) = out else {
            return Err(Error::Gpu("expected a token from the sampler".into()));
        };
        stats.generated += 1;
        let go_on = on_token(id)?;
        if opts.stop.contains(&id) {
            break Finish::Stop(id);
        }
        if !go_on || cancel.load(Ordering::Relaxed) {
            break Finish::Cancelled;
        }
        if stats.generated as u32 >= opts.max_tokens {
            break Finish::MaxTokens;
        }
        out = session.forward(&[id], want).await?;
    };
    stats.decode_time = t1.elapsed();
    Ok((stats, finish))
}
