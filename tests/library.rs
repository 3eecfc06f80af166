//! The embedding API: sessions sharing one model, budgeted steps, chats, cancellation, and a
//! model loaded onto an application's own device.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::chat_model::{tokenizer_json, write_chat_model, ANSWER, THINK, TOOL, TOOL_ARGS};
use common::synth::{write_checkpoint, Fill, Shape};
use wgpt::chat::{Conversation, Event, Message, Role, ToolDef};
use wgpt::engine::{Budget, Chat, ChatOptions, ChatTurn, Engine, Finish, GenerateOptions, Generation, LoadEvent};
use wgpt::gpu::{Gpu, GpuOptions};
use wgpt::sampling::SamplingParams;

fn gpu() -> Arc<Gpu> {
    common::gpu(None)
}

fn random_engine(dir: &Path) -> Engine {
    write_checkpoint(dir, &Shape::tiny_real_vocab(), Fill::Random { seed: 11 }, Some(&tokenizer_json()));
    Engine::load(gpu(), dir, &mut |_, _| {}).unwrap()
}

fn chat_engine(dir: &Path) -> Engine {
    write_chat_model(dir);
    let mut uploads = 0;
    let mut last = (0, 0);
    let engine = Engine::open(gpu(), dir.to_str().unwrap(), &mut |ev| {
        if let LoadEvent::Upload { done, total } = ev {
            uploads += 1;
            last = (done, total);
        }
    })
    .unwrap();
    assert!(uploads > 1 && last.0 == last.1 && last.1 > 50_000_000, "progress reported: {uploads} {last:?}");
    engine
}

fn opts(sampling: SamplingParams, n: u32) -> GenerateOptions {
    GenerateOptions { max_tokens: n, sampling, stop: vec![] }
}

fn alone(engine: &Engine, prompt: &[u32], sampling: &SamplingParams, n: u32) -> Vec<u32> {
    let mut s = engine.session(256, 8).unwrap();
    let mut g = Generation::new(&s, prompt, opts(sampling.clone(), n)).unwrap();
    let mut out = Vec::new();
    while let Some(id) = pollster::block_on(g.step(&mut s)).unwrap() {
        out.push(id);
    }
    out
}

