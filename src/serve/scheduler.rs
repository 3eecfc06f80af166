//! The scheduler: one thread owns the GPU work. It holds a fixed number of slots, each a session
//! (KV cache) of the one shared model, and advances every active request by one token per round
//! (or one chunk of its prompt while the prompt goes in), so concurrent streams progress fairly.
//! Requests beyond the slots wait in a queue. A request whose client went away (its receiver
//! dropped) is cancelled and its slot freed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use tokio::sync::mpsc::UnboundedSender;

use crate::chat::{Conversation, Event, StopReason};
use crate::engine::{ChatOptions, ChatTurn, Engine, Finish, GenerateOptions, Generation};
use crate::models::Session;
use crate::sampling::SamplingParams;
use crate::tokenizer::TextStream;

use super::openai::{ApiError, Usage};
use super::stop::StopFilter;

/// What a request asks to generate.
pub enum Work {
    /// An assistant turn of a harmony conversation.
    Chat(Conversation),
    /// A plain continuation of the prompt tokens, ending at one of `stop_ids`.
    Completion { stop_ids: Vec<u32> },
}

pub struct Job {
    pub work: Work,
    /// The rendered prompt (used to pick the slot whose cache shares the longest prefix).
    pub prompt: Vec<u32>,
    pub max_tokens: u32,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    pub out: UnboundedSender<Out>,
}

/// What the scheduler sends back for a request, in order.
#[derive(Debug)]
pub enum Out {
    /// Text of the analysis channel.
    Reasoning(String),
    /// Answer text (final channel, a commentary preamble, or a completion).
    Content(String),
    ToolCall { name: String, arguments: String },
    /// The end: `stop`, `length` or `tool_calls`, with the token counts.
    Done { finish_reason: &'static str, usage: Usage },
    Error(ApiError),
}

/// Counters shown by `/health` and used to refuse work when the queue is full.
#[derive(Debug, Default)]
pub struct Load {
    pub slots: usize,
    pub busy: AtomicUsize,
    pub queued: AtomicUsize,
    pub max_queue: usize,
    pub served: AtomicUsize,
    pub cancelled: AtomicUsize,
}

/// The handle request handlers submit jobs through.
#[derive(Clone)]
pub struct Scheduler {
    tx: mpsc::Sender<Job>,
    pub load: Arc<Load>,
}

impl Scheduler {
    /// Opens `slots` sessions of `ctx` tokens and starts the scheduler thread.
    pub fn start(engine: Engine, slots: usize, ctx: u32, chunk: u32, max_queue: usize) -> crate::Result<Scheduler> {
        let sessions = (0..slots.max(1)).map(|_| engine.session(ctx, chunk)).collect::<crate::Result<Vec<_>>>()?;
        let load = Arc::new(Load { slots: sessions.len(), max_queue, ..Default::default() });
        let (tx, rx) = mpsc::channel();
        let l = load.clone();
        std::thread::Builder::new()
            .name("wgpt-scheduler".into())
            .spawn(move || run(engine, sessions, rx, l))
            .map_err(|e| crate::Error::Startup(format!("the scheduler thread: {e}")))?;
        Ok(Scheduler { tx, load })
    }

    /// Queues a job, or refuses it when every slot is busy and `max_queue` jobs already wait.
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        let queued = self.load.queued.fetch_add(1, Ordering::SeqCst);
        let busy = self.load.busy.load(Ordering::SeqCst);
        if busy + queued >= self.load.slots + self.load.max_queue {
            self.load.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::server(format!(
                "the server is busy: {busy} requests running and {queued} waiting; try again later"
            ))
            .with_status(axum::http::StatusCode::SERVICE_UNAVAILABLE)
            .with_code("server_busy"));
        }
        self.tx.send(job).map_err(|_| ApiError::server("the scheduler has stopped"))
    }
}

enum Turn {
    Chat(Box<ChatTurn>),
    Completion { generation: Generation, text: TextStream },
}

/// A request being generated in a slot.
struct Active {
    job: Job,
    turn: Turn,
    filter: StopFilter,
    /// The current message is addressed to a tool: its text arrives as a tool call.
    in_tool_call: bool,
    tool_calls: usize,
}

impl Active {
    fn send(&self, out: Out) {
        let _ = self.job.out.send(out);
    }

    fn content(&mut self, text: &str) {
        let shown = self.filter.push(text);
        if !shown.is_empty() {
            self.send(Out::Content(shown));
        }
    }

