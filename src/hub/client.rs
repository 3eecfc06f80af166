//! Requests to the hub: repo listings, file headers and bodies (redirects followed by hand, so
//! that the token only goes to the hub's own origin), and its errors as one clear line.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

use super::{hub_error, is_commit_hash, safe_relative, HubOptions, RepoSpec};


#[derive(Debug, Deserialize)]
pub(super) struct ModelInfo {
    pub(super) sha: String,
    #[serde(default)]
    pub(super) siblings: Vec<Sibling>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Sibling {
    pub(super) rfilename: String,
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
    pub(super) fn etag(&self) -> Option<&str> {
        self.lfs.as_ref().map(|l| l.sha256.as_str()).or(self.blob_id.as_deref())
    }

    pub(super) fn size(&self) -> Option<u64> {
        self.lfs.as_ref().and_then(|l| l.size).or(self.size)
    }
}

/// What a request failure means for the caller.
pub(super) enum Failure {
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
pub(super) struct FileMeta {
    pub(super) etag: String,
    pub(super) size: u64,
    /// Where the bytes are (the CDN location of an LFS file, or the resolve URL).
    pub(super) url: String,
}

pub(super) struct Client {
    agent: ureq::Agent,
    endpoint: String,
    token: Option<String>,
}

pub(super) type Response = ureq::http::Response<ureq::Body>;

const MAX_REDIRECTS: usize = 10;

impl Client {
    pub(super) fn new(opts: &HubOptions) -> Self {
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

    pub(super) fn model_info(&self, repo: &RepoSpec) -> std::result::Result<ModelInfo, Failure> {
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
    pub(super) fn file_meta(&self, repo: &RepoSpec, commit: &str, file: &str, listed_size: Option<u64>) -> Result<FileMeta> {
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
    pub(super) fn get_from(&self, url: &str, from: u64, repo: &RepoSpec, file: &str) -> Result<Response> {
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

    /// The error for a failed request of `file`, from the response's status and error headers.
    pub(super) fn file_error(&self, resp: &Response, repo: &RepoSpec, file: &str) -> Error {
        status_error(resp, repo, Some(file), &self.endpoint, self.token.is_some())
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

pub(super) fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
