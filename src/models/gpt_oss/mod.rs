//! gpt-oss specifics: the Hugging Face safetensors checkpoint layout (validated and streamed onto
//! the GPU) and synthetic models of the published shapes.

pub mod checkpoint;
pub mod synthetic;
