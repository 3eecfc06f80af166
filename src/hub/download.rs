//! Downloading what a snapshot lacks: each file resumed from its partial blob, verified
//! (sha256 for LFS files), then linked into the snapshot.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

use super::cache::{index_shards, is_complete, link_snapshot, RepoCache};
use super::client::{header, Client, FileMeta, ModelInfo, Response, Sibling};
use super::{
    hub_error, is_sha256, safe_relative, DownloadEvent, EventKind, RepoSpec, CONFIG, GENERATION_CONFIG, INDEX, SINGLE,
    TOKENIZER,
};

/// Bytes between two progress events.
const PROGRESS_STEP: u64 = 256 * 1024;

/// Downloads what a snapshot lacks.
pub(super) struct Download<'a> {
    pub(super) client: &'a Client,
    pub(super) repo: &'a RepoSpec,
    pub(super) cache: &'a RepoCache,
    pub(super) info: &'a ModelInfo,
    pub(super) progress: &'a mut dyn FnMut(DownloadEvent),
}

impl Download<'_> {
    pub(super) fn run(mut self) -> Result<PathBuf> {
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
                _ => return Err(self.client.file_error(&resp, repo, file)),
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
