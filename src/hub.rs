//! Model resolution: a `.gguf` file, a local directory, or a Hugging Face repo id downloaded
//! into the HF cache. Progress is reported as [`DownloadEvent`]s to a callback; drawing it is
//! the caller's business.
//!
//! Downloads use the cache layout of Python's `huggingface_hub`, so both share files:
//! `{cache}/models--{org}--{name}/blobs/{etag}` holds the bytes,
//! `snapshots/{commit}/{file}` links to the blob and `refs/{revision}` names the commit.
//! A partial download sits in `blobs/{etag}.incomplete` and is resumed with a `Range` request.
//! LFS files (etag = sha256) are verified before they enter the cache.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

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

/// The cache folders of one repo.
struct RepoCache {
    cache_dir: PathBuf,
    root: PathBuf,
    repo: RepoSpec,
}

impl RepoCache {
    fn new(cache_dir: &Path, repo: &RepoSpec) -> Self {
        let folder = hf_hub::Repo::model(repo.id.clone()).folder_name();
        RepoCache { cache_dir: cache_dir.to_path_buf(), root: cache_dir.join(folder), repo: repo.clone() }
    }

    fn blob(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }

    fn snapshot(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }

    fn write_ref(&self, commit: &str) -> Result<()> {
        let cache = hf_hub::Cache::new(self.cache_dir.clone());
        let repo =
            hf_hub::Repo::with_revision(self.repo.id.clone(), hf_hub::RepoType::Model, self.repo.revision.clone());
        let ref_path = self.root.join("refs").join(&self.repo.revision);
        cache.repo(repo).create_ref(commit).map_err(|e| Error::io(ref_path, e))
    }

    /// The cached snapshot for the requested revision (or `commit`) if it holds every model
    /// file; otherwise why not.
    fn complete_snapshot(&self, commit: Option<&str>) -> std::result::Result<PathBuf, String> {
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
fn index_shards(index: &Path) -> Result<Vec<String>> {
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

#[derive(Debug, Deserialize)]
struct ModelInfo {
    sha: String,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Debug, Deserialize)]
struct Sibling {
    rfilename: String,
    #[serde(default, rename = "blobId")]
    blob_id: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    lfs: Option<Lfs>,
}

#[derive(Debug, Deserialize)]
struct Lfs {
    sha256: String,
    #[serde(default)]
    size: Option<u64>,
}

impl Sibling {
    /// The blob name the hub's etag will have: sha256 for LFS files, the git blob id otherwise.
    fn etag(&self) -> Option<&str> {
        self.lfs.as_ref().map(|l| l.sha256.as_str()).or(self.blob_id.as_deref())
    }

    fn size(&self) -> Option<u64> {
        self.lfs.as_ref().and_then(|l| l.size).or(self.size)
    }
}

/// What a request failure means for the caller.
enum Failure {
    /// No answer from the hub at all (DNS, connection, TLS, timeout).
    Unreachable(String),
    Error(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

/// Headers of a file on the hub.
struct FileMeta {
    etag: String,
    size: u64,
    /// Where the bytes are (the CDN location of an LFS file, or the resolve URL).
    url: String,
}

struct Client {
    agent: ureq::Agent,
    endpoint: String,
    token: Option<String>,
}

type Response = ureq::http::Response<ureq::Body>;

const MAX_REDIRECTS: usize = 10;
/// Bytes between two progress events.
const PROGRESS_STEP: u64 = 256 * 1024;

impl Client {
    fn new(opts: &HubOptions) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(format!("wgpt/{}", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)));
        // A proxy cannot reach this machine's loopback, where a local mirror would run.
        let host = origin(&opts.endpoint).rsplit("://").next().unwrap_or("");
        let loopback = ["127.", "localhost", "[::1]"].iter().any(|p| host.starts_with(p));
        let config = if loopback { config.proxy(None) } else { config };
        #[cfg(any(windows, target_os = "macos", target_os = "ios"))]
        let config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::NativeTls)
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        );
        Client {
            agent: config.build().new_agent(),
            endpoint: opts.endpoint.trim_end_matches('/').to_string(),
            token: opts.token.clone(),
        }
    }

