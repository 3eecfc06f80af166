//! The cache folders of one repo, in `huggingface_hub`'s layout: blobs, snapshots linking to
//! them, and refs naming commits.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::{safe_relative, RepoSpec, CONFIG, INDEX, SINGLE, TOKENIZER};

/// The cache folders of one repo.
pub(super) struct RepoCache {
    cache_dir: PathBuf,
    root: PathBuf,
    repo: RepoSpec,
}

impl RepoCache {
    pub(super) fn new(cache_dir: &Path, repo: &RepoSpec) -> Self {
        let folder = hf_hub::Repo::model(repo.id.clone()).folder_name();
        RepoCache { cache_dir: cache_dir.to_path_buf(), root: cache_dir.join(folder), repo: repo.clone() }
    }

    pub(super) fn blob(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }

    pub(super) fn snapshot(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }

    pub(super) fn write_ref(&self, commit: &str) -> Result<()> {
        let cache = hf_hub::Cache::new(self.cache_dir.clone());
        let repo =
            hf_hub::Repo::with_revision(self.repo.id.clone(), hf_hub::RepoType::Model, self.repo.revision.clone());
        let ref_path = self.root.join("refs").join(&self.repo.revision);
        cache.repo(repo).create_ref(commit).map_err(|e| Error::io(ref_path, e))
    }

    /// The cached snapshot for the requested revision (or `commit`) if it holds every model
    /// file; otherwise why not.
    pub(super) fn complete_snapshot(&self, commit: Option<&str>) -> std::result::Result<PathBuf, String> {
        let commit = match commit {
            Some(c) => c.to_string(),
            None if self.repo.is_commit() => self.repo.revision.clone(),
            None => {
                let ref_path = self.root.join("refs").join(&self.repo.revision);
                match fs::read_to_string(&ref_path) {
                    Ok(c) => c.trim().to_string(),
                    Err(_) => {
                        return Err(format!(
                            "it is not in the cache ({} has no ref {})",
                            self.root.display(),
                            self.repo.revision
                        ))
                    }
                }
            }
        };
        let snap = self.snapshot(&commit);
        let missing = |file: &str| format!("the cached snapshot {} lacks {file}", snap.display());
        for file in [CONFIG, TOKENIZER] {
            if !snap.join(file).is_file() {
                return Err(missing(file));
            }
        }
        let shards = if snap.join(INDEX).is_file() {
            index_shards(&snap.join(INDEX)).map_err(|e| e.to_string())?
        } else {
            vec![SINGLE.to_string()]
        };
        for shard in &shards {
            if !snap.join(shard).is_file() {
                return Err(missing(shard));
            }
        }
        Ok(snap)
    }
}

/// Shard file names named by a safetensors index, sorted and unique.
pub(super) fn index_shards(index: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::checkpoint(index, format!("invalid JSON: {e}")))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::checkpoint(index, "no weight_map object"))?;
    let mut shards = BTreeSet::new();
    for (tensor, file) in map {
        let file = file
            .as_str()
            .filter(|f| safe_relative(f))
            .ok_or_else(|| Error::checkpoint(index, format!("bad shard name for tensor {tensor}")))?;
        shards.insert(file.to_string());
    }
    if shards.is_empty() {
        return Err(Error::checkpoint(index, "weight_map is empty"));
    }
    Ok(shards.into_iter().collect())
}


pub(super) fn is_complete(path: &Path, size: Option<u64>) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && size.is_none_or(|s| m.len() == s))
}

/// Points `snapshots/{commit}/{file}` at its blob: a relative symlink as huggingface_hub makes,
/// or a hard link or copy where symlinks are not allowed.
pub(super) fn link_snapshot(dest: &Path, blob: &Path, file: &str, etag: &str) -> Result<()> {
    let dir = dest.parent().expect("snapshot file has a parent");
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if fs::symlink_metadata(dest).is_ok() {
        fs::remove_file(dest).map_err(|e| Error::io(dest, e))?;
    }
    let depth = 2 + file.matches('/').count();
    let mut target = PathBuf::new();
    for _ in 0..depth {
        target.push("..");
    }
    target.push("blobs");
    target.push(etag);
    #[cfg(unix)]
    let linked = std::os::unix::fs::symlink(&target, dest).is_ok();
    #[cfg(windows)]
    let linked = std::os::windows::fs::symlink_file(&target, dest).is_ok();
    #[cfg(not(any(unix, windows)))]
    let linked = {
        let _ = target;
        false
    };
    if linked || fs::hard_link(blob, dest).is_ok() {
        return Ok(());
    }
    fs::copy(blob, dest).map(|_| ()).map_err(|e| Error::io(dest, e))
}
