//! One error type for the whole crate: every failure names the file, tensor or value involved.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },

    #[error("tensor {name}: {message}")]
    Tensor { name: String, message: String },

    #[error("config: {0}")]
    Config(String),

    #[error("download: {0}")]
    Download(String),

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("invalid input: {0}")]
    Input(String),

    #[error("no GPU adapter: {0}")]
    NoAdapter(String),

    #[error("GPU: {0}")]
    Gpu(String),

    #[error("GPU device lost: {0}")]
    DeviceLost(String),

    #[error("GPU out of memory: {0}")]
    OutOfMemory(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub(crate) fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Checkpoint { path: path.into(), message: message.into() }
    }
    pub(crate) fn tensor(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Tensor { name: name.into(), message: message.into() }
    }
}