#[test]
fn sessions_sharing_a_model_match_a_session_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = random_engine(tmp.path());
    let tok = &engine.tokenizer;
    let p1 = tok.encode("The quick brown fox jumps over the lazy dog").unwrap();
    let p2 = tok.encode("Sphinx of black quartz, judge my vow; and then some more words").unwrap();
    let greedy = SamplingParams::greedy();
    let sampled = SamplingParams { temperature: 0.8, top_p: 0.95, seed: 3, ..Default::default() };
    let want1 = alone(&engine, &p1, &greedy, 12);
    let want2 = alone(&engine, &p2, &sampled, 12);
    assert_eq!(want1.len(), 12);
    assert_ne!(want1, alone(&engine, &p2, &greedy, 12), "different prompts give different tokens");

    // Two sessions of the same model, advanced in turns (as the server does), on two threads.
    let (mut s1, mut s2) = (engine.session(256, 8).unwrap(), engine.session(256, 8).unwrap());
    let mut g1 = Generation::new(&s1, &p1, opts(greedy.clone(), 12)).unwrap();
    let mut g2 = Generation::new(&s2, &p2, opts(sampled.clone(), 12)).unwrap();
    let (mut got1, mut got2) = (Vec::new(), Vec::new());
    while !(g1.is_done() && g2.is_done()) {
        if let Some(id) = pollster::block_on(g1.step(&mut s1)).unwrap() {
            got1.push(id);
        }
        if let Some(id) = pollster::block_on(g2.step(&mut s2)).unwrap() {
            got2.push(id);
        }
    }
    assert_eq!(got1, want1);
    assert_eq!(got2, want2);

    // Feeding the prompt a few tokens per call (a frame-budgeted prefill) changes nothing.
    let mut s = engine.session(256, 8).unwrap();
    let mut g = Generation::new(&s, &p2, opts(sampled.clone(), 12)).unwrap();
    let mut fed = 0;
    loop {
        let n = pollster::block_on(g.prefill_step(&mut s, 3)).unwrap();
        assert!(n <= 3 && !g.prompt_done());
        if n == 0 {
            break;
        }
        fed += n;
    }
    assert_eq!(fed, p2.len() - 1);
    assert_eq!(s.position() as usize, p2.len() - 1);
    let mut got = Vec::new();
    while let Some(id) = pollster::block_on(g.step(&mut s)).unwrap() {
        got.push(id);
    }
    assert_eq!(got, want2);

    let handles: Vec<_> = [(p1.clone(), greedy.clone(), want1.clone()), (p2.clone(), sampled.clone(), want2.clone())]
        .into_iter()
        .map(|(p, sp, want)| {
            let e = engine.clone();
            std::thread::spawn(move || assert_eq!(alone(&e, &p, &sp, 12), want))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

fn conversation(text: &str) -> Conversation {
    let mut conv = Conversation::default();
    conv.messages.push(Message::new(Role::User, text));
    conv
}

fn texts(events: &[Event]) -> (String, String) {
    let mut reasoning = String::new();
    let mut answer = String::new();
    for ev in events {
        if let Event::Delta { channel, text } = ev {
            match channel.as_deref() {
                Some("analysis") => reasoning.push_str(text),
                _ => answer.push_str(text),
            }
        }
    }
    (reasoning, answer)
}

#[test]
fn budgeted_steps_give_the_same_answer_as_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = chat_engine(tmp.path());
    let conv = conversation("Hello!");
    let options = ChatOptions { max_tokens: 64, sampling: SamplingParams { seed: 9, ..Default::default() } };

    let mut whole_session = engine.session(512, 32).unwrap();
    let mut whole = ChatTurn::new(&engine, &whole_session, &conv, &options).unwrap();
    let all = pollster::block_on(whole.step_within(&mut whole_session, Budget::unlimited())).unwrap();
    assert!(whole.is_done());
    assert_eq!(texts(&all), (THINK.to_string(), ANSWER.to_string()));
    assert!(matches!(all.last(), Some(Event::Done(_))));

    for budget in [Budget::tokens(1), Budget::tokens(3), Budget::time(Duration::from_micros(1))] {
        let mut session = engine.session(512, 32).unwrap();
        let mut turn = ChatTurn::new(&engine, &session, &conv, &options).unwrap();
        let mut events = Vec::new();
        let mut calls = 0;
        while !turn.is_done() {
            let before = turn.stats().generated;
            events.extend(pollster::block_on(turn.step_within(&mut session, budget)).unwrap());
            let made = turn.stats().generated - before;
            assert!(made <= budget.max_tokens as usize, "{budget:?} made {made}");
            if budget.max_time.is_some() {
                assert!(made <= 1 || turn.is_done(), "a tiny time budget allows one token per call");
            }
            calls += 1;
        }
        assert_eq!(events, all, "{budget:?}");
        let n = turn.stats().generated;
        // A time budget feeds the prompt one chunk (32 tokens) per call, then makes one token per call.
        let expected = match budget.max_time {
            Some(_) => (turn.usage().prompt_tokens - 1).div_ceil(session.chunk() as usize) + n,
            None => n.div_ceil(budget.max_tokens as usize),
        };
        assert_eq!(calls, expected, "{budget:?}: each call uses its whole budget");
        let (u, w) = (turn.usage(), whole.usage());
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.finish), (w.prompt_tokens, w.completion_tokens, w.finish));
    }

    // The blocking iterator yields the same events.
    let mut session = engine.session(512, 32).unwrap();
    let mut turn = ChatTurn::new(&engine, &session, &conv, &options).unwrap();
    let iterated: Vec<Event> = turn.events(&mut session).collect::<wgpt::Result<_>>().unwrap();
    assert_eq!(iterated, all);
}

