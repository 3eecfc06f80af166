use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::loader::{header_len, parse_index, Header, INDEX_FILE, SINGLE_FILE};

/// A Hugging Face checkpoint directory: `model.safetensors`, or `model.safetensors.index.json`
/// naming the shard of every tensor, memory-mapped so that weights go from the page cache to
/// the GPU without a copy of the checkpoint in host memory.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub header: Header,
    files: Vec<Mmap>,
}

impl Checkpoint {
    pub fn open(dir: &Path) -> Result<Checkpoint> {
        if !dir.is_dir() {
            return Err(Error::checkpoint(dir, "not a model directory (expected config.json and safetensors files)"));
        }
        let index_path = dir.join(INDEX_FILE);
        let single = dir.join(SINGLE_FILE);
        let mut ckpt = Checkpoint { dir: dir.to_path_buf(), header: Header::default(), files: Vec::new() };
        if index_path.exists() {
            let text = std::fs::read_to_string(&index_path).map_err(|e| Error::io(&index_path, e))?;
            let shards = parse_index(&text).map_err(|e| in_dir(dir, e))?;
            for shard in shards.keys() {
                let path = dir.join(shard);
                if !path.exists() {
                    return Err(Error::checkpoint(&path, format!("shard named in {INDEX_FILE} is missing")));
                }
                ckpt.add_file(&path, shard)?;
            }
            ckpt.header.check_index(&shards).map_err(|e| in_dir(dir, e))?;
        } else if single.exists() {
            ckpt.add_file(&single, SINGLE_FILE)?;
        } else {
            return Err(Error::checkpoint(dir, format!("no {SINGLE_FILE} or {INDEX_FILE}")));
        }
        Ok(ckpt)
    }

    fn add_file(&mut self, path: &Path, name: &str) -> Result<()> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; a file changed underneath us gives wrong weights, not UB in safe code
        // beyond what any reader of a concurrently-modified file sees.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let size = map.len() as u64;
        let n = header_len(name, &map, size).map_err(|e| in_dir(self.dir.as_path(), e))?;
        self.header.add_file(name, &map[8..8 + n as usize], size).map_err(|e| in_dir(&self.dir, e))?;
        self.files.push(map);
        Ok(())
    }

    /// The header and the maps of its files, in the header's order.
    pub fn into_parts(self) -> (Header, Vec<Mmap>) {
        (self.header, self.files)
    }
}

/// Errors about a file of the checkpoint name it with its directory.
fn in_dir(dir: &Path, e: Error) -> Error {
    match e {
        Error::Checkpoint { path, message } => Error::Checkpoint { path: dir.join(path), message },
        other => other,
    }
}
