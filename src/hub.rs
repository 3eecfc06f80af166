//! Model resolution: a local directory, or a Hugging Face repo id downloaded into the HF cache.
