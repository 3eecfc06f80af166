//! `wgpt run` (one question, streamed answer) and `wgpt chat` (interactive, multi-turn).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use wgpt::chat::{Conversation, Event, Message, ReasoningEffort, Role};
use wgpt::chat::ChatFormat;
use wgpt::engine::{ChatOptions, ChatTurn, Engine, Finish, Stats};
use wgpt::models::Session;
use wgpt::sampling::SamplingParams;

/// Options shared by `run` and `chat`.
#[derive(clap::Args, Clone)]
pub struct ChatArgs {
    /// Stream the analysis channel (the model's reasoning) too, dimmed on a terminal.
    #[arg(long)]
    pub show_reasoning: bool,
    /// Reasoning effort: low, medium or high.
    #[arg(long, default_value = "medium", value_parser = parse_effort)]
    pub reasoning: ReasoningEffort,
    /// Developer instructions (harmony's developer message).
    #[arg(long)]
    pub system: Option<String>,
    /// Largest number of tokens per answer (reasoning included).
    #[arg(long, default_value_t = 2048)]
    pub max_tokens: u32,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

#[derive(clap::Args, Clone)]
pub struct SamplingArgs {
    /// Softmax temperature (0 = greedy). Default: 1.0 for gpt-oss (OpenAI's recommendation),
    /// 0.8 for other models (llama.cpp's).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Keep the k most likely tokens (0 = off). Default: off for gpt-oss, 40 for other models.
    #[arg(long)]
    pub top_k: Option<u32>,
    /// Nucleus sampling: keep the most likely tokens up to this probability mass (1 = off).
    /// Default: off for gpt-oss, 0.95 for other models.
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Drop tokens less likely than min_p times the most likely one (0 = off). Default: off for
    /// gpt-oss, 0.05 for other models.
    #[arg(long)]
    pub min_p: Option<f32>,
    /// Repetition penalty (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Presence penalty (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub presence_penalty: f32,
    /// Frequency penalty (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub frequency_penalty: f32,
    /// Recent tokens the penalties look at.
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: u32,
    /// Random seed (the same seed and prompt give the same answer); random when omitted.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Greedy decoding (same as --temperature 0).
    #[arg(long)]
    pub greedy: bool,
}

impl SamplingArgs {
    /// The parameters with gpt-oss's defaults (temperature 1, no truncation).
    pub fn params(&self) -> Result<SamplingParams> {
        self.params_with(1.0, 0, 1.0, 0.0)
    }

    /// The parameters with the defaults of the engine's model family: OpenAI's for gpt-oss,
    /// llama.cpp's for the others (small models ramble at temperature 1 without truncation).
    pub fn params_for(&self, engine: &Engine) -> Result<SamplingParams> {
        match engine.format {
            ChatFormat::Harmony => self.params(),
            ChatFormat::Template { .. } => self.params_with(0.8, 40, 0.95, 0.05),
        }
    }

    fn params_with(&self, temperature: f32, top_k: u32, top_p: f32, min_p: f32) -> Result<SamplingParams> {
        let seed = self.seed.unwrap_or_else(|| {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::time::SystemTime::now())
        });
        let p = SamplingParams {
            temperature: if self.greedy { 0.0 } else { self.temperature.unwrap_or(temperature) },
            top_k: self.top_k.unwrap_or(top_k),
            top_p: self.top_p.unwrap_or(top_p),
            min_p: self.min_p.unwrap_or(min_p),
            repetition_penalty: self.repeat_penalty,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            penalty_last_n: self.repeat_last_n,
            seed,
        };
        p.validate()?;
        Ok(p)
    }
}

fn parse_effort(s: &str) -> Result<ReasoningEffort, String> {
    match s.to_ascii_lowercase().as_str() {
        "low" => Ok(ReasoningEffort::Low),
        "medium" => Ok(ReasoningEffort::Medium),
        "high" => Ok(ReasoningEffort::High),
        _ => Err(format!("{s:?}: expected low, medium or high")),
    }
}

/// Writes the streamed channels: the final answer to stdout, the reasoning (when asked) dimmed.
struct Printer {
    show_reasoning: bool,
    color: bool,
    in_reasoning: bool,
    wrote_final: bool,
}

impl Printer {
    fn new(show_reasoning: bool) -> Printer {
        Printer { show_reasoning, color: std::io::stdout().is_terminal(), in_reasoning: false, wrote_final: false }
    }

    fn event(&mut self, ev: &Event) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        match ev {
            Event::Delta { channel, text } => match channel.as_deref() {
                Some("analysis") => {
                    if self.show_reasoning {
                        if !self.in_reasoning && self.color {
                            write!(out, "\x1b[2m")?;
                        }
                        self.in_reasoning = true;
                        write!(out, "{text}")?;
                    }
                }
                Some("commentary") => {}
                _ => {
                    self.end_reasoning(&mut out)?;
                    self.wrote_final = true;
                    write!(out, "{text}")?;
                }
            },
            Event::ToolCall { recipient, arguments, .. } => {
                self.end_reasoning(&mut out)?;
                eprintln!("[tool call to {recipient}: {arguments}]");
            }
            Event::Error(msg) => eprintln!("[malformed model output: {msg}]"),
            _ => {}
        }
        out.flush()
    }

    fn end_reasoning(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if self.in_reasoning {
            if self.color {
                write!(out, "\x1b[0m")?;
            }
            writeln!(out, "\n")?;
            self.in_reasoning = false;
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        self.end_reasoning(&mut out)?;
        if self.wrote_final {
            writeln!(out)?;
        }
        out.flush()
    }
}

