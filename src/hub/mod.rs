//! Model resolution: a `.gguf` file, a local directory, or a Hugging Face repo id downloaded
//! into the HF cache. Progress is reported as [`DownloadEvent`]s to a callback; drawing it is
//! the caller's business.
//!
//! Downloads use the cache layout of Python's `huggingface_hub`, so both share files:
//! `{cache}/models--{org}--{name}/blobs/{etag}` holds the bytes,
//! `snapshots/{commit}/{file}` links to the blob and `refs/{revision}` names the commit.
//! A partial download sits in `blobs/{etag}.incomplete` and is resumed with a `Range` request.
//! LFS files (etag = sha256) are verified before they enter the cache.
//!
//! - `cache`: the repo's folders in the cache (blobs, snapshots, refs).
//! - `client`: requests to the hub and its errors.
//! - `download`: what a snapshot lacks, fetched, resumed, verified and linked.

mod cache;
mod client;
mod download;

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

use cache::RepoCache;
use client::{Client, Failure};
use download::Download;

/// Repo used when no model is named.
pub const DEFAULT_MODEL: &str = "openai/gpt-oss-20b";
/// Hub endpoint used when `HF_ENDPOINT` is unset.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

const CONFIG: &str = "config.json";
const GENERATION_CONFIG: &str = "generation_config.json";
const TOKENIZER: &str = "tokenizer.json";
const INDEX: &str = "model.safetensors.index.json";
const SINGLE: &str = "model.safetensors";

/// What happened to one file of a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Transfer begins; `done` is non-zero when a partial download is resumed.
    Start,
    /// More bytes arrived.
    Progress,
    /// The file is complete and verified; `done == total`.
    Finish,
}

/// Progress of one file: `file` is its path inside the repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadEvent {
    pub kind: EventKind,
    pub file: String,
    pub done: u64,
    pub total: u64,
}

/// Where and how to reach the hub.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// Base URL, e.g. `https://huggingface.co`.
    pub endpoint: String,
    /// The hub cache directory (the one holding `models--*` folders).
    pub cache_dir: PathBuf,
    /// Bearer token for private or gated repos.
    pub token: Option<String>,
    /// Use the cache only; never touch the network.
    pub offline: bool,
}

impl HubOptions {
    /// Options from the environment, with the same variables and precedence as `huggingface_hub`.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Options from a variable lookup (`HF_ENDPOINT`, `HF_HUB_CACHE`, `HF_HOME`, `HF_TOKEN`,
    /// `HF_TOKEN_PATH`, `HF_HUB_OFFLINE`, ...).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let home = || {
            get("HOME")
                .or_else(|| get("USERPROFILE"))
                .map(PathBuf::from)
                .or_else(std::env::home_dir)
                .unwrap_or_else(|| PathBuf::from("."))
        };
        let hf_home = get("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            get("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| home().join(".cache")).join("huggingface")
        });
        let cache_dir = get("HF_HUB_CACHE")
            .or_else(|| get("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = get("HF_TOKEN")
            .or_else(|| get("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = get("HF_TOKEN_PATH").map(PathBuf::from).unwrap_or_else(|| hf_home.join("token"));
                fs::read_to_string(path).ok()
            })
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let offline = get("HF_HUB_OFFLINE")
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "on" | "yes" | "true"));
        let endpoint = get("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        HubOptions { endpoint: endpoint.trim().trim_end_matches('/').to_string(), cache_dir, token, offline }
    }
}

/// A local model directory, or the cache snapshot of a hub repo after downloading what is missing.
///
/// `spec` is a directory path, or `org/name` optionally followed by `@revision`.
/// Settings come from the environment (see [`HubOptions::from_env`]).
pub fn resolve_model(spec: &str, progress: &mut dyn FnMut(DownloadEvent)) -> Result<PathBuf> {
    resolve_model_with(spec, &HubOptions::from_env(), progress)
}

