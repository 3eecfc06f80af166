//! wgpt: large language models on any GPU through WebGPU (wgpu), natively and in the browser:
//! gpt-oss (Hugging Face safetensors with MXFP4 experts, or GGUF) and the dense Llama family
//! (llama, qwen2, qwen3 from GGUF files, quantized or not).
//!
//! # Layers
//!
//! Each module uses only the modules before it in this list (`tests/layers.rs` checks it):
//!
//! - [`error`]: [`Error`] and [`Result`].
//! - [`gpu`]: device, buffers, pipelines, command recording ([`gpu::Recorder`]).
//! - [`sampling`]: sampling parameters and the CPU sampler.
//! - [`ops`]: one function per WGSL kernel, and a CPU reference of each.
//! - [`loader`]: checkpoint files (safetensors headers, GGUF), the upload stream.
//! - [`tokenizer`] and, natively, [`hub`] (model downloads into the Hugging Face cache).
//! - [`models`]: one [`models::Model`] type for every architecture: weights on the GPU, and
//!   [`models::Session`]s with their KV cache and forward pass.
//! - [`chat`]: conversations, chat formats (harmony, Jinja templates), OpenAI request
//!   conversion; no GPU.
//! - [`engine`]: the embedding API (a model with its tokenizer and chat format), and [`bench`](mod@bench)
//!   (speed measurements).
//! - natively [`serve`] (the OpenAI-compatible server), in the browser `web` (wasm bindings).
//!
//! A token's way down: [`engine::Chat::step`] → [`engine::ChatTurn::step_within`] →
//! [`engine::Generation::step`] → [`models::Session::forward`] (the prompt) or
//! [`models::Session::decode_next`] (each next token, its pass queued before the previous id is
//! read back), which record one `ops::`
//! function per kernel (`ops::rmsnorm`, `ops::attention`, `ops::moe_route`, ...) into a
//! [`gpu::Recorder`]; the id that comes back is parsed into [`chat::Event`]s by
//! [`chat::harmony::StreamParser`] or [`chat::plain::PlainParser`].
//!
//! # Embedding wgpt
//!
//! An [`engine::Engine`] is a model on a GPU with its tokenizer; it is cheap to clone and every
//! session of it shares the weights. A device is either wgpt's own ([`gpu::Gpu::new`]) or the
//! application's ([`gpu::Gpu::from_device`], for a game or a creative tool that already renders
//! with wgpu). Each [`engine::Chat`] (or [`models::Session`]) has its own KV cache.
//! Generation advances in steps whose size the caller picks with an [`engine::Budget`] (a
//! number of tokens or a time slice), so a render loop keeps its frame rate while the model
//! talks. Errors are [`Error`] values; nothing panics across the API. Everything GPU-side is
//! `async` (the same code runs in a browser); native callers block with `pollster`.
//!
//! A chat in a render loop, on the application's device:
//!
//! ```no_run
//! # fn main() -> wgpt::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use wgpt::chat::Event;
//! use wgpt::engine::{Budget, Engine, LoadEvent};
//! use wgpt::gpu::{Gpu, GpuOptions};
//!
//! # let (device, queue, info): (wgpu::Device, wgpu::Queue, wgpu::AdapterInfo) = unimplemented!();
//! let gpu = Arc::new(Gpu::from_device(device, queue, info, &GpuOptions::default()));
//! let engine = Engine::open(gpu, "openai/gpt-oss-20b", &mut |ev| {
//!     if let LoadEvent::Upload { done, total } = ev {
//!         eprint!("\rloading {}%", done * 100 / total.max(1));
//!     }
//! })?;
//! let mut npc = engine.chat(4096)?;
//! npc.send("Greet the traveller in one sentence.")?;
//! loop {
//!     // ... render the frame ...
//!     for ev in pollster::block_on(npc.step(Budget::time(Duration::from_millis(4))))? {
//!         if let Event::Delta { channel, text } = ev {
//!             if channel.as_deref() == Some("final") {
//!                 print!("{text}");
//!             }
//!         }
//!     }
//!     if !npc.is_busy() {
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Token-level generation, here on the tiny test checkpoint (it runs as a test):
//!
//! ```
//! # fn main() -> wgpt::Result<()> {
//! use std::sync::Arc;
//! use wgpt::engine::{GenerateOptions, Generation};
//! use wgpt::gpu::{Gpu, GpuOptions};
//! use wgpt::models::Model;
//! use wgpt::sampling::SamplingParams;
//!
//! let gpu = Arc::new(pollster::block_on(Gpu::new(&GpuOptions::default()))?);
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
//! let model = Model::load(gpu, &dir, &mut |_, _| {})?;
//! // Two sessions share the model's weights, each with its own KV cache.
//! let (mut a, mut b) = (model.session(64, 16)?, model.session(64, 16)?);
//! let opts = GenerateOptions { max_tokens: 4, sampling: SamplingParams::greedy(), stop: vec![] };
//! let mut ga = Generation::new(&a, &[1, 2, 3], opts.clone())?;
//! let mut gb = Generation::new(&b, &[1, 2, 3], opts)?;
//! let (mut ta, mut tb) = (Vec::new(), Vec::new());
//! while let Some(id) = pollster::block_on(ga.step(&mut a))? {
//!     ta.push(id);
//!     tb.extend(pollster::block_on(gb.step(&mut b))?);
//! }
//! assert_eq!(ta.len(), 4);
//! assert_eq!(ta, tb);
//! # Ok(()) }
//! ```
//!
//! The harmony chat format needs no GPU:
//!
//! ```
//! # fn main() -> wgpt::Result<()> {
//! use wgpt::chat::{Conversation, ReasoningEffort};
//! use wgpt::tokenizer::Tokenizer;
//!
//! let request = serde_json::json!({"messages": [{"role": "user", "content": "Hi"}]});
//! let conv = Conversation::from_openai_chat(&request, ReasoningEffort::Low, None)?;
//! let tok = Tokenizer::o200k_harmony()?;
//! let prompt = conv.render_for_completion(&tok)?;
//! assert!(tok.decode(&prompt)?.ends_with("<|start|>assistant"));
//! # Ok(()) }
//! ```

pub mod bench;
pub mod chat;
pub mod engine;
pub mod error;
pub mod gpu;
pub mod ops;


pub mod loader;
pub mod models;
pub mod sampling;
pub mod tokenizer;
#[cfg(not(target_arch = "wasm32"))]
pub mod hub;
#[cfg(not(target_arch = "wasm32"))]
pub mod serve;
#[cfg(target_arch = "wasm32")]
pub mod web;
pub use error::{Error, Result};
