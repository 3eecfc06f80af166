//! Checkpoint files. `safetensors` reads a Hugging Face model directory (single file or
//! index + shards), memory-mapped so that weights go from the page cache to the GPU without
//! a copy of the checkpoint in host memory.

#[cfg(not(target_arch = "wasm32"))]
mod safetensors;
#[cfg(not(target_arch = "wasm32"))]
pub use self::safetensors::{Checkpoint, TensorEntry};

pub use ::safetensors::Dtype;

use crate::error::Result;

/// Where a model's tensors come from: a memory-mapped directory natively, streamed chunks
/// in the browser. Every access checks the dtype and shape the model expects.
pub trait TensorSource {
    /// The bytes of `name` after checking its dtype and shape.
    fn expect(&self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<&[u8]>;
    /// Total bytes of tensor data, for progress reports.
    fn total_bytes(&self) -> u64;
}
