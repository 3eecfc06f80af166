//! Checkpoint files. `safetensors` reads a Hugging Face model directory (single file or
//! index + shards), memory-mapped so that weights go from the page cache to the GPU without
//! a copy of the checkpoint in host memory.

#[cfg(not(target_arch = "wasm32"))]
mod safetensors;
#[cfg(not(target_arch = "wasm32"))]
pub use self::safetensors::{Checkpoint, TensorEntry};

pub use ::safetensors::Dtype;
