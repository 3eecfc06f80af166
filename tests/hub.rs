//! Model resolution against a fake hub on 127.0.0.1: download into the HF cache layout,
//! cache hits, resume, integrity, error messages, offline mode and local directories.

mod hub_server;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hub_server::{FixtureRepo, HubServer};
use tempfile::TempDir;
use wgpt::hub::{resolve_model_with, DownloadEvent, EventKind, HubOptions};

const REPO: &str = "tiny/gpt-oss-sharded";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const SHARD0: &str = "model-00000-of-00002.safetensors";
const SHARD1: &str = "model-00001-of-00002.safetensors";
const SHARD2: &str = "model-00002-of-00002.safetensors";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tokenizer_json() -> &'static [u8] {
    static TOKENIZER: OnceLock<Vec<u8>> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let gz = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/chat/o200k_harmony.tokenizer.json.gz")).unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
        out
    })
}

/// The files a resolve must fetch, with their bytes.
fn wanted() -> BTreeMap<String, Vec<u8>> {
    let dir = fixtures().join("tiny-sharded");
    let mut files = BTreeMap::new();
    for name in ["config.json", "model.safetensors.index.json", SHARD0, SHARD1, SHARD2] {
        files.insert(name.to_string(), std::fs::read(dir.join(name)).unwrap());
    }
    files.insert("generation_config.json".into(), br#"{"eos_token_id": 383}"#.to_vec());
    files.insert("tokenizer.json".into(), tokenizer_json().to_vec());
    files
}

/// The repo as the hub lists it: the wanted files plus some that must not be fetched.
fn fixture_repo() -> FixtureRepo {
    let mut files = wanted();
    files.insert(".gitattributes".into(), b"*.safetensors filter=lfs\n".to_vec());
    files.insert("README.md".into(), b"# tiny\n".to_vec());
    files.insert("original/model.safetensors".into(), vec![7u8; 1000]);
    files.insert("metal/model.bin".into(), vec![9u8; 1000]);
    FixtureRepo { id: REPO.into(), commit: COMMIT.into(), files }
}

struct Env {
    server: HubServer,
    home: TempDir,
}

impl Env {
    fn new() -> Env {
        Env { server: HubServer::start(fixture_repo()), home: TempDir::new().unwrap() }
    }

    fn options(&self) -> HubOptions {
        HubOptions {
            endpoint: self.server.endpoint(),
            cache_dir: self.home.path().join("hub"),
            token: None,
            offline: false,
        }
    }

    fn repo_dir(&self) -> PathBuf {
        self.home.path().join("hub/models--tiny--gpt-oss-sharded")
    }

    fn resolve(&self, spec: &str, opts: &HubOptions) -> (Result<PathBuf, String>, Vec<DownloadEvent>) {
        let mut events = Vec::new();
        let result = resolve_model_with(spec, opts, &mut |e| events.push(e)).map_err(|e| e.to_string());
        (result, events)
    }

    fn file_requests(&self) -> Vec<hub_server::Seen> {
        self.server.seen().into_iter().filter(|s| s.host == "cdn" || s.path.contains("/resolve/")).collect()
    }
}

fn assert_snapshot_complete(dir: &Path) {
    for (name, bytes) in wanted() {
        let got = std::fs::read(dir.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == bytes, "{name} differs from the fixture");
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn downloads_sharded_repo_into_hf_cache_layout() {
    let env = Env::new();
    let (result, events) = env.resolve(REPO, &env.options());
    let dir = result.unwrap();
    assert_eq!(dir, env.repo_dir().join("snapshots").join(COMMIT));
    assert_snapshot_complete(&dir);

    // Same layout as huggingface_hub: refs, blobs named by etag, snapshot links into blobs.
    assert_eq!(std::fs::read_to_string(env.repo_dir().join("refs/main")).unwrap().trim(), COMMIT);
    let shard = &wanted()[SHARD1];
    let blob = env.repo_dir().join("blobs").join(sha256_hex(shard));
    assert_eq!(std::fs::read(&blob).unwrap(), *shard);
    #[cfg(unix)]
    assert_eq!(std::fs::read_link(dir.join(SHARD1)).unwrap(), Path::new("../../blobs").join(sha256_hex(shard)));

    // Nothing outside the model files.
    for skipped in ["original", "metal", "README.md", ".gitattributes"] {
        assert!(!dir.join(skipped).exists(), "{skipped} was downloaded");
    }
    assert!(env.file_requests().iter().all(|s| !s.path.contains("original/") && !s.path.contains("metal/")));

    // Progress: each file starts once, grows monotonically and finishes at its size.
    for (name, bytes) in wanted() {
        let mine: Vec<&DownloadEvent> = events.iter().filter(|e| e.file == name).collect();
        assert_eq!(mine.first().map(|e| e.kind), Some(EventKind::Start), "{name}");
        let last = mine.last().unwrap();
        assert_eq!(
            (last.kind, last.done, last.total),
            (EventKind::Finish, bytes.len() as u64, bytes.len() as u64),
            "{name}"
        );
        assert!(mine.windows(2).all(|w| w[0].done <= w[1].done), "{name}: progress went backwards");
        assert!(mine.iter().all(|e| e.total == bytes.len() as u64), "{name}");
    }
    assert!(!std::fs::read_dir(env.repo_dir().join("blobs")).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".incomplete")));
}

#[test]
fn second_resolve_downloads_nothing() {
    let env = Env::new();
    let first = env.resolve(REPO, &env.options()).0.unwrap();
    env.server.clear_seen();
    let (second, events) = env.resolve(REPO, &env.options());
    assert_eq!(second.unwrap(), first);
    assert!(events.is_empty(), "{events:?}");
    assert!(env.file_requests().is_empty(), "{:?}", env.file_requests());
    // Only the file listing, to learn the current commit.
    assert_eq!(env.server.seen().len(), 1);

    // A pinned commit resolves to the same snapshot, still without file requests.
    env.server.clear_seen();
    let pinned = env.resolve(&format!("{REPO}@{COMMIT}"), &env.options()).0.unwrap();
    assert_eq!(pinned, first);
    assert!(env.file_requests().is_empty());
}

#[test]
fn new_commit_reuses_cached_blobs() {
    let env = Env::new();
    let first = env.resolve(REPO, &env.options()).0.unwrap();
    let next = "89abcdef0123456789abcdef0123456789abcdef";
    env.server.edit_repo(|r| {
        r.commit = next.into();
        r.files.insert("README.md".into(), b"# tiny, edited\n".to_vec());
        r.files.insert("config.json".into(), br#"{"edited": true}"#.to_vec());
    });
    env.server.clear_seen();
    let (result, events) = env.resolve(REPO, &env.options());
    let second = result.unwrap();
    assert_eq!(second, env.repo_dir().join("snapshots").join(next));
    assert_eq!(std::fs::read_to_string(env.repo_dir().join("refs/main")).unwrap().trim(), next);
    // Only the changed file travels; the rest link to the blobs already there.
    let fetched: BTreeSet<String> = events.iter().map(|e| e.file.clone()).collect();
    assert_eq!(fetched, BTreeSet::from(["config.json".to_string()]));
    assert_eq!(std::fs::read(second.join("config.json")).unwrap(), br#"{"edited": true}"#);
    for name in [SHARD0, SHARD1, SHARD2, "tokenizer.json"] {
        assert_eq!(std::fs::read(second.join(name)).unwrap(), std::fs::read(first.join(name)).unwrap());
    }
    assert!(env.file_requests().iter().all(|s| s.path.ends_with("config.json")), "{:?}", env.file_requests());
}

#[test]
fn interrupted_download_resumes_with_range_request() {
    let env = Env::new();
    env.server.set(|b| b.cut_after = Some((SHARD1.into(), 70_000)));
    let (result, events) = env.resolve(REPO, &env.options());
    let err = result.unwrap_err();
    assert!(err.contains(SHARD1) && err.contains("resume"), "{err}");
    let last = events.iter().rev().find(|e| e.file == SHARD1).unwrap();

    let sha = sha256_hex(&wanted()[SHARD1]);
    let part = env.repo_dir().join("blobs").join(format!("{sha}.incomplete"));
    let kept = std::fs::metadata(&part).expect("partial download kept").len();
    assert!(kept > 0 && kept < wanted()[SHARD1].len() as u64, "kept {kept}");
    assert_eq!(last.done, kept, "progress stops where the partial file ends");

    env.server.clear_seen();
    let (result, events) = env.resolve(REPO, &env.options());
    let dir = result.unwrap();
    assert_snapshot_complete(&dir);
    assert!(!part.exists());

    let ranged: Vec<_> = env.file_requests().into_iter().filter(|s| s.method == "GET" && s.range.is_some()).collect();
    assert_eq!(ranged.len(), 1, "{ranged:?}");
    assert_eq!(ranged[0].range.as_deref(), Some(format!("bytes={kept}-").as_str()));
    let start = events.iter().find(|e| e.file == SHARD1 && e.kind == EventKind::Start).unwrap();
    assert_eq!(start.done, kept);
    // Files finished in the first run are not fetched again.
    assert!(env.file_requests().iter().all(|s| !s.path.ends_with("config.json")));
}

#[test]
fn resume_survives_a_server_that_ignores_ranges() {
    let env = Env::new();
    env.server.set(|b| b.cut_after = Some((SHARD2.into(), 50_000)));
    assert!(env.resolve(REPO, &env.options()).0.is_err());
    env.server.set(|b| b.ignore_range = true);
    let dir = env.resolve(REPO, &env.options()).0.unwrap();
    assert_snapshot_complete(&dir);
}

#[test]
fn corrupt_download_is_rejected_and_removed() {
    let env = Env::new();
    env.server.set(|b| b.corrupt = Some(SHARD0.into()));
    let (result, _) = env.resolve(REPO, &env.options());
    let err = result.unwrap_err();
    assert!(err.contains(SHARD0) && err.contains("sha256") && err.contains("corrupt"), "{err}");

    let sha = sha256_hex(&wanted()[SHARD0]);
    let blobs = env.repo_dir().join("blobs");
    assert!(!blobs.join(&sha).exists(), "corrupt blob left in the cache");
    assert!(!blobs.join(format!("{sha}.incomplete")).exists(), "corrupt partial left behind");
    assert!(!env.repo_dir().join("snapshots").join(COMMIT).join(SHARD0).exists());

    env.server.set(|b| b.corrupt = None);
    let dir = env.resolve(REPO, &env.options()).0.unwrap();
    assert_snapshot_complete(&dir);
}

#[test]
fn missing_repo_is_a_clear_error() {
    let env = Env::new();
    let err = env.resolve("nobody/missing-model", &env.options()).0.unwrap_err();
    assert!(err.contains("nobody/missing-model") && err.contains("no such repo"), "{err}");
    assert!(!err.contains('\n'));
}

#[test]
fn missing_revision_is_a_clear_error() {
    let env = Env::new();
    let err = env.resolve(&format!("{REPO}@no-such-branch"), &env.options()).0.unwrap_err();
    assert!(err.contains("revision no-such-branch not found"), "{err}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let env = Env::new();
    env.server.set(|b| b.hidden = Some(SHARD2.into()));
    let err = env.resolve(REPO, &env.options()).0.unwrap_err();
    assert!(err.contains(SHARD2) && err.contains("not found"), "{err}");
}

#[test]
fn gated_repo_asks_for_hf_token_and_uses_it() {
    let env = Env::new();
    env.server.set(|b| b.gated_token = Some("hf_secret".into()));
    let err = env.resolve(REPO, &env.options()).0.unwrap_err();
    assert!(err.contains("gated") && err.contains("HF_TOKEN"), "{err}");

    let opts = HubOptions { token: Some("hf_wrong".into()), ..env.options() };
    let err = env.resolve(REPO, &opts).0.unwrap_err();
    assert!(err.contains("HF_TOKEN"), "{err}");

    env.server.clear_seen();
    let opts = HubOptions { token: Some("hf_secret".into()), ..env.options() };
    let dir = env.resolve(REPO, &opts).0.unwrap();
    assert_snapshot_complete(&dir);
    let seen = env.server.seen();
    assert!(seen.iter().filter(|s| s.host == "hub").all(|s| s.auth.as_deref() == Some("Bearer hf_secret")));
    // The token never goes to the CDN host.
    assert!(seen.iter().any(|s| s.host == "cdn"));
    assert!(seen.iter().filter(|s| s.host == "cdn").all(|s| s.auth.is_none()));
}

#[test]
fn offline_mode_uses_only_the_cache() {
    let env = Env::new();
    let offline = HubOptions { offline: true, ..env.options() };
    let err = env.resolve(REPO, &offline).0.unwrap_err();
    assert!(err.contains("offline") && err.contains("HF_HUB_OFFLINE"), "{err}");
    assert!(env.server.seen().is_empty());

    let online = env.resolve(REPO, &env.options()).0.unwrap();
    env.server.clear_seen();
    assert_eq!(env.resolve(REPO, &offline).0.unwrap(), online);
    assert_eq!(env.resolve(&format!("{REPO}@{COMMIT}"), &offline).0.unwrap(), online);
    assert!(env.server.seen().is_empty());

    // A file gone from the snapshot is named.
    std::fs::remove_file(online.join(SHARD2)).unwrap();
    let err = env.resolve(REPO, &offline).0.unwrap_err();
    assert!(err.contains(SHARD2), "{err}");
}

#[test]
fn unreachable_hub_falls_back_to_a_complete_cache() {
    let env = Env::new();
    // Nothing listens on port 1.
    let dead = "http://127.0.0.1:1".to_string();
    let opts = HubOptions { endpoint: dead, ..env.options() };
    let err = env.resolve(REPO, &opts).0.unwrap_err();
    assert!(err.contains("cannot reach"), "{err}");

    let online = env.resolve(REPO, &env.options()).0.unwrap();
    assert_eq!(env.resolve(REPO, &opts).0.unwrap(), online);
}

#[test]
fn local_directory_is_returned_unchanged() {
    let env = Env::new();
    let local = fixtures().join("tiny-sharded");
    let spec = local.to_str().unwrap();
    let (result, events) = env.resolve(spec, &env.options());
    assert_eq!(result.unwrap(), local);
    assert!(events.is_empty());
    assert!(env.server.seen().is_empty());
}

#[test]
fn neither_directory_nor_repo_id_is_a_clear_error() {
    let env = Env::new();
    for spec in ["./no/such/dir", "/no/such/dir", "a/b/c", "bad repo/x"] {
        let err = env.resolve(spec, &env.options()).0.unwrap_err();
        assert!(err.contains("no such directory and not a repo id"), "{spec}: {err}");
    }
    let file = fixtures().join("tiny-sharded/config.json");
    let err = env.resolve(file.to_str().unwrap(), &env.options()).0.unwrap_err();
    assert!(err.contains("not a model"), "{err}");
    assert!(env.server.seen().is_empty());
}

#[test]
fn options_follow_huggingface_hub_environment_rules() {
    let vars = |pairs: &[(&str, &str)]| {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        HubOptions::from_lookup(move |k| map.get(k).cloned())
    };
    let o = vars(&[("HOME", "/h")]);
    assert_eq!(o.endpoint, "https://huggingface.co");
    assert_eq!(o.cache_dir, Path::new("/h/.cache/huggingface/hub"));
    assert!(!o.offline);

    let o = vars(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]);
    assert_eq!(o.cache_dir, Path::new("/x/huggingface/hub"));

    let o = vars(&[("HF_HOME", "/hf"), ("HF_ENDPOINT", "http://mirror/"), ("HF_HUB_OFFLINE", "1"), ("HF_TOKEN", "t")]);
    assert_eq!(o.cache_dir, Path::new("/hf/hub"));
    assert_eq!(o.endpoint, "http://mirror");
    assert!(o.offline);
    assert_eq!(o.token.as_deref(), Some("t"));

    let o = vars(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/cache"), ("HF_HUB_OFFLINE", "0")]);
    assert_eq!(o.cache_dir, Path::new("/cache"));
    assert!(!o.offline);

    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), "hf_from_file\n").unwrap();
    let o = vars(&[("HF_HOME", dir.path().to_str().unwrap())]);
    assert_eq!(o.token.as_deref(), Some("hf_from_file"));
}
