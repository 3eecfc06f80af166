//! gpt-oss specifics: its `config.json`, the Hugging Face safetensors checkpoint layout (validated and streamed onto
//! the GPU) and synthetic models of the published shapes.

pub mod checkpoint;
pub mod config;
pub mod synthetic;