#[test]
fn chat_keeps_the_conversation_calls_tools_and_cancels() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = chat_engine(tmp.path());
    let mut chat = Chat::new(&engine, 1024).unwrap();
    let r = pollster::block_on(chat.reply("Hi")).unwrap();
    assert_eq!((r.reasoning.as_str(), r.text.as_str()), (THINK, ANSWER));
    let first = r.usage.clone().unwrap();
    assert_eq!(first.finish, Some(Finish::Stop(engine.tokenizer.special("<|return|>").unwrap())));
    // user + analysis + final
    assert_eq!(chat.conversation().messages.len(), 3);
    let r = pollster::block_on(chat.reply("And again")).unwrap();
    assert_eq!((r.reasoning.as_str(), r.text.as_str()), (THINK, ANSWER), "{:?}", chat.conversation().messages);
    assert!(r.usage.unwrap().cached_tokens > first.prompt_tokens / 2, "the second turn reuses the cache");

    // A tool: called once, then the result leads to the answer.
    chat.reset();
    chat.conversation_mut().tools.push(ToolDef { name: TOOL.into(), description: "Weather".into(), parameters: None });
    let r = pollster::block_on(chat.reply("Weather in Paris?")).unwrap();
    assert_eq!(r.tool_calls, vec![(TOOL.to_string(), TOOL_ARGS.to_string())]);
    assert_eq!(r.text, "");
    chat.conversation_mut().messages.push(
        Message::from_tool(format!("functions.{TOOL}"), "sunny").with_recipient("assistant").with_channel("commentary"),
    );
    chat.respond().unwrap();
    let mut events = Vec::new();
    while chat.is_busy() {
        events.extend(pollster::block_on(chat.step(Budget::tokens(2))).unwrap());
    }
    assert_eq!(texts(&events).1, ANSWER);

    // Cancel from another thread's flag: the turn ends early and the chat stays usable.
    chat.send("Hello?").unwrap();
    assert!(chat.send("twice").is_err(), "one turn at a time");
    pollster::block_on(chat.step(Budget::tokens(2))).unwrap();
    chat.cancel_flag().unwrap().store(true, std::sync::atomic::Ordering::SeqCst);
    pollster::block_on(chat.step(Budget::tokens(1))).unwrap();
    assert!(!chat.is_busy());
    assert_eq!(chat.usage().unwrap().finish, Some(Finish::Cancelled));
    assert_eq!(chat.usage().unwrap().completion_tokens, 2);
    assert_eq!(pollster::block_on(chat.reply("Hi")).unwrap().text, ANSWER);
}

#[test]
fn a_callers_device_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    write_chat_model(tmp.path());
    // The application's own device, as a game engine would create it.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).unwrap();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .unwrap();
    let gpu = Arc::new(Gpu::from_device(device.clone(), queue.clone(), adapter.get_info(), &GpuOptions::default()));
    let engine = Engine::open(gpu, tmp.path().to_str().unwrap(), &mut |_| {}).unwrap();
    assert!(engine.model.gpu.device == device, "the model lives on the caller's device");
    assert!(engine.model.gpu.queue == queue);
    let mut chat = Chat::new(&engine, 512).unwrap();
    assert_eq!(pollster::block_on(chat.reply("Hi")).unwrap().text, ANSWER);
    // The application keeps using its device alongside the model.
    let buf = device.create_buffer(&wgpu::BufferDescriptor { label: None, size: 256, usage: wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
    queue.write_buffer(&buf, 0, &[1; 256]);
    queue.submit([]);
}

#[test]
fn a_streamed_checkpoint_loads_like_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let from_dir = random_engine(dir.path());
    // The same files, parsed from their first bytes and fed in small, unaligned pieces.
    let cfg = wgpt::models::gpt_oss::config::from_dir(dir.path()).unwrap();
    let mut header = wgpt::loader::Header::default();
    let files: Vec<(String, Vec<u8>)> = ["model.safetensors"]
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.path().join(n)).unwrap()))
        .collect();
    for (name, bytes) in &files {
        let n = wgpt::loader::header_len(name, bytes, bytes.len() as u64).unwrap() as usize;
        header.add_file(name, &bytes[8..8 + n], bytes.len() as u64).unwrap();
    }
    let tokenizer_json = std::fs::read(dir.path().join("tokenizer.json")).unwrap();
    let header = wgpt::models::ModelHeader::Safetensors { cfg, header };
    let streamed = pollster::block_on(Engine::from_stream(gpu(), &header, Some(&tokenizer_json), async |upload, g| {
        for (i, (_, bytes)) in files.iter().enumerate() {
            for piece in bytes.chunks(65_537) {
                upload.feed(g, i, piece)?;
            }
        }
        Ok(())
    }))
    .unwrap();
    let prompt = [200006u32, 1234, 5678, 200008];
    let greedy = SamplingParams { temperature: 0.0, ..Default::default() };
    assert_eq!(alone(&from_dir, &prompt, &greedy, 6), alone(&streamed, &prompt, &greedy, 6));
    // A stream that stops early is a clear error, not a model with missing weights.
    let cut = pollster::block_on(Engine::from_stream(gpu(), &header, Some(&tokenizer_json), async |upload, g| {
        upload.feed(g, 0, &files[0].1[..1000])
    }));
    let err = cut.err().expect("truncated stream").to_string();
    assert!(err.contains("truncated"), "{err}");
}