    /// Sends one request; the token goes only to the hub itself, never to a CDN.
    fn send(&self, method: &str, url: &str, range_from: u64) -> std::result::Result<Response, Failure> {
        let mut req = match method {
            "HEAD" => self.agent.head(url),
            _ => self.agent.get(url),
        };
        if method == "HEAD" {
            req = req.header("Accept-Encoding", "identity");
        }
        if range_from > 0 {
            req = req.header("Range", format!("bytes={range_from}-"));
        }
        if let Some(token) = &self.token {
            if same_origin(url, &self.endpoint) {
                req = req.header("Authorization", format!("Bearer {token}"));
            }
        }
        req.call().map_err(|e| self.transport_failure(e))
    }

    fn transport_failure(&self, e: ureq::Error) -> Failure {
        match e {
            ureq::Error::Io(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Timeout(_)
            | ureq::Error::Tls(_) => Failure::Unreachable(e.to_string()),
            other => Failure::Error(hub_error(format!("request to {} failed: {other}", self.endpoint))),
        }
    }

    fn model_info(&self, repo: &RepoSpec) -> std::result::Result<ModelInfo, Failure> {
        let url =
            format!("{}/api/models/{}/revision/{}?blobs=true", self.endpoint, repo.id, encode(&repo.revision, false));
        let mut resp = self.send("GET", &url, 0)?;
        if !resp.status().is_success() {
            return Err(status_error(&resp, repo, None, &self.endpoint, self.token.is_some()).into());
        }
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| Failure::Unreachable(format!("reading the file listing: {e}")))?;
        let info: ModelInfo = serde_json::from_str(&text)
            .map_err(|e| hub_error(format!("{repo}: unexpected answer from {}/api/models: {e}", self.endpoint)))?;
        if !is_commit_hash(&info.sha) {
            return Err(hub_error(format!("{repo}: the hub gave an invalid commit id {:?}", info.sha)).into());
        }
        Ok(info)
    }

    /// Etag, size and byte location of one file, following the hub's own (relative) redirects.
    fn file_meta(&self, repo: &RepoSpec, commit: &str, file: &str, listed_size: Option<u64>) -> Result<FileMeta> {
        let mut url = format!("{}/{}/resolve/{}/{}", self.endpoint, repo.id, commit, encode(file, true));
        for _ in 0..MAX_REDIRECTS {
            let resp = self.send("HEAD", &url, 0).map_err(|f| self.describe(f, repo, file))?;
            let status = resp.status();
            let location = if status.is_redirection() {
                let location = header(&resp, "location")
                    .ok_or_else(|| hub_error(format!("{repo}: redirect without location for {file}")))?;
                Some(join_url(&url, location))
            } else if status.is_success() {
                None
            } else {
                return Err(status_error(&resp, repo, Some(file), &self.endpoint, self.token.is_some()));
            };
            // Relative redirects stay on the hub (renamed repos); an absolute one leads to the bytes.
            if let Some(next) = &location {
                if header(&resp, "location").is_some_and(|l| !l.contains("://")) {
                    url = next.clone();
                    continue;
                }
            }
            let etag = header(&resp, "x-linked-etag")
                .or_else(|| header(&resp, "etag"))
                .map(clean_etag)
                .filter(|e| !e.is_empty() && safe_relative(e) && !e.contains('/'))
                .ok_or_else(|| hub_error(format!("{repo}: the hub sent no usable ETag for {file}")))?;
            let size = header(&resp, "x-linked-size")
                .or(if location.is_none() { header(&resp, "content-length") } else { None })
                .and_then(|s| s.trim().parse::<u64>().ok())
                .or(listed_size)
                .ok_or_else(|| hub_error(format!("{repo}: the hub sent no size for {file}")))?;
            return Ok(FileMeta { etag, size, url: location.unwrap_or(url) });
        }
        Err(hub_error(format!("{repo}: too many redirects for {file}")))
    }

    /// GET from `from` onwards, following redirects (CDN links).
    fn get_from(&self, url: &str, from: u64, repo: &RepoSpec, file: &str) -> Result<Response> {
        let mut url = url.to_string();
        for _ in 0..MAX_REDIRECTS {
            let resp = self.send("GET", &url, from).map_err(|f| self.describe(f, repo, file))?;
            if resp.status().is_redirection() {
                let location = header(&resp, "location")
                    .ok_or_else(|| hub_error(format!("{repo}: redirect without location for {file}")))?;
                url = join_url(&url, location);
                continue;
            }
            return Ok(resp);
        }
        Err(hub_error(format!("{repo}: too many redirects for {file}")))
    }

