//! A conversation with its own KV cache on a shared model, turn after turn.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::chat::{Conversation, Event, Message, Role};
use crate::error::{Error, Result};
use crate::models::Session;
use crate::sampling::SamplingParams;

use super::generation::Usage;
use super::turn::{Budget, ChatOptions, ChatTurn};
use super::Engine;

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
        self.conversation.messages.push(Message::new(Role::User, text));
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
