//! Text in, text out: a loaded model with its tokenizer, token generation one step at a time
//! ([`Generation`]) and chat turns in the model's chat format ([`ChatTurn`]), shared by the CLI,
//! the server, the browser module and applications that embed wgpt.
//!
//! Generation advances in steps so that a caller decides how much work happens per call: a
//! render loop can ask for one token per frame, a server can interleave sessions, and a
//! command-line tool can run to the end with [`generate`].
//!
//! - `generation`: [`Generation`], token ids in and out, one step at a time, with its [`Stats`].
//! - `turn`: [`ChatTurn`], one answer of a conversation as events, stepped within a [`Budget`].
//! - `chat`: [`Chat`], a conversation with its own KV cache, turn after turn.

mod chat;
mod generation;
mod load;
mod turn;

pub use chat::{Chat, Reply};
pub use generation::{generate, Finish, GenerateOptions, Generation, Stats, Usage};
pub use load::{load, text_of, Loaded};
#[cfg(not(target_arch = "wasm32"))]
pub use turn::Events;
pub use turn::{Budget, ChatOptions, ChatTurn};

use std::sync::Arc;

use crate::chat::{ChatFormat, Conversation};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::models::{KvCache, Model, ModelHeader, Session, Upload};
use crate::tokenizer::Tokenizer;

/// A model on the GPU, the tokenizer that goes with it, and how its chats are written. Cloning
/// is cheap and shares all three.
#[derive(Clone)]
pub struct Engine {
    pub model: Arc<Model>,
    pub tokenizer: Tokenizer,
    pub format: ChatFormat,
    /// How the KV caches of this engine's sessions store keys and values (f32 by default).
    pub kv_cache: KvCache,
}

impl Engine {
    /// Loads a model: a directory with `config.json`, the safetensors weights and
    /// `tokenizer.json` (gpt-oss), or a `.gguf` file (weights, tokenizer and chat template).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(gpu: Arc<Gpu>, path: &std::path::Path, progress: crate::models::weights::Progress) -> Result<Engine> {
        let mapped = crate::models::MappedModel::open(path)?;
        let tokenizer_json = match &mapped.header {
            ModelHeader::Gguf { .. } => None,
            ModelHeader::Safetensors { .. } => {
                let tok_path = path.join("tokenizer.json");
                if !tok_path.exists() {
                    return Err(Error::checkpoint(&tok_path, "missing: text generation needs the model's tokenizer.json"));
                }
                let bytes = std::fs::read(&tok_path).map_err(|e| Error::io(&tok_path, e))?;
                Some(bytes)
            }
        };
        let files = mapped.files();
        let feed = async |up: &mut Upload, gpu: &Gpu| up.feed_all(gpu, &files, progress);
        let loaded = pollster::block_on(load(gpu, &mapped.header, tokenizer_json.as_deref(), feed)).map_err(|e| match e {
            e @ Error::Tokenizer(_) if tokenizer_json.is_some() => Error::checkpoint(path.join("tokenizer.json"), e.to_string()),
            other => other,
        })?;
        Ok(loaded.engine.expect("a tokenizer was given"))
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
        Ok(Engine { model, tokenizer, format, kv_cache: KvCache::F32 })
    }

    /// The prompt ids of `conv`, ready for the assistant's next message, in the model's format.
    pub fn render(&self, conv: &Conversation) -> Result<Vec<u32>> {
        self.format.render(&self.tokenizer, conv)
    }

    /// The same engine with its sessions' KV caches stored as `kv` (`KvCache::F16` halves the
    /// cache's memory and the bytes attention reads per token, at a small cost in fidelity).
    pub fn with_kv_cache(mut self, kv: KvCache) -> Engine {
        self.kv_cache = kv;
        self
    }

    /// A new conversation's KV cache of `ctx` tokens (see [`Model::session_with`]).
    pub fn session(&self, ctx: u32, chunk: u32) -> Result<Session> {
        self.model.session_with(ctx, chunk, self.kv_cache)
    }

    /// Loads a model from a directory or a Hugging Face repo id (`org/name[@revision]`,
    /// downloaded into the Hugging Face cache first), reporting progress to `progress`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(gpu: Arc<Gpu>, model: &str, progress: &mut dyn FnMut(LoadEvent)) -> Result<Engine> {
        let dir = crate::hub::resolve_model(model, &mut |e| progress(LoadEvent::Download(e)))?;
        Self::load(gpu, &dir, &mut |done, total| progress(LoadEvent::Upload { done, total }))
    }

    /// Loads from bytes the caller streams (a download, a browser `File`, an archive): `header`
    /// describes the model's files (parsed from their first bytes: [`ModelHeader`]),
    /// `tokenizer_json` is a checkpoint's `tokenizer.json` (GGUF files carry their own), and
    /// `feed` pushes each file's bytes, in file order, into the upload plan it is given
    /// ([`Upload::feed`]). The weights go to the GPU as they arrive.
    pub async fn from_stream(
        gpu: Arc<Gpu>,
        header: &ModelHeader,
        tokenizer_json: Option<&[u8]>,
        feed: impl AsyncFnOnce(&mut Upload, &Gpu) -> Result<()>,
    ) -> Result<Engine> {
        if matches!(header, ModelHeader::Safetensors { .. }) && tokenizer_json.is_none() {
            return Err(Error::Input("a chat engine needs the checkpoint's tokenizer.json".into()));
        }
        let loaded = load(gpu, header, tokenizer_json, feed).await?;
        Ok(loaded.engine.expect("a tokenizer was given"))
    }

    /// A [`Chat`] with a KV cache of `ctx` tokens.
    pub fn chat(&self, ctx: u32) -> Result<Chat> {
        Chat::new(self, ctx)
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
