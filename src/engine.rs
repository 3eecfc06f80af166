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

use crate::chat::harmony::{Conversation, Event, Message, Role, StopReason, StreamParser};
use crate::chat::plain::PlainParser;
use crate::chat::ChatFormat;
use crate::chat::template::{encode_chat, ChatTemplate, TemplateMessage};
use crate::error::{Error, Result};
use crate::models::gpt_oss::checkpoint::Upload;
use crate::models::{Model, Output, Session, Want};
use crate::sampling::SamplingParams;
use crate::tokenizer::Tokenizer;

/// A model on the GPU, the tokenizer that goes with it, and how its chats are written. Cloning
/// is cheap and shares all three.
#[derive(Clone)]
pub struct Engine {
    pub model: Arc<Model>,
    pub tokenizer: Tokenizer,
    pub format: ChatFormat,
}

impl Engine {
    /// Loads a model: a directory with `config.json`, the safetensors weights and
    /// `tokenizer.json` (gpt-oss), or a `.gguf` file (weights, tokenizer and chat template).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(gpu: std::sync::Arc<crate::gpu::Gpu>, path: &std::path::Path, progress: crate::models::weights::Progress) -> Result<Engine> {
        if crate::loader::is_gguf(path) {
            let (g, map) = crate::loader::gguf::Gguf::open(path)?;
            let model = crate::models::gguf::load(gpu, &g, &map, progress)?;
            let tokenizer = Tokenizer::from_gguf_vocab(&crate::models::gguf::vocab(&g)?)?;
            let format = ChatFormat::from_gguf(&g, &tokenizer)?;
            return Self::with_format(model, tokenizer, format);
        }
        let tok_path = path.join("tokenizer.json");
        if !tok_path.exists() {
            return Err(Error::checkpoint(&tok_path, "missing: text generation needs the model's tokenizer.json"));
        }
        let tokenizer = Tokenizer::from_file(&tok_path)?;
        let model = Model::load(gpu, path, progress)?;
        Self::new(model, tokenizer)
    }

    /// Pairs a loaded gpt-oss model with its tokenizer, checking that they fit together.
    pub fn new(model: Arc<Model>, tokenizer: Tokenizer) -> Result<Engine> {
        Self::with_format(model, tokenizer, ChatFormat::Harmony)
    }

    /// Pairs a loaded model with its tokenizer and chat format.
    pub fn with_format(model: Arc<Model>, tokenizer: Tokenizer, format: ChatFormat) -> Result<Engine> {
        if tokenizer.vocab_size() > model.cfg.vocab_size as usize {
            return Err(Error::Input(format!(
                "the tokenizer has {} tokens, more than the model's vocab_size {}",
                tokenizer.vocab_size(),
                model.cfg.vocab_size
            )));
        }
        Ok(Engine { model, tokenizer, format })
    }

    /// The prompt ids of `conv`, ready for the assistant's next message, in the model's format.
    pub fn render(&self, conv: &Conversation) -> Result<Vec<u32>> {
        match &self.format {
            ChatFormat::Harmony => conv.render_for_completion(&self.tokenizer),
            ChatFormat::Template { template, .. } => render_template(&self.tokenizer, template, conv),
        }
    }

    /// A new conversation's KV cache of `ctx` tokens (see [`Model::session`]).
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
    parser: TurnParser,
    messages: Vec<Message>,
    ended: bool,
}

