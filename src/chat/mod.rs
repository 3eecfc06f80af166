//! Chat formats: turning conversations into prompt tokens and model output back into messages.

mod format;
pub mod harmony;
pub mod plain;
pub mod template;

pub use format::ChatFormat;
