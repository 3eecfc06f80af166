use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::loader::TensorSource;

/// One tensor of a checkpoint: where its bytes are and what they are.
#[derive(Clone, Debug)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    file: usize,
    range: Range<usize>,
}

/// A Hugging Face checkpoint directory: `model.safetensors`, or `model.safetensors.index.json`
/// naming the shard of every tensor. Header offsets are validated against the file sizes.
pub struct Checkpoint {
    pub dir: PathBuf,
    files: Vec<Mmap>,
    tensors: BTreeMap<String, TensorEntry>,
}

#[derive(serde::Deserialize)]
struct Index {
    weight_map: BTreeMap<String, String>,
}

impl Checkpoint {
    pub fn open(dir: &Path) -> Result<Checkpoint> {
        if !dir.is_dir() {
            return Err(Error::checkpoint(dir, "not a model directory (expected config.json and safetensors files)"));
        }
        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let mut ckpt = Checkpoint { dir: dir.to_path_buf(), files: Vec::new(), tensors: BTreeMap::new() };
        if index_path.exists() {
            let text = std::fs::read_to_string(&index_path).map_err(|e| Error::io(&index_path, e))?;
            let index: Index = serde_json::from_str(&text)
                .map_err(|e| Error::checkpoint(&index_path, format!("not a safetensors index: {e}")))?;
            if index.weight_map.is_empty() {
                return Err(Error::checkpoint(&index_path, "weight_map is empty"));
            }
            let shards: BTreeSet<&String> = index.weight_map.values().collect();
            let mut file_of = BTreeMap::new();
            for shard in shards {
                if shard.contains('/') || shard.contains('\\') || shard.starts_with('.') {
                    return Err(Error::checkpoint(&index_path, format!("shard name {shard:?} is not a plain file name")));
                }
                let path = dir.join(shard);
                if !path.exists() {
                    return Err(Error::checkpoint(&path, "shard named in model.safetensors.index.json is missing"));
                }
                file_of.insert(shard.clone(), ckpt.add_file(&path)?);
            }
            for (name, shard) in &index.weight_map {
                let entry = ckpt.tensors.get(name).filter(|e| e.file == file_of[shard]);
                if entry.is_none() {
                    return Err(Error::checkpoint(
                        dir.join(shard),
                        format!("tensor {name} is listed in the index for this shard but the shard does not hold it"),
                    ));
                }
            }
        } else if single.exists() {
            ckpt.add_file(&single)?;
        } else {
            return Err(Error::checkpoint(dir, "no model.safetensors or model.safetensors.index.json"));
        }
        Ok(ckpt)
    }

    fn add_file(&mut self, path: &Path) -> Result<usize> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; a file changed underneath us gives wrong weights, not UB in safe code
        // beyond what any reader of a concurrently-modified file sees.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let (header_len, meta) = SafeTensors::read_metadata(&map)
            .map_err(|e| Error::checkpoint(path, format!("invalid safetensors file ({} bytes): {e}", map.len())))?;
        let data_start = 8 + header_len;
        let idx = self.files.len();
        for (name, info) in meta.tensors() {
            if self.tensors.contains_key(&name) {
                return Err(Error::checkpoint(path, format!("tensor {name} appears in more than one file")));
            }
            let (a, b) = info.data_offsets;
            self.tensors.insert(
                name.clone(),
                TensorEntry { name, dtype: info.dtype, shape: info.shape.clone(), file: idx, range: data_start + a..data_start + b },
            );
        }
        self.files.push(map);
        Ok(idx)
    }

    /// The bytes of `name`, after checking its dtype and shape.
    fn expect_bytes(&self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<&[u8]> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::tensor(name, format!("missing from the checkpoint in {}", self.dir.display())))?;
        if t.dtype != dtype {
            return Err(Error::tensor(name, format!("dtype is {:?}, expected {:?}", t.dtype, dtype)));
        }
        if t.shape != shape {
            return Err(Error::tensor(name, format!("shape is {:?}, expected {:?} from config.json", t.shape, shape)));
        }
        Ok(self.bytes(t))
    }

    pub fn bytes(&self, t: &TensorEntry) -> &[u8] {
        &self.files[t.file][t.range.clone()]
    }

}

impl TensorSource for Checkpoint {
    fn expect(&self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<&[u8]> {
        self.expect_bytes(name, dtype, shape)
    }
    fn total_bytes(&self) -> u64 {
        self.tensors.values().map(|t| t.range.len() as u64).sum()
    }
}
