//! Text to token ids and back, from a Hugging Face `tokenizer.json` (plain or gzip-compressed).
//! Text from users and tools is always ordinary text: `<|start|>` typed by a person never becomes
//! the control token. Control tokens are placed by id (see `special`).

use std::io::Read;

use crate::error::{Error, Result};

/// Cheap to clone: clones share one vocabulary.
#[derive(Clone)]
pub struct Tokenizer {
    inner: std::sync::Arc<tokenizers::Tokenizer>,
    vocab_size: usize,
}

impl Tokenizer {
    /// Reads `tokenizer.json` (or `tokenizer.json.gz`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_file(path: &std::path::Path) -> Result<Tokenizer> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes).map_err(|e| Error::checkpoint(path, e.to_string()))
    }

    /// The o200k_harmony tokenizer of gpt-oss, built into the binary (harmony rendering and
    /// `wgpt tokenize` work without a model).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn o200k_harmony() -> Result<Tokenizer> {
        Self::from_bytes(include_bytes!("chat/o200k_harmony.tokenizer.json.gz"))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Tokenizer> {
        let mut json = Vec::new();
        let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut json)
                .map_err(|e| Error::Tokenizer(format!("gzip: {e}")))?;
            &json[..]
        } else {
            bytes
        };
        let mut inner =
            tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| Error::Tokenizer(format!("not a tokenizer.json: {e}")))?;
        inner.set_encode_special_tokens(true);
        let vocab_size = inner.get_vocab_size(true);
        Ok(Tokenizer { inner: std::sync::Arc::new(inner), vocab_size })
    }

    /// Ids of ordinary text (no special tokens are produced, whatever the text contains).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode_fast(text, false).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The id of a special (control) token such as `<|start|>`.
    pub fn special(&self, token: &str) -> Result<u32> {
        self.inner
            .token_to_id(token)
            .ok_or_else(|| Error::Tokenizer(format!("the tokenizer has no token {token}")))
    }

    /// Text of ids, special tokens included as their text.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Number of ids, added (special) tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}

/// Incremental decoding for streaming output: holds back tokens that end inside a multi-byte
/// UTF-8 character until the character is complete, so no broken text is ever emitted.
#[derive(Default)]
pub struct TextStream {
    pending: Vec<u32>,
}

impl TextStream {
    /// Longest run of tokens held back waiting for a character to complete.
    const MAX_PENDING: usize = 8;

    /// Adds one token; returns the text that is now complete (possibly empty).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String> {
        self.pending.push(id);
        let text = tok.decode(&self.pending)?;
        if text.ends_with('\u{FFFD}') && self.pending.len() < Self::MAX_PENDING {
            return Ok(String::new());
        }
        self.pending.clear();
        Ok(text)
    }

    /// Whatever is still held back (at the end of a stream).
    pub fn finish(&mut self, tok: &Tokenizer) -> Result<String> {
        let text = tok.decode(&self.pending)?;
        self.pending.clear();
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> Tokenizer {
        Tokenizer::o200k_harmony().unwrap()
    }

    #[test]
    fn encodes_known_ids_and_keeps_special_text_as_text() {
        let t = tok();
        assert_eq!(t.encode("Hello world").unwrap(), vec![13225, 2375]);
        let ids = t.encode("<|start|>").unwrap();
        assert!(ids.len() > 1 && !ids.contains(&200006), "{ids:?}");
        assert_eq!(t.special("<|start|>").unwrap(), 200006);
        assert_eq!(t.special("<|return|>").unwrap(), 200002);
        assert_eq!(t.vocab_size(), 201088);
        assert!(t.special("<|nope|>").is_err());
    }

    #[test]
    fn streaming_decode_never_splits_a_character() {
        let t = tok();
        let text = "naïve café — 日本語のテキスト 🦀🎉 नमस्ते مرحبا";
        let ids = t.encode(text).unwrap();
        let mut s = TextStream::default();
        let mut out = String::new();
        for &id in &ids {
            let piece = s.push(&t, id).unwrap();
            assert!(!piece.contains('\u{FFFD}'), "broken piece {piece:?}");
            out.push_str(&piece);
        }
        out.push_str(&s.finish(&t).unwrap());
        assert_eq!(out, text);
    }
}
