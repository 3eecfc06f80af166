//! Chat formats: turning conversations into prompt tokens and model output back into messages.
//!
//! A [`Conversation`] (instructions, tools, [`Message`]s) is what every front end builds, from
//! an OpenAI request ([`Conversation::from_openai_chat`]) or directly. The model's
//! [`ChatFormat`] renders it into prompt ids: [`harmony`] for gpt-oss, a Jinja [`template`] for
//! the Llama family. Generated ids come back as [`Event`]s, from [`harmony::StreamParser`] or
//! [`plain::PlainParser`].

mod conversation;
mod format;
pub mod harmony;
mod openai;
pub mod plain;
pub mod template;

pub use conversation::{
    Conversation, Event, Header, Message, ReasoningEffort, Role, StopReason, SystemOptions, ToolDef,
    DEFAULT_KNOWLEDGE_CUTOFF, DEFAULT_MODEL_IDENTITY,
};
pub use format::ChatFormat;

/// A string field of a JSON object.
fn str_field<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(serde_json::Value::as_str)
}
