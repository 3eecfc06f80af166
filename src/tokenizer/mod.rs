//! Text to token ids and back, from a Hugging Face `tokenizer.json` (plain or gzip-compressed)
//! or from the tokenizer metadata of a GGUF file (see [`GgufVocab`]).
//! Text from users and tools is always ordinary text: `<|start|>` typed by a person never becomes
//! the control token. Control tokens are placed by id (see `special`), or recognised in text
//! written by a chat template (see `encode_with_special`).

mod gguf;

use std::io::Read;
use std::sync::Arc;

pub use gguf::{default_add_bos, GgufVocab};

use crate::error::{Error, Result};

/// Cheap to clone: clones share one vocabulary.
#[derive(Clone)]
pub struct Tokenizer {
    /// Special tokens are never matched in text.
    inner: Arc<tokenizers::Tokenizer>,
    vocab_size: usize,
    info: Arc<Info>,
}

struct Info {
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    eog: Vec<u32>,
    /// Special tokens' texts, longest first, for `split_special`.
    specials: Vec<(String, u32)>,
    /// Bytes of every id, for tokenizers whose decoding is done here (GGUF).
    pieces: Option<Vec<Box<[u8]>>>,
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
        Self::from_bytes(include_bytes!("../chat/o200k_harmony.tokenizer.json.gz"))
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
        let added = inner.get_added_tokens_decoder();
        let specials: Vec<(String, u32)> =
            added.iter().filter(|(_, t)| t.special).map(|(id, t)| (t.content.clone(), *id)).collect();
        let eog = gguf::eog_ids(specials.iter().map(|(t, id)| (t.as_str(), *id)), None);
        let info = Info { bos: None, eos: None, add_bos: false, eog, specials: sort_specials(specials), pieces: None };
        Ok(Tokenizer { inner: Arc::new(inner), vocab_size, info: Arc::new(info) })
    }

    /// A tokenizer that tokenizes like llama.cpp from the `tokenizer.ggml.*` fields of a GGUF
    /// file.
    pub fn from_gguf_vocab(v: &GgufVocab) -> Result<Tokenizer> {
        let built = gguf::build(v)?;
        let info = Info {
            bos: v.bos,
            eos: v.eos,
            add_bos: v.add_bos,
            eog: built.eog,
            specials: sort_specials(built.specials),
            pieces: Some(built.pieces),
        };
        Ok(Tokenizer { inner: Arc::new(built.tokenizer), vocab_size: v.tokens.len(), info: Arc::new(info) })
    }

    /// Ids of ordinary text (no special tokens are produced, whatever the text contains).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode_fast(text, false).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Ids of text in which special tokens written out (`<|im_start|>`) become those tokens: for
    /// text written by a chat template, never for text from users.
    pub fn encode_with_special(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_segments(&self.split_special(text))
    }

    /// `text` cut at the special tokens written in it. As llama.cpp does, longer special tokens
    /// are found first, each in what earlier ones left as text.
    pub fn split_special<'a>(&self, text: &'a str) -> Vec<Segment<'a>> {
        let mut segments = vec![Segment::Text(text)];
        for (special, id) in &self.info.specials {
            if !text.contains(special.as_str()) {
                continue;
            }
            let mut next = Vec::with_capacity(segments.len() + 2);
            for seg in segments {
                let Segment::Text(mut rest) = seg else {
                    next.push(seg);
                    continue;
                };
                while let Some(at) = rest.find(special.as_str()) {
                    if at > 0 {
                        next.push(Segment::Text(&rest[..at]));
                    }
                    next.push(Segment::Special(*id));
                    rest = &rest[at + special.len()..];
                }
                if !rest.is_empty() {
                    next.push(Segment::Text(rest));
                }
            }
            segments = next;
        }
        segments
    }

    /// Ids of segments: each run of text tokenized as ordinary text (one call per run, so a
    /// SentencePiece space prefix goes at the start and after each special token, as in
    /// llama.cpp), special tokens by id.
    pub fn encode_segments(&self, segments: &[Segment<'_>]) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for seg in segments {
            match seg {
                Segment::Text(t) => ids.extend(self.encode(t)?),
                Segment::Special(id) => ids.push(*id),
            }
        }
        Ok(ids)
    }

    /// The id of a special (control) token such as `<|start|>`.
    pub fn special(&self, token: &str) -> Result<u32> {
        self.inner
            .token_to_id(token)
            .ok_or_else(|| Error::Tokenizer(format!("the tokenizer has no token {token}")))
    }

    /// The vocabulary entry of an id as stored (byte-level or `▁` form for ordinary tokens; the
    /// plain text for special ones, e.g. the `bos_token` a chat template is given).
    pub fn token_text(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Text of ids, special tokens included as their text.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let Some(pieces) = &self.info.pieces else {
            return self.inner.decode(ids, false).map_err(|e| Error::Tokenizer(e.to_string()));
        };
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let n = pieces.len();
            let piece = pieces
                .get(id as usize)
                .ok_or_else(|| Error::Tokenizer(format!("token id {id} is outside the vocabulary of {n}")))?;
            bytes.extend_from_slice(piece);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Number of ids, added (special) tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The beginning-of-sequence id, where the model has one.
    pub fn bos(&self) -> Option<u32> {
        self.info.bos
    }

    /// The end-of-sequence id, where the model has one.
    pub fn eos(&self) -> Option<u32> {
        self.info.eos
    }

    /// Whether a prompt starts with `bos` (GGUF `tokenizer.ggml.add_bos_token`).
    pub fn add_bos(&self) -> bool {
        self.info.add_bos
    }

    /// Ids that end generation: the end-of-sequence id and the special tokens named like an end
    /// of turn (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`, `<|endoftext|>`, ...), as llama.cpp
    /// decides them. Sorted.
    pub fn end_of_generation(&self) -> Vec<u32> {
        self.info.eog.clone()
    }
}

/// Part of a text cut at its special tokens (`Tokenizer::split_special`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    Special(u32),
}

fn sort_specials(mut specials: Vec<(String, u32)>) -> Vec<(String, u32)> {
    specials.retain(|(t, _)| !t.is_empty());
    specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
    specials
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
    fn special_text_is_recognised_only_when_asked() {
        let t = tok();
        let ids = t.encode_with_special("<|start|>user<|message|>Hi<|end|>").unwrap();
        let mut want = vec![200006];
        want.extend(t.encode("user").unwrap());
        want.push(200008);
        want.extend(t.encode("Hi").unwrap());
        want.push(200007);
        assert_eq!(ids, want);
        // <|end|> closes a message but does not end generation in harmony.
        assert_eq!(t.end_of_generation(), vec![199999, 200002, 200012]);
        assert_eq!((t.bos(), t.eos(), t.add_bos()), (None, None, false));
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
