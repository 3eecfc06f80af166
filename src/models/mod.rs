//! Model architectures: configuration, weights on the GPU, KV cache and forward pass.

pub mod gpt_oss;
