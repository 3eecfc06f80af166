//! The tolerance budgets of the test suite, one per kind of check, so every assert of a kind
//! uses the same number and a change of budget is one line here.

/// Whole model against Hugging Face transformers (float32) or the float64 reference of a GGUF
/// fixture: max |Δlogit| at every prompt position and decode step.
pub const MODEL_LOGITS: f32 = 1e-3;
/// A real quantized GGUF file (SmolLM2) against the exact float64 forward of its tensors.
pub const REAL_GGUF_LOGITS: f32 = 2e-3;
/// The f16 KV cache against the f32 references (keys and values rounded to f16): gpt-oss.
pub const F16_KV_MOE_LOGITS: f32 = 5e-2;
/// The f16 KV cache against the f32 references: the GGUF (Llama-family) fixtures.
pub const F16_KV_DENSE_LOGITS: f32 = 2e-2;
/// Two runs of the same model that only split the work differently (chunked prefill, bindings
/// of another size): f32 sums in another order.
pub const SAME_MODEL_REORDERED: f32 = 1e-4;

/// A kernel against its CPU reference in f32, relative (|got - want| / (1 + |want|)).
pub const KERNEL_F32: f32 = 1e-5;
/// A kernel whose sums run in another order than the reference's (folded norms, long dot
/// products with f16-decoded weights), relative.
pub const KERNEL_F32_REORDERED: f32 = 1e-4;
/// Attention over an f16 cache, relative to the f32 reference.
pub const KERNEL_F16_ATTENTION: f32 = 2e-3;
/// One f16 rounding step (cache contents), relative.
pub const F16_STEP: f32 = 1e-3;
