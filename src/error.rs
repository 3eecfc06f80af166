//! One error type for the whole crate: every failure names the file, tensor or value involved.
//! Variants carry what callers act on (the request field at fault, the context that was too
//! small), so front ends such as the OpenAI server map them without reading the message.

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

    /// One value of the configuration is invalid: `field` names it (a `config.json` key, or the
    /// GGUF metadata key it was read from), `message` says what is wrong with it.
    #[error("config: {field} {message}")]
    ConfigField { field: String, message: String },

    #[error("download: {0}")]
    Download(String),

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("invalid input: {0}")]
    Input(String),

    /// A field of a request (an OpenAI chat request's `messages`, `tools`, …) is invalid:
    /// `param` names the top-level field, `message` says what is wrong and where.
    #[error("invalid input: {message}")]
    Request { param: String, message: String },

    /// `tokens` tokens do not fit a context of `ctx` tokens.
    #[error("invalid input: {message}")]
    ContextFull { tokens: u64, ctx: u32, message: String },

    /// A service could not start (the server's runtime or threads).
    #[error("cannot start: {0}")]
    Startup(String),

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