    /// One step: one chunk of the prompt (`session.chunk()` tokens) while it is going in, then
    /// one token's work with its output sent; returns true when the request is finished. A long
    /// prompt is so spread over rounds, between the other slots' tokens, instead of holding
    /// every other request until it is all in.
    fn step(&mut self, engine: &Engine, session: &mut Session) -> crate::Result<bool> {
        if !self.job.out.is_closed() {
            let chunk = session.chunk();
            let fed = match &mut self.turn {
                Turn::Chat(turn) if !turn.prompt_done() => pollster::block_on(turn.prefill_step(session, chunk))?,
                Turn::Completion { generation, .. } if !generation.prompt_done() => {
                    pollster::block_on(generation.prefill_step(session, chunk))?
                }
                _ => 0,
            };
            if fed > 0 {
                return Ok(false);
            }
        }
        match &mut self.turn {
            Turn::Chat(turn) => {
                let events = pollster::block_on(turn.step(session, 1))?;
                for ev in events {
                    self.chat_event(ev);
                }
                if self.filter.stopped() {
                    if let Turn::Chat(turn) = &mut self.turn {
                        turn.cancel();
                    }
                }
            }
            Turn::Completion { generation, text } => {
                if let Some(id) = pollster::block_on(generation.step(session))? {
                    let stop_hit = matches!(generation.finish(), Some(Finish::Stop(s)) if s == id);
                    let piece = if stop_hit { String::new() } else { text.push(&engine.tokenizer, id)? };
                    let rest = if generation.is_done() { text.finish(&engine.tokenizer)? } else { String::new() };
                    self.content(&(piece + &rest));
                }
                if self.filter.stopped() {
                    if let Turn::Completion { generation, .. } = &mut self.turn {
                        generation.cancel();
                    }
                }
            }
        }
        let done = match &self.turn {
            Turn::Chat(turn) => turn.is_done(),
            Turn::Completion { generation, .. } => generation.is_done(),
        };
        if done {
            let rest = self.filter.finish();
            if !rest.is_empty() {
                self.send(Out::Content(rest));
            }
            let (stats, finish) = match &self.turn {
                Turn::Chat(turn) => (turn.stats().clone(), turn.finish()),
                Turn::Completion { generation, .. } => (generation.stats().clone(), generation.finish()),
            };
            let finish_reason = if self.tool_calls > 0 {
                "tool_calls"
            } else if finish == Some(Finish::MaxTokens) && !self.filter.stopped() {
                "length"
            } else {
                "stop"
            };
            let usage = Usage::new(stats.prompt_tokens, stats.generated, stats.cached_tokens);
            self.send(Out::Done { finish_reason, usage });
        }
        Ok(done)
    }

    fn chat_event(&mut self, ev: Event) {
        match ev {
            Event::MessageStart(header) => self.in_tool_call = header.recipient.is_some(),
            Event::Delta { channel, text } => {
                if self.in_tool_call {
                } else if channel.as_deref() == Some("analysis") {
                    if !self.filter.stopped() {
                        self.send(Out::Reasoning(text));
                    }
                } else {
                    self.content(&text);
                }
            }
            Event::ToolCall { recipient, arguments, .. } => {
                if !self.filter.stopped() {
                    let name = recipient.strip_prefix("functions.").unwrap_or(&recipient).to_string();
                    self.tool_calls += 1;
                    self.send(Out::ToolCall { name, arguments });
                }
            }
            Event::MessageEnd(_) => self.in_tool_call = false,
            Event::Done(StopReason::Return | StopReason::Call | StopReason::EndOfStream) | Event::Error(_) => {}
        }
    }
}

fn start(engine: &Engine, session: &Session, job: Job) -> Result<Active, (Job, ApiError)> {
    let turn = match &job.work {
        Work::Chat(conv) => {
            let opts = ChatOptions { max_tokens: job.max_tokens, sampling: job.sampling.clone() };
            ChatTurn::new(engine, session, conv, &opts).map(|t| Turn::Chat(Box::new(t)))
        }
        Work::Completion { stop_ids } => {
            let opts = GenerateOptions { max_tokens: job.max_tokens, sampling: job.sampling.clone(), stop: stop_ids.clone() };
            Generation::new(session, &job.prompt, opts).map(|generation| Turn::Completion { generation, text: TextStream::default() })
        }
    };
    match turn {
        Ok(turn) => {
            let filter = StopFilter::new(job.stop.clone());
            Ok(Active { job, turn, filter, in_tool_call: false, tool_calls: 0 })
        }
        Err(e) => Err((job, ApiError::from(e))),
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn run(engine: Engine, mut sessions: Vec<Session>, rx: mpsc::Receiver<Job>, load: Arc<Load>) {
    let mut slots: Vec<Option<Active>> = sessions.iter().map(|_| None).collect();
    let mut queue: VecDeque<Job> = VecDeque::new();
    loop {
        // Wait for work when there is none; otherwise take whatever arrived.
        if queue.is_empty() && slots.iter().all(Option::is_none) {
            match rx.recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => return,
            }
        }
        while let Ok(job) = rx.try_recv() {
            queue.push_back(job);
        }
        // Waiting requests whose client left are dropped.
        let before = queue.len();
        queue.retain(|j| !j.out.is_closed());
        let gone = before - queue.len();
        if gone > 0 {
            load.queued.fetch_sub(gone, Ordering::SeqCst);
            load.cancelled.fetch_add(gone, Ordering::SeqCst);
        }
        // Free slots take queued requests, each the slot whose cache shares most of its prompt.
        while let Some(job) = queue.pop_front() {
            let Some(i) = (0..slots.len())
                .filter(|&i| slots[i].is_none())
                .max_by_key(|&i| (common_prefix(sessions[i].tokens(), &job.prompt), usize::MAX - i))
            else {
                queue.push_front(job);
                break;
            };
            load.queued.fetch_sub(1, Ordering::SeqCst);
            match start(&engine, &sessions[i], job) {
                Ok(active) => {
                    slots[i] = Some(active);
                    load.busy.fetch_add(1, Ordering::SeqCst);
                }
                Err((job, err)) => {
                    let _ = job.out.send(Out::Error(err));
                }
            }
        }
        // One step for every active request, in slot order.
        for (slot, session) in slots.iter_mut().zip(sessions.iter_mut()) {
            let Some(active) = slot else { continue };
            let finished = if active.job.out.is_closed() {
                load.cancelled.fetch_add(1, Ordering::SeqCst);
                true
            } else {
                match active.step(&engine, session) {
                    Ok(done) => {
                        if done {
                            load.served.fetch_add(1, Ordering::SeqCst);
                        }
                        done
                    }
                    Err(e) => {
                        active.send(Out::Error(ApiError::server(format!("generation failed: {e}"))));
                        // The cache may hold a partial pass: start this slot over.
                        session.reset();
                        true
                    }
                }
            };
            if finished {
                *slot = None;
                load.busy.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}