/// Generates one assistant turn and streams it; returns the messages the model wrote.
fn answer(
    engine: &Engine,
    session: &mut Session,
    conv: &Conversation,
    args: &ChatArgs,
    sampling: &SamplingParams,
    cancel: &AtomicBool,
) -> Result<(Vec<Message>, Stats, Finish)> {
    let opts = ChatOptions { max_tokens: args.max_tokens, sampling: sampling.clone() };
    let mut turn = ChatTurn::new(engine, session, conv, &opts)?;
    let mut printer = Printer::new(args.show_reasoning);
    while !turn.is_done() {
        if cancel.load(Ordering::Relaxed) {
            turn.cancel();
        }
        for ev in pollster::block_on(turn.step(session, 1))? {
            let _ = printer.event(&ev);
        }
    }
    let _ = printer.finish();
    Ok((turn.messages().to_vec(), turn.stats().clone(), turn.finish().unwrap_or(Finish::MaxTokens)))
}

fn report(stats: &Stats, finish: Finish) {
    let why = match finish {
        Finish::Stop(_) => "",
        Finish::MaxTokens => " (stopped at --max-tokens)",
        Finish::Cancelled => " (interrupted)",
    };
    eprintln!(
        "{} prompt tokens ({} cached), time to first token {:.2}s ({:.1} tok/s); {} tokens at {:.1} tok/s{why}",
        stats.prompt_tokens,
        stats.cached_tokens,
        stats.time_to_first_token.as_secs_f64(),
        stats.prefill_tok_s(),
        stats.generated,
        stats.decode_tok_s(),
    );
}

fn new_conversation(args: &ChatArgs) -> Conversation {
    let mut conv = Conversation::default();
    conv.system.reasoning = args.reasoning;
    conv.instructions = args.system.clone();
    conv
}

/// `wgpt run`: one question, the answer streamed to stdout.
pub fn run(engine: &Engine, ctx: u32, chunk: u32, prompt: &str, args: &ChatArgs) -> Result<()> {
    let sampling = args.sampling.params_for(engine)?;
    let mut session = engine.session(ctx, chunk)?;
    let mut conv = new_conversation(args);
    conv.messages.push(Message::new(Role::User, prompt));
    let cancel = Arc::new(AtomicBool::new(false));
    let c = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if c.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    let (_, stats, finish) = answer(engine, &mut session, &conv, args, &sampling, &cancel)?;
    report(&stats, finish);
    Ok(())
}

/// `wgpt chat`: a multi-turn conversation with line editing and history.
pub fn chat(engine: &Engine, ctx: u32, chunk: u32, args: &ChatArgs) -> Result<()> {
    let mut args = args.clone();
    let sampling = args.sampling.params_for(engine)?;
    let mut session = engine.session(ctx, chunk)?;
    let mut conv = new_conversation(&args);
    let cancel = Arc::new(AtomicBool::new(false));
    let c = cancel.clone();
    // Ctrl-C while answering stops the answer; at the prompt, the line editor handles it.
    let _ = ctrlc::set_handler(move || c.store(true, Ordering::SeqCst));
    let mut editor = rustyline::DefaultEditor::new()?;
    eprintln!("Chat with the model. Commands: /reset, /reasoning low|medium|high, /system TEXT, /quit. Ctrl-C stops an answer.");
    loop {
        let line = match editor.readline(">>> ") {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(text);
        if let Some(cmd) = text.strip_prefix('/') {
            let (name, rest) = cmd.split_once(' ').unwrap_or((cmd, ""));
            match name {
                "quit" | "exit" | "bye" => break,
                "reset" => {
                    conv.messages.clear();
                    session.reset();
                    eprintln!("(conversation cleared)");
                }
                "reasoning" => match parse_effort(rest.trim()) {
                    Ok(e) => {
                        args.reasoning = e;
                        conv.system.reasoning = e;
                        eprintln!("(reasoning effort: {})", e.as_str());
                    }
                    Err(e) => eprintln!("{e}"),
                },
                "system" => {
                    let s = rest.trim();
                    conv.instructions = if s.is_empty() { None } else { Some(s.to_string()) };
                    eprintln!("(instructions {})", if s.is_empty() { "cleared" } else { "set" });
                }
                _ => eprintln!("unknown command /{name}: /reset, /reasoning low|medium|high, /system TEXT, /quit"),
            }
            continue;
        }
        conv.messages.push(Message::new(Role::User, text));
        cancel.store(false, Ordering::SeqCst);
        match answer(engine, &mut session, &conv, &args, &sampling, &cancel) {
            Ok((messages, stats, finish)) => {
                report(&stats, finish);
                conv.messages.extend(messages);
            }
            Err(e) => {
                conv.messages.pop();
                eprintln!("error: {e:#}");
            }
        }
    }
    Ok(())
}