impl ChatTurn {
    /// Renders `conv` for the assistant's next message. The session keeps whatever prefix of the
    /// rendered prompt it already holds (a multi-turn chat only feeds the new messages).
    pub fn new(engine: &Engine, session: &Session, conv: &Conversation, opts: &ChatOptions) -> Result<ChatTurn> {
        let tok = &engine.tokenizer;
        let prompt = engine.render(conv)?;
        let (stop, parser) = match &engine.format {
            ChatFormat::Harmony => {
                (vec![tok.special("<|return|>")?, tok.special("<|call|>")?], TurnParser::Harmony(StreamParser::new(tok)?))
            }
            ChatFormat::Template { stop, .. } => (stop.clone(), TurnParser::Plain(PlainParser::new(tok, stop))),
        };
        let room = session.context() as usize;
        if prompt.len() >= room {
            return Err(Error::Input(format!(
                "the conversation ({} tokens) does not fit the context of {room} tokens (start over or use a larger context)",
                prompt.len()
            )));
        }
        let max_tokens = opts.max_tokens.min((room - prompt.len()) as u32);
        let generation = Generation::new(session, &prompt, GenerateOptions { max_tokens, sampling: opts.sampling.clone(), stop })?;
        Ok(ChatTurn { generation, parser, messages: Vec::new(), ended: false })
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

/// The parser of a turn's output, by chat format.
enum TurnParser {
    Harmony(StreamParser),
    Plain(PlainParser),
}

impl TurnParser {
    fn push(&mut self, id: u32) -> Result<Vec<Event>> {
        match self {
            TurnParser::Harmony(p) => p.push(id),
            TurnParser::Plain(p) => p.push(id),
        }
    }

    fn finish(&mut self) -> Result<Vec<Event>> {
        match self {
            TurnParser::Harmony(p) => p.finish(),
            TurnParser::Plain(p) => p.finish(),
        }
    }
}

/// The prompt of a conversation in a template format: developer instructions become the system
/// message; message contents stay ordinary text (text that looks like a control token is not one).
fn render_template(tok: &Tokenizer, template: &ChatTemplate, conv: &Conversation) -> Result<Vec<u32>> {
    if !conv.tools.is_empty() {
        return Err(Error::Input("this model's chat template is used without tools; tool definitions are only supported for gpt-oss".into()));
    }
    let mut messages = Vec::new();
    if let Some(text) = &conv.instructions {
        messages.push(TemplateMessage { role: "system".into(), content: text.clone() });
    }
    for m in &conv.messages {
        let role = match m.role {
            Role::System | Role::Developer => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        };
        // Reasoning of earlier answers is not part of a plain conversation.
        if m.role == Role::Assistant && m.channel.as_deref() == Some("analysis") {
            continue;
        }
        messages.push(TemplateMessage { role: role.into(), content: m.content.clone() });
    }
    let pieces = template.render(&messages, true)?;
    let mut ids = Vec::new();
    let body = encode_chat(tok, &pieces)?;
    if let (true, Some(bos)) = (tok.add_bos(), tok.bos()) {
        if body.first() != Some(&bos) {
            ids.push(bos);
        }
    }
    ids.extend(body);
    Ok(ids)
}

/// How much work one call to [`ChatTurn::step_within`] or [`Chat::step`] may do: at most
/// `max_tokens` tokens, and (when set) no new token once the next one would likely end after
/// `max_time`. With a time budget the prompt is fed one prefill chunk per call until it is in
/// the cache, so a long prompt does not stall a frame. Every call makes progress: at least one
/// token, or one chunk of the prompt.
///
/// ```
/// use std::time::Duration;
/// use wgpt::engine::Budget;
///
/// let frame = Budget::time(Duration::from_millis(4));
/// assert_eq!(frame.max_time, Some(Duration::from_millis(4)));
/// let one = Budget::tokens(1);
/// assert_eq!((one.max_tokens, one.max_time), (1, None));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub max_tokens: u32,
    pub max_time: Option<Duration>,
}

impl Budget {
    /// At most `n` tokens (at least 1).
    pub fn tokens(n: u32) -> Budget {
        Budget { max_tokens: n.max(1), max_time: None }
    }

    /// As many tokens as fit in `d`, judged by how long the previous token took.
    pub fn time(d: Duration) -> Budget {
        Budget { max_tokens: u32::MAX, max_time: Some(d) }
    }

    /// Runs to the end.
    pub fn unlimited() -> Budget {
        Budget { max_tokens: u32::MAX, max_time: None }
    }
}

impl ChatTurn {
    /// Generates tokens within `budget` and returns their events: the frame-budgeted step of a
    /// render loop (`Budget::time(frame_slack)`) or a fixed number of tokens. The first call
    /// also feeds the prompt, which is not split.
    pub async fn step_within(&mut self, session: &mut Session, budget: Budget) -> Result<Vec<Event>> {
        let start = Instant::now();
        let mut events = Vec::new();
        if let Some(limit) = budget.max_time {
            while !self.generation.prompt_done() {
                let t0 = Instant::now();
                if self.generation.prefill_step(session, session.chunk()).await? == 0 {
                    break;
                }
                if start.elapsed() + t0.elapsed() > limit {
                    return Ok(events);
                }
            }
        }
        let mut made = 0u32;
        while !self.is_done() && made < budget.max_tokens.max(1) {
            let t0 = Instant::now();
            events.extend(self.step(session, 1).await?);
            made += 1;
            if let Some(limit) = budget.max_time {
                // Stop when another token of the same cost would overrun the budget.
                if start.elapsed() + t0.elapsed() > limit {
                    break;
                }
            }
        }
        Ok(events)
    }

    /// The events of the rest of the turn as a blocking iterator (one token per item batch);
    /// native only, where blocking on the GPU is allowed.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn events<'a>(&'a mut self, session: &'a mut Session) -> Events<'a> {
        Events { turn: self, session, buffered: std::collections::VecDeque::new(), failed: false }
    }
}

