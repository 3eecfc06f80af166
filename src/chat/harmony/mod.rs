//! The harmony chat format of gpt-oss.
//!
//! Rendering gives the same ids as openai-harmony's `render_conversation_for_completion` with the
//! assistant as the next turn: control tokens are placed by id, and every text piece (a role, a
//! recipient, a channel name, a message body...) is tokenized on its own, exactly where
//! openai-harmony splits them. Parsing follows openai-harmony's `StreamableParser`; the streaming
//! parser can also recover from malformed output, reporting it as
//! [`Event::Error`](crate::chat::Event::Error).
//!
//! - `render`: a [`Conversation`](crate::chat::Conversation) to prompt ids
//!   ([`render_for_completion`]), with the system and developer messages.
//! - `schema`: tool parameter schemas as TypeScript-like types ([`typescript`]).
//! - `parse`: model output to events and messages ([`StreamParser`], [`parse_completion`]).

mod parse;
mod render;
mod schema;

pub use parse::{parse_completion, parse_completion_with_role, StreamParser};
pub use render::{developer_text, render_for_completion, render_message, system_text};
pub use schema::typescript;

use crate::error::Result;
use crate::tokenizer::Tokenizer;

const CHANNEL_MARK: &str = "<|channel|>";
const CONSTRAIN_MARK: &str = "<|constrain|>";

/// Ids of the control tokens used by the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlTokens {
    pub start: u32,
    pub message: u32,
    pub end: u32,
    pub ret: u32,
    pub call: u32,
    pub channel: u32,
    pub constrain: u32,
}

impl ControlTokens {
    pub fn new(tok: &Tokenizer) -> Result<ControlTokens> {
        Ok(ControlTokens {
            start: tok.special("<|start|>")?,
            message: tok.special("<|message|>")?,
            end: tok.special("<|end|>")?,
            ret: tok.special("<|return|>")?,
            call: tok.special("<|call|>")?,
            channel: tok.special("<|channel|>")?,
            constrain: tok.special("<|constrain|>")?,
        })
    }

    fn ends_message(&self, id: u32) -> bool {
        id == self.end || id == self.ret || id == self.call
    }
}