/// [`resolve_model`] with explicit settings.
pub fn resolve_model_with(spec: &str, opts: &HubOptions, progress: &mut dyn FnMut(DownloadEvent)) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.is_dir() || (path.is_file() && crate::loader::is_gguf(path)) {
        return Ok(path.to_path_buf());
    }
    let Some(repo) = RepoSpec::parse(spec) else {
        if path.exists() {
            return Err(Error::Input(format!(
                "{spec}: not a model (a model is a .gguf file, or a directory with config.json, tokenizer.json and safetensors weights)"
            )));
        }
        return Err(Error::Input(format!(
            "{spec}: no such directory and not a repo id (expected a model directory or a Hugging Face repo id such as {DEFAULT_MODEL}, optionally with @revision)"
        )));
    };
    let cache = RepoCache::new(&opts.cache_dir, &repo);
    if opts.offline {
        return cache
            .complete_snapshot(None)
            .map_err(|why| hub_error(format!("{repo}: offline mode (HF_HUB_OFFLINE=1), and {why}")));
    }
    let client = Client::new(opts);
    let info = match client.model_info(&repo) {
        Ok(info) => info,
        Err(Failure::Unreachable(msg)) => {
            // Without the hub, a complete cached snapshot still serves.
            return cache
                .complete_snapshot(None)
                .map_err(|why| hub_error(format!("{repo}: cannot reach {} ({msg}), and {why}", opts.endpoint)));
        }
        Err(Failure::Error(e)) => return Err(e),
    };
    Download { client: &client, repo: &repo, cache: &cache, info: &info, progress }.run()
}

// One place to change once the error type has a variant for downloads.
fn hub_error(message: String) -> Error {
    Error::Download(message)
}

/// `org/name[@revision]`.
#[derive(Debug, Clone)]
struct RepoSpec {
    id: String,
    revision: String,
}

impl RepoSpec {
    fn parse(spec: &str) -> Option<RepoSpec> {
        let (id, revision) = match spec.split_once('@') {
            Some((id, rev)) => (id, rev),
            None => (spec, "main"),
        };
        (valid_repo_id(id) && valid_revision(revision))
            .then(|| RepoSpec { id: id.to_string(), revision: revision.to_string() })
    }

    fn is_commit(&self) -> bool {
        is_commit_hash(&self.revision)
    }
}

impl std::fmt::Display for RepoSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.revision == "main" {
            write!(f, "{}", self.id)
        } else {
            write!(f, "{}@{}", self.id, self.revision)
        }
    }
}

// Same rules as huggingface_hub's validate_repo_id.
fn valid_repo_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    id.len() <= 96
        && parts.len() <= 2
        && !id.contains("--")
        && !id.contains("..")
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars().all(|c| word(c) || c == '-' || c == '.')
                && p.starts_with(word)
                && p.ends_with(word)
        })
}

fn valid_revision(rev: &str) -> bool {
    !rev.is_empty()
        && !rev.contains("..")
        && !rev.starts_with('/')
        && !rev.ends_with('/')
        && rev.chars().all(|c| c.is_ascii_graphic() && c != '\\')
}

fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A repo file name that stays inside the snapshot directory.
fn safe_relative(name: &str) -> bool {
    !name.is_empty() && !name.contains('\\') && Path::new(name).components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids() {
        for ok in ["openai/gpt-oss-20b", "gpt2", "a_b/c.d-e", "org/x@main", "org/x@refs/pr/1"] {
            assert!(RepoSpec::parse(ok).is_some(), "{ok}");
        }
        for bad in ["", "/abs/path", "./rel", "a/b/c", "a--b/c", "a/..", "-a/b", "a/b.", "a b/c", "org/x@", "~/m"] {
            assert!(RepoSpec::parse(bad).is_none(), "{bad}");
        }
        let r = RepoSpec::parse("org/x@v1.0").unwrap();
        assert_eq!((r.id.as_str(), r.revision.as_str()), ("org/x", "v1.0"));
    }

}
