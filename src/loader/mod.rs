//! Checkpoint files: Hugging Face safetensors (this module) and GGUF ([`gguf`]); [`is_gguf`]
//! tells which kind a path names. A safetensors checkpoint (one file, or an index naming shards) is read in
//! two steps that every platform shares: the headers are parsed first into a [`Header`] (tensor
//! names, dtypes, shapes and byte ranges, validated against the file sizes), then the data
//! bytes are streamed, file by file in file order, into an upload plan built from the header
//! (see `models::load`). Natively the bytes come from a memory map
//! ([`Checkpoint`]); in the browser from `fetch()` or a `File`, chunk by chunk, so the model is
//! never whole in memory.

pub mod gguf;
#[cfg(not(target_arch = "wasm32"))]
mod safetensors;
pub mod stream;
#[cfg(not(target_arch = "wasm32"))]
pub use self::safetensors::Checkpoint;

pub use ::safetensors::Dtype;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crate::error::{Error, Result};

/// The single-file checkpoint name.
pub const SINGLE_FILE: &str = "model.safetensors";
/// The index of a sharded checkpoint.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Whether `path` names a GGUF file (by its extension).
pub fn is_gguf(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// One tensor of a checkpoint: which file holds it, where, and what it is.
#[derive(Clone, Debug)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Index into [`Header::files`].
    pub file: usize,
    /// Absolute byte range in that file.
    pub range: Range<u64>,
}

/// One safetensors file of a checkpoint.
#[derive(Clone, Debug)]
pub struct FileEntry {
    /// Its name in the model directory.
    pub name: String,
    /// Size of the whole file in bytes.
    pub size: u64,
    /// Where tensor data starts (8 + header length).
    pub data_start: u64,
}

/// The parsed headers of every file of a checkpoint.
#[derive(Clone, Debug, Default)]
pub struct Header {
    pub files: Vec<FileEntry>,
    pub tensors: BTreeMap<String, TensorEntry>,
}

/// The length of the JSON header from the first 8 bytes of a safetensors file.
pub fn header_len(file: &str, prefix: &[u8], file_size: u64) -> Result<u64> {
    let Some(first) = prefix.get(..8) else {
        return Err(Error::checkpoint(file, format!("invalid safetensors file ({file_size} bytes): shorter than its 8-byte header length")));
    };
    let n = u64::from_le_bytes(first.try_into().expect("8 bytes"));
    // The crate's own bound on header sizes.
    const MAX_HEADER: u64 = 100_000_000;
    if n > MAX_HEADER || n + 8 > file_size {
        return Err(Error::checkpoint(
            file,
            format!("invalid safetensors file ({file_size} bytes): header length {n} is past the end of the file"),
        ));
    }
    Ok(n)
}

/// Names of the shards of an index file (`model.safetensors.index.json`), with the tensors
/// each one must hold.
pub fn parse_index(text: &str) -> Result<BTreeMap<String, BTreeSet<String>>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let index: Index =
        serde_json::from_str(text).map_err(|e| Error::checkpoint(INDEX_FILE, format!("not a safetensors index: {e}")))?;
    if index.weight_map.is_empty() {
        return Err(Error::checkpoint(INDEX_FILE, "weight_map is empty"));
    }
    let mut shards: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (tensor, shard) in index.weight_map {
        if shard.contains('/') || shard.contains('\\') || shard.starts_with('.') || shard.is_empty() {
            return Err(Error::checkpoint(INDEX_FILE, format!("shard name {shard:?} is not a plain file name")));
        }
        shards.entry(shard).or_default().insert(tensor);
    }
    Ok(shards)
}

/// Reads any JSON value and keeps the first key that appears twice in one of its objects
/// (serde's maps keep the last value silently; a header must not mean two things).
struct UniqueKeys(Option<String>);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<UniqueKeys, A::Error> {
                let mut seen = std::collections::HashSet::new();
                let mut dup = None;
                while let Some(k) = map.next_key::<String>()? {
                    let inner: UniqueKeys = map.next_value()?;
                    if dup.is_none() {
                        dup = inner.0;
                    }
                    if dup.is_none() && !seen.insert(k.clone()) {
                        dup = Some(k);
                    }
                }
                Ok(UniqueKeys(dup))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<UniqueKeys, A::Error> {
                let mut dup = None;
                while let Some(inner) = seq.next_element::<UniqueKeys>()? {
                    dup = dup.or(inner.0);
                }
                Ok(UniqueKeys(dup))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<UniqueKeys, E> {
                Ok(UniqueKeys(None))
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<UniqueKeys, E> {
                Ok(UniqueKeys(None))
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<UniqueKeys, E> {
                Ok(UniqueKeys(None))
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<UniqueKeys, E> {
                Ok(UniqueKeys(None))
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<UniqueKeys, E> {
                Ok(UniqueKeys(None))
            }
            fn visit_unit<E>(self) -> std::result::Result<UniqueKeys, E> {
                Ok(UniqueKeys(None))
            }
        }
        d.deserialize_any(Visit)
    }
}

impl Header {
    /// Adds one file from its JSON header (the `len` bytes after the first 8) and its total size.
    /// Offsets are checked against the size, so a truncated file is caught before any upload.
    pub fn add_file(&mut self, name: &str, json: &[u8], file_size: u64) -> Result<usize> {
        let bad = |m: String| Error::checkpoint(name, format!("invalid safetensors file ({file_size} bytes): {m}"));
        if json.first() != Some(&b'{') {
            return Err(bad("the JSON header does not start with '{'".into()));
        }
        let keys: UniqueKeys = serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
        if let Some(key) = keys.0 {
            return Err(bad(format!("the JSON header has the key {key:?} more than once")));
        }
        let meta: ::safetensors::tensor::Metadata = serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
        let data_start = 8 + json.len() as u64;
        let data_len = meta.data_len() as u64;
        if data_start + data_len != file_size {
            return Err(bad(format!("the header describes {} bytes of tensor data, the file holds {}", data_len, file_size.saturating_sub(data_start))));
        }
        let idx = self.files.len();
        for (tname, info) in meta.tensors() {
            if self.tensors.contains_key(&tname) {
                return Err(Error::checkpoint(name, format!("tensor {tname} appears in more than one file")));
            }
            let (a, b) = info.data_offsets;
            self.tensors.insert(
                tname.clone(),
                TensorEntry {
                    name: tname,
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    file: idx,
                    range: data_start + a as u64..data_start + b as u64,
                },
            );
        }
        self.files.push(FileEntry { name: name.to_string(), size: file_size, data_start });
        Ok(idx)
    }

    /// Checks that every tensor the index assigns to a shard is really in that shard.
    pub fn check_index(&self, shards: &BTreeMap<String, BTreeSet<String>>) -> Result<()> {
        for (shard, names) in shards {
            let file = self.files.iter().position(|f| &f.name == shard);
            for name in names {
                if self.tensors.get(name).map(|t| Some(t.file)) != Some(file) {
                    return Err(Error::checkpoint(
                        shard,
                        format!("tensor {name} is listed in the index for this shard but the shard does not hold it"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The entry of `name` after checking its dtype and shape.
    pub fn expect(&self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<&TensorEntry> {
        let t = self.tensors.get(name).ok_or_else(|| Error::tensor(name, "missing from the checkpoint"))?;
        if t.dtype != dtype {
            return Err(Error::tensor(name, format!("dtype is {:?}, expected {:?}", t.dtype, dtype)));
        }
        if t.shape != shape {
            return Err(Error::tensor(name, format!("shape is {:?}, expected {:?} from config.json", t.shape, shape)));
        }
        Ok(t)
    }
}
