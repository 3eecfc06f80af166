//! Chat formats: turning conversations into prompt tokens and model output back into messages.

pub mod harmony;
pub mod plain;
pub mod template;