    fn describe(&self, failure: Failure, repo: &RepoSpec, file: &str) -> Error {
        match failure {
            Failure::Unreachable(msg) => {
                hub_error(format!("{repo}: downloading {file}: cannot reach the hub: {msg}; run again to resume"))
            }
            Failure::Error(e) => e,
        }
    }
}

/// One line for an HTTP error, from the hub's X-Error-Code when present.
fn status_error(resp: &Response, repo: &RepoSpec, file: Option<&str>, endpoint: &str, has_token: bool) -> Error {
    let status = resp.status().as_u16();
    let code = header(resp, "x-error-code").unwrap_or("");
    let known = matches!(code, "GatedRepo" | "RepoNotFound" | "RevisionNotFound" | "EntryNotFound");
    let hub_says =
        header(resp, "x-error-message").filter(|_| !known).map(|m| format!(" (hub: {})", m.trim())).unwrap_or_default();
    let id = &repo.id;
    let token_hint = if has_token {
        "check that HF_TOKEN belongs to an account with access"
    } else {
        "set HF_TOKEN to a token of an account with access"
    };
    let message = match (code, status) {
        ("GatedRepo", _) => format!("{id} is gated: accept its terms at {endpoint}/{id} and {token_hint}"),
        ("RepoNotFound", _) | ("", 404) if file.is_none() || code == "RepoNotFound" => {
            format!("{id}: no such local directory, and no such repo on {endpoint} (if it is private, {token_hint})")
        }
        ("RevisionNotFound", _) => format!("{id}: revision {} not found", repo.revision),
        ("EntryNotFound", _) | (_, 404) => {
            format!("{id}: file {} not found at revision {}", file.unwrap_or("?"), repo.revision)
        }
        (_, 401) if has_token => format!("{id}: the hub rejected HF_TOKEN (401); check the token"),
        (_, 401) => format!("{id}: authentication required: set HF_TOKEN (private or gated repo)"),
        (_, 403) => format!("{id}: access denied (403): {token_hint}"),
        (_, 429) => format!("{id}: rate limited by the hub (429); wait and try again"),
        _ => format!("{id}: the hub answered {status}{}", file.map(|f| format!(" for {f}")).unwrap_or_default()),
    };
    hub_error(format!("{message}{hub_says}"))
}

fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn clean_etag(raw: &str) -> String {
    raw.trim().trim_start_matches("W/").trim_matches('"').to_string()
}

/// Percent-encodes a path piece; `keep_slash` leaves `/` separators alone.
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after_scheme..].find('/').map(|i| after_scheme + i).unwrap_or(url.len());
    &url[..end]
}

fn same_origin(a: &str, b: &str) -> bool {
    origin(a).eq_ignore_ascii_case(origin(b))
}

/// Resolves a Location header against the URL it came from.
fn join_url(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("https");
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{}{location}", origin(base))
    } else {
        let dir = base.rsplit_once('/').map(|(d, _)| d).unwrap_or(base);
        format!("{dir}/{location}")
    }
}

/// Downloads what a snapshot lacks.
struct Download<'a> {
    client: &'a Client,
    repo: &'a RepoSpec,
    cache: &'a RepoCache,
    info: &'a ModelInfo,
    progress: &'a mut dyn FnMut(DownloadEvent),
}

