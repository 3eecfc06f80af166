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
mod turn;

pub use chat::{Chat, Reply};
pub use generation::{generate, Finish, GenerateOptions, Generation, Stats, Usage};
#[cfg(not(target_arch = "wasm32"))]
pub use turn::Events;
pub use turn::{Budget, ChatOptions, ChatTurn};

use std::sync::Arc;

use crate::chat::{ChatFormat, Conversation};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::models::gpt_oss::checkpoint::Upload;
use crate::models::{KvCache, Model, Session};
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
        if crate::loader::is_gguf(path) {
            let (g, map) = crate::loader::gguf::Gguf::open(path)?;
            let model = crate::models::gguf::load(gpu, &g, &map, progress)?;
            let tokenizer = Tokenizer::from_gguf_vocab(&crate::models::gguf::vocab(&g)?)?;
            let format = ChatFormat::from_gguf(&g, &tokenizer)?;
            return Self::with_format(model, tokenizer, format);
        }
        let cfg_path = path.join("config.json");
        if path.is_dir() && !cfg_path.exists() {
            return Err(Error::checkpoint(&cfg_path, "missing: a model directory needs config.json, safetensors weights and tokenizer.json"));
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
    /// lists the checkpoint's files and tensors (parsed from the files' first bytes, see
    /// [`crate::loader::Header`]), and `feed` pushes each file's bytes, in file order, into the
    /// upload plan it is given, on the device it is given ([`Upload::feed`]). The weights go to
    /// the GPU as they arrive; the checkpoint is never whole in memory.
    pub fn from_stream(
        gpu: Arc<Gpu>,
        cfg: crate::models::Config,
        header: &crate::loader::Header,
        tokenizer: Tokenizer,
        feed: &mut dyn FnMut(&mut Upload, &Gpu) -> Result<()>,
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

/// What happens during [`Engine::open`].
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Debug)]
pub enum LoadEvent {
    /// A file of a hub repo is downloading.
    Download(crate::hub::DownloadEvent),
    /// Weights uploaded to the GPU so far, of the total (bytes).
    Upload { done: u64, total: u64 },
}