/// Blocking iterator over the events of a [`ChatTurn`] (see [`ChatTurn::events`]).
#[cfg(not(target_arch = "wasm32"))]
pub struct Events<'a> {
    turn: &'a mut ChatTurn,
    session: &'a mut Session,
    buffered: std::collections::VecDeque<Event>,
    failed: bool,
}

#[cfg(not(target_arch = "wasm32"))]
impl Iterator for Events<'_> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        while self.buffered.is_empty() {
            if self.failed || self.turn.is_done() {
                return None;
            }
            match pollster::block_on(self.turn.step(self.session, 1)) {
                Ok(events) => self.buffered.extend(events),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        self.buffered.pop_front().map(Ok)
    }
}

/// Everything a model wrote in one turn of a [`Chat`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reply {
    /// The analysis channel.
    pub reasoning: String,
    /// The final answer (and commentary preambles).
    pub text: String,
    /// Calls to function tools: (name without the `functions.` prefix, JSON arguments).
    pub tool_calls: Vec<(String, String)>,
    pub usage: Option<Usage>,
}

impl Reply {
    /// Adds one event's text to the reply.
    pub fn add(&mut self, ev: &Event) {
        match ev {
            Event::Delta { channel, text } if channel.as_deref() == Some("analysis") => self.reasoning.push_str(text),
            Event::ToolCall { recipient, arguments, .. } => {
                let name = recipient.strip_prefix("functions.").unwrap_or(recipient);
                self.tool_calls.push((name.to_string(), arguments.clone()));
            }
            _ => {}
        }
    }
}

/// A conversation with its own KV cache on a shared model: append a user message, then step
/// the answer within a budget (a render loop) or run it to the end ([`Chat::reply`]). Each
/// answer is appended to the conversation, and the next turn reuses the cache.
///
/// ```no_run
/// # fn main() -> wgpt::Result<()> {
/// use std::sync::Arc;
/// use wgpt::engine::{Chat, Engine};
/// use wgpt::gpu::{Gpu, GpuOptions};
///
/// let gpu = Arc::new(pollster::block_on(Gpu::new(&GpuOptions::default()))?);
/// let engine = Engine::open(gpu, "openai/gpt-oss-20b", &mut |_| {})?;
/// let mut chat = Chat::new(&engine, 4096)?;
/// let reply = pollster::block_on(chat.reply("Why is the sky blue?"))?;
/// println!("{}", reply.text);
/// # Ok(()) }
/// ```
pub struct Chat {
    engine: Engine,
    session: Session,
    conversation: Conversation,
    options: ChatOptions,
    turn: Option<ChatTurn>,
    in_tool_call: bool,
    last_usage: Option<Usage>,
}

impl Chat {
    /// A new conversation with a KV cache of `ctx` tokens, greedy decoding and up to 2048
    /// tokens per answer (see [`Chat::set_options`]).
    pub fn new(engine: &Engine, ctx: u32) -> Result<Chat> {
        Ok(Self::with_session(engine, engine.session(ctx, crate::models::DEFAULT_CHUNK)?))
    }

    /// A new conversation in a session opened by the caller (its context and prefill chunk: a
    /// smaller chunk spreads a prompt over more, shorter steps under a time budget).
    pub fn with_session(engine: &Engine, session: Session) -> Chat {
        Chat {
            engine: engine.clone(),
            session,
            conversation: Conversation::default(),
            options: ChatOptions { max_tokens: 2048, sampling: SamplingParams::greedy() },
            turn: None,
            in_tool_call: false,
            last_usage: None,
        }
    }

    pub fn set_options(&mut self, options: ChatOptions) {
        self.options = options;
    }

    /// The conversation so far (instructions, tools, messages).
    pub fn conversation(&self) -> &Conversation {
        &self.conversation
    }

