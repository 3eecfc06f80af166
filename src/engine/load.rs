//! Model files into an [`Engine`]: the one loading path of the CLI, the library, the server and
//! the browser module. The tokenizer and chat format are read first (from the GGUF metadata, or
//! from a checkpoint's `tokenizer.json`), so a broken tokenizer fails before gigabytes upload;
//! then the weights go through the upload plan every format shares ([`Upload`]), fed from a
//! memory map, `fetch()` or a `File`.

use std::sync::Arc;

use crate::chat::ChatFormat;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::models::{Model, ModelHeader, Upload};
use crate::tokenizer::Tokenizer;

use super::Engine;

/// A loaded model, and the engine that pairs it with its tokenizer when the files have one (a
/// checkpoint directory without `tokenizer.json` still serves raw token ids).
pub struct Loaded {
    pub model: Arc<Model>,
    pub engine: Option<Engine>,
}

/// The tokenizer and chat format of a model's files: GGUF files carry both in their metadata;
/// a gpt-oss checkpoint has `tokenizer.json` beside it (`tokenizer_json`) and speaks harmony.
pub fn text_of(header: &ModelHeader, tokenizer_json: Option<&[u8]>) -> Result<Option<(Tokenizer, ChatFormat)>> {
    match header {
        ModelHeader::Gguf { gguf, .. } => {
            let tokenizer = Tokenizer::from_gguf_vocab(&crate::models::gguf::vocab(gguf)?)?;
            let format = ChatFormat::from_gguf(gguf, &tokenizer)?;
            Ok(Some((tokenizer, format)))
        }
        ModelHeader::Safetensors { .. } => match tokenizer_json {
            Some(bytes) => Ok(Some((Tokenizer::from_bytes(bytes)?, ChatFormat::Harmony))),
            None => Ok(None),
        },
    }
}

/// Loads a model from its header and the bytes `feed` pushes into the upload plan (each file's
/// bytes in order, see [`Upload::feed`]). The weights go to the GPU as they arrive; the files are
/// never whole in memory unless they are memory-mapped.
pub async fn load(
    gpu: Arc<Gpu>,
    header: &ModelHeader,
    tokenizer_json: Option<&[u8]>,
    feed: impl AsyncFnOnce(&mut Upload, &Gpu) -> Result<()>,
) -> Result<Loaded> {
    let text = text_of(header, tokenizer_json)?;
    let mut upload = Upload::plan(&gpu, header)?;
    feed(&mut upload, &gpu).await?;
    let model = upload.finish(gpu).await?;
    let engine = match text {
        Some((tokenizer, format)) => Some(Engine::with_format(model.clone(), tokenizer, format)?),
        None => None,
    };
    Ok(Loaded { model, engine })
}