impl Download<'_> {
    fn run(mut self) -> Result<PathBuf> {
        let repo = self.repo;
        let listed = |name: &str| self.info.siblings.iter().any(|s| s.rfilename == name);
        for file in [CONFIG, TOKENIZER] {
            if !listed(file) {
                return Err(hub_error(format!("{repo}: the repo has no {file} (not a transformers model repo?)")));
            }
        }
        let mut files = vec![CONFIG.to_string()];
        if listed(GENERATION_CONFIG) {
            files.push(GENERATION_CONFIG.to_string());
        }
        files.push(TOKENIZER.to_string());
        let has_index = listed(INDEX);
        if has_index {
            files.push(INDEX.to_string());
        } else if !listed(SINGLE) {
            return Err(hub_error(format!("{repo}: the repo has neither {INDEX} nor {SINGLE}")));
        }

        let commit = self.info.sha.clone();
        if !repo.is_commit() {
            self.cache.write_ref(&commit)?;
        }
        let snapshot = self.cache.snapshot(&commit);
        for file in &files {
            self.fetch(&commit, file)?;
        }
        let shards = if has_index { index_shards(&snapshot.join(INDEX))? } else { vec![SINGLE.to_string()] };
        for shard in &shards {
            if !listed(shard) {
                return Err(hub_error(format!("{repo}: {INDEX} names {shard}, which the repo does not have")));
            }
        }
        for shard in &shards {
            self.fetch(&commit, shard)?;
        }
        Ok(snapshot)
    }

    /// Makes `snapshots/{commit}/{file}` present, downloading only when no blob has the bytes.
    fn fetch(&mut self, commit: &str, file: &str) -> Result<()> {
        if !safe_relative(file) {
            return Err(hub_error(format!("{}: refusing file name {file:?}", self.repo)));
        }
        let sibling = self.info.siblings.iter().find(|s| s.rfilename == file);
        let listed_size = sibling.and_then(Sibling::size);
        let dest = self.cache.snapshot(commit).join(file);
        if is_complete(&dest, listed_size) {
            return Ok(());
        }
        if let Some(etag) = sibling.and_then(Sibling::etag).filter(|e| !e.contains('/') && safe_relative(e)) {
            let blob = self.cache.blob(etag);
            if is_complete(&blob, listed_size) {
                return link_snapshot(&dest, &blob, file, etag);
            }
        }
        let meta = self.client.file_meta(self.repo, commit, file, listed_size)?;
        let blob = self.cache.blob(&meta.etag);
        if !is_complete(&blob, Some(meta.size)) {
            self.download_blob(&meta, &blob, file)?;
        }
        link_snapshot(&dest, &blob, file, &meta.etag)
    }

    /// Streams a blob into `{blob}.incomplete` (resuming it), verifies it, then renames it.
    fn download_blob(&mut self, meta: &FileMeta, blob: &Path, file: &str) -> Result<()> {
        let blobs = blob.parent().expect("blob path has a parent");
        fs::create_dir_all(blobs).map_err(|e| Error::io(blobs, e))?;
        let part = PathBuf::from(format!("{}.incomplete", blob.display()));
        let io = |e: std::io::Error| Error::io(&part, e);
        let mut out =
            fs::OpenOptions::new().create(true).read(true).write(true).truncate(false).open(&part).map_err(io)?;
        let mut start = out.metadata().map_err(io)?.len();
        if start > meta.size {
            start = 0;
        }
        // LFS blobs are named by their sha256: hash the bytes already there, then those that come.
        let mut hasher = is_sha256(&meta.etag).then(Sha256::new);
        if let (true, Some(h)) = (start > 0, hasher.as_mut()) {
            hash_prefix(&mut out, start, h).map_err(io)?;
        }
        let (resp, from) = self.request_from(meta, start, file)?;
        if from != start {
            hasher = hasher.map(|_| Sha256::new());
        }
        out.set_len(from).map_err(io)?;
        out.seek(SeekFrom::Start(from)).map_err(io)?;
        let done = self.receive(resp, out, &part, hasher.as_mut(), from, meta.size, file)?;
        let (repo, total) = (self.repo, meta.size);
        if done < total {
            return Err(hub_error(format!(
                "{repo}: download of {file} stopped at {done} of {total} bytes; run again to resume"
            )));
        }
        if let Some(hasher) = hasher {
            let got = hex(&hasher.finalize());
            if !got.eq_ignore_ascii_case(&meta.etag) {
                let _ = fs::remove_file(&part);
                return Err(hub_error(format!(
                    "{repo}: {file} is corrupt: sha256 {got}, expected {}; the bad download was deleted, run again",
                    meta.etag
                )));
            }
        }
        fs::rename(&part, blob).map_err(|e| Error::io(blob, e))?;
        (self.progress)(DownloadEvent { kind: EventKind::Finish, file: file.to_string(), done: total, total });
        Ok(())
    }

    /// The response that carries the blob from byte `start` on (a resumed range), or from 0 when
    /// the server will not resume; `None` when nothing is left to fetch. Returns where its body
    /// starts.
    fn request_from(&self, meta: &FileMeta, start: u64, file: &str) -> Result<(Option<Response>, u64)> {
        let repo = self.repo;
        let mut from = start;
        loop {
            if from == meta.size && meta.size > 0 {
                return Ok((None, from));
            }
            let resp = self.client.get_from(&meta.url, from, repo, file)?;
            match resp.status().as_u16() {
                206 if from > 0 => {
                    let range_ok =
                        header(&resp, "content-range").is_some_and(|r| r.trim().starts_with(&format!("bytes {from}-")));
                    if !range_ok {
                        return Err(hub_error(format!(
                            "{repo}: {file}: the server answered a resume request with a wrong range"
                        )));
                    }
                    return Ok((Some(resp), from));
                }
                // Full body: start over.
                200 | 206 => return Ok((Some(resp), 0)),
                416 if from > 0 => from = 0,
                _ => {
                    let (endpoint, has_token) = (&self.client.endpoint, self.client.token.is_some());
                    return Err(status_error(&resp, repo, Some(file), endpoint, has_token));
                }
            }
        }
    }

    /// Appends the body to `out` (the partial blob at `part`), hashing and reporting progress as
    /// bytes arrive; returns how many bytes the blob has. A body cut off by the network is an
    /// error to resume from; one longer than announced deletes the partial blob.
    #[allow(clippy::too_many_arguments)]
    fn receive(
        &mut self,
        resp: Option<Response>,
        mut out: fs::File,
        part: &Path,
        mut hasher: Option<&mut Sha256>,
        from: u64,
        total: u64,
        file: &str,
    ) -> Result<u64> {
        let repo = self.repo;
        let io = |e: std::io::Error| Error::io(part, e);
        let mut done = from;
        let mut reported = done;
        (self.progress)(DownloadEvent { kind: EventKind::Start, file: file.to_string(), done, total });
        let mut broken = None;
        if let Some(mut resp) = resp {
            let mut reader = resp.body_mut().as_reader();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                };
                if done + n as u64 > total {
                    drop(out);
                    let _ = fs::remove_file(part);
                    return Err(hub_error(format!(
                        "{repo}: {file}: the server sent more than the announced {total} bytes"
                    )));
                }
                out.write_all(&buf[..n]).map_err(io)?;
                if let Some(h) = hasher.as_mut() {
                    h.update(&buf[..n]);
                }
                done += n as u64;
                if done - reported >= PROGRESS_STEP || done == total {
                    reported = done;
                    (self.progress)(DownloadEvent { kind: EventKind::Progress, file: file.to_string(), done, total });
                }
            }
        }
        out.flush().map_err(io)?;
        drop(out);
        if done != reported {
            (self.progress)(DownloadEvent { kind: EventKind::Progress, file: file.to_string(), done, total });
        }
        if let Some(e) = broken {
            return Err(hub_error(format!(
                "{repo}: download of {file} interrupted at {done} of {total} bytes ({e}); run again to resume"
            )));
        }
        Ok(done)
    }
}

fn hash_prefix(file: &mut fs::File, len: u64, hasher: &mut Sha256) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = file.take(len);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_complete(path: &Path, size: Option<u64>) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && size.is_none_or(|s| m.len() == s))
}

/// Points `snapshots/{commit}/{file}` at its blob: a relative symlink as huggingface_hub makes,
/// or a hard link or copy where symlinks are not allowed.
fn link_snapshot(dest: &Path, blob: &Path, file: &str, etag: &str) -> Result<()> {
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

    #[test]
    fn urls() {
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(encode("sub dir/a.json", true), "sub%20dir/a.json");
        assert_eq!(join_url("https://h.co/a/b", "/c/d"), "https://h.co/c/d");
        assert_eq!(join_url("https://h.co/a/b", "https://cdn.x/y"), "https://cdn.x/y");
        assert!(same_origin("http://127.0.0.1:5/x", "http://127.0.0.1:5"));
        assert!(!same_origin("https://cdn.h.co/x", "https://h.co"));
        assert_eq!(clean_etag("W/\"abc\""), "abc");
    }
}