    /// Edit the conversation (instructions, tools, reasoning effort, tool results) between turns.
    pub fn conversation_mut(&mut self) -> &mut Conversation {
        &mut self.conversation
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Appends a user message and starts the answer.
    pub fn send(&mut self, text: &str) -> Result<()> {
        if self.turn.is_some() {
            return Err(Error::Input("the model is still answering; cancel or finish the turn first".into()));
        }
        self.conversation.messages.push(Message::new(crate::chat::harmony::Role::User, text));
        self.respond().inspect_err(|_| {
            self.conversation.messages.pop();
        })
    }

    /// Starts an answer to the conversation as it stands (e.g. after adding a tool result).
    pub fn respond(&mut self) -> Result<()> {
        if self.turn.is_some() {
            return Err(Error::Input("the model is still answering".into()));
        }
        self.turn = Some(ChatTurn::new(&self.engine, &self.session, &self.conversation, &self.options)?);
        self.in_tool_call = false;
        Ok(())
    }

    /// True while an answer is being generated.
    pub fn is_busy(&self) -> bool {
        self.turn.is_some()
    }

    /// Advances the answer within `budget`; returns its events (nothing when idle). When the
    /// answer is complete its messages join the conversation.
    pub async fn step(&mut self, budget: Budget) -> Result<Vec<Event>> {
        let Some(turn) = self.turn.as_mut() else { return Ok(Vec::new()) };
        let events = match turn.step_within(&mut self.session, budget).await {
            Ok(ev) => ev,
            Err(e) => {
                self.turn = None;
                self.session.reset();
                return Err(e);
            }
        };
        if turn.is_done() {
            self.conversation.messages.extend(turn.messages().iter().cloned());
            self.last_usage = Some(turn.usage());
            self.turn = None;
        }
        Ok(events)
    }

    /// Sends `text` and runs the answer to its end.
    pub async fn reply(&mut self, text: &str) -> Result<Reply> {
        self.send(text)?;
        let mut reply = Reply::default();
        while self.is_busy() {
            for ev in self.step(Budget::unlimited()).await? {
                self.track(&mut reply, &ev);
            }
        }
        reply.usage = self.last_usage.clone();
        Ok(reply)
    }

    fn track(&mut self, reply: &mut Reply, ev: &Event) {
        match ev {
            Event::MessageStart(h) => self.in_tool_call = h.recipient.is_some(),
            Event::Delta { channel, text } if !self.in_tool_call && channel.as_deref() != Some("analysis") => {
                reply.text.push_str(text)
            }
            other => reply.add(other),
        }
    }

    /// Stops the answer at its next step (what was written so far is kept).
    pub fn cancel(&mut self) {
        if let Some(turn) = self.turn.as_mut() {
            turn.cancel();
        }
    }

    /// A flag that stops the current answer when set, from any thread.
    pub fn cancel_flag(&self) -> Option<Arc<AtomicBool>> {
        self.turn.as_ref().map(ChatTurn::cancel_flag)
    }

    /// Token counts of the last finished answer.
    pub fn usage(&self) -> Option<&Usage> {
        self.last_usage.as_ref()
    }

    /// Forgets the messages (instructions and tools stay) and the cache.
    pub fn reset(&mut self) {
        self.turn = None;
        self.conversation.messages.clear();
        self.session.reset();
    }
}

/// What happens during [`Engine::open`].
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Debug)]
pub enum LoadEvent {
    /// A file of a hub repo is downloading.
    Download(crate::hub::DownloadEvent),
    /// Weights uploaded to the GPU so far, of the total (bytes).
    Upload { done: u64, total: u64 },
}

impl Engine {
    /// Loads a model from a directory or a Hugging Face repo id (`org/name[@revision]`,
    /// downloaded into the Hugging Face cache first), reporting progress to `progress`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(gpu: Arc<crate::gpu::Gpu>, model: &str, progress: &mut dyn FnMut(LoadEvent)) -> Result<Engine> {
        let dir = crate::hub::resolve_model(model, &mut |e| progress(LoadEvent::Download(e)))?;
        Self::load(gpu, &dir, &mut |done, total| progress(LoadEvent::Upload { done, total }))
    }

    /// Loads from bytes the caller streams (a download, a browser `File`, an archive): `header`
    /// lists the checkpoint's files and tensors (parsed from the files' first bytes, see
    /// [`crate::loader::Header`]), and `feed` pushes each file's bytes, in file order, into the
    /// upload plan it is given, on the device it is given ([`Upload::feed`]). The weights go to
    /// the GPU as they arrive; the checkpoint is never whole in memory.
    pub fn from_stream(
        gpu: Arc<crate::gpu::Gpu>,
        cfg: crate::models::Config,
        header: &crate::loader::Header,
        tokenizer: Tokenizer,
        feed: &mut dyn FnMut(&mut Upload, &crate::gpu::Gpu) -> Result<()>,
    ) -> Result<Engine> {
        let mut upload = Upload::plan(&gpu, &cfg, header)?;
        feed(&mut upload, &gpu)?;
        let weights = upload.finish(&gpu)?;
        Self::new(Model::from_weights(gpu, cfg, weights), tokenizer)
    }

    /// A [`Chat`] with a KV cache of `ctx` tokens.
    pub fn chat(&self, ctx: u32) -> Result<Chat> {
        Chat::new(self, ctx)
    }
}
