//! One assistant turn of a conversation: the conversation is rendered in the model's chat
//! format, then each step generates tokens and returns the parsed events.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use web_time::{Duration, Instant};

use crate::chat::harmony::StreamParser;
use crate::chat::plain::PlainParser;
use crate::chat::{ChatFormat, Conversation, Event, Message, StopReason};
use crate::error::{Error, Result};
use crate::models::Session;
use crate::sampling::SamplingParams;

use super::generation::{Finish, GenerateOptions, Generation, Stats, Usage};
use super::Engine;

/// How to answer in a chat turn.
#[derive(Clone, Debug)]
pub struct ChatOptions {
    /// Largest number of tokens of the answer (reasoning included); lowered to what the
    /// session's context still holds.
    pub max_tokens: u32,
    pub sampling: SamplingParams,
}

/// One assistant turn of a conversation in the model's chat format: the conversation is rendered,
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
            return Err(Error::ContextFull {
                tokens: prompt.len() as u64,
                ctx: room as u32,
                message: format!(
                    "the conversation ({} tokens) does not fit the context of {room} tokens (start over or use a larger context)",
                    prompt.len()
                ),
            });
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

    /// Feeds up to `max_tokens` prompt tokens without generating (see
    /// [`Generation::prefill_step`]); 0 once only the prompt's last token is left.
    pub async fn prefill_step(&mut self, session: &mut Session, max_tokens: u32) -> Result<usize> {
        self.generation.prefill_step(session, max_tokens).await
    }

    /// True once the first token was produced (the whole prompt is in the cache).
    pub fn prompt_done(&self) -> bool {
        self.generation.prompt_done()
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

/// How much work one call to [`ChatTurn::step_within`] or [`Chat::step`](super::Chat::step) may
/// do: at most `max_tokens` tokens, and (when set) no new token once the next one would likely
/// end after `max_time`. With a time budget the prompt is fed one prefill chunk per call until it
/// is in the cache, so a long prompt does not stall a frame. Every call makes progress: at least
/// one token, or one chunk of the prompt.
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
