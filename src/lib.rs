//! wgpt: large language models on any GPU through WebGPU (wgpu).
//!
//! Layers: [`gpu`] (device, buffers, pipelines), [`ops`] (one function per WGSL kernel, plus
//! CPU references), [`loader`] (checkpoint files), [`models`] (gpt-oss: config, weights on the
//! GPU, KV cache, forward pass).

pub mod bench;
pub mod chat;
pub mod engine;
pub mod error;
pub mod gpu;
pub mod ops;


pub mod loader;
pub mod models;
pub mod sampling;
pub mod tokenizer;
#[cfg(not(target_arch = "wasm32"))]
pub mod hub;
#[cfg(target_arch = "wasm32")]
pub mod web;
pub use error::{Error, Result};
