//! A conversation and its messages, and the events of a model's answer: the types every chat
//! format shares (harmony renders and parses them; a template format renders the messages as
//! plain text and reports its answer with the same events).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

pub const DEFAULT_MODEL_IDENTITY: &str = "You are ChatGPT, a large language model trained by OpenAI.";
pub const DEFAULT_KNOWLEDGE_CUTOFF: &str = "2024-06";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    Low,
    #[default]
    Medium,
    High,
}

impl ReasoningEffort {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        }
    }
}

impl FromStr for ReasoningEffort {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(ReasoningEffort::Low),
            "medium" => Ok(ReasoningEffort::Medium),
            "high" => Ok(ReasoningEffort::High),
            _ => Err(Error::Input(format!("reasoning effort {s:?}: expected low, medium or high"))),
        }
    }
}

impl fmt::Display for ReasoningEffort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
    Developer,
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
            Role::Developer => "developer",
            Role::Tool => "tool",
        }
    }

    /// The role named exactly `s` (lowercase, as in a harmony header).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "system" => Some(Role::System),
            "developer" => Some(Role::Developer),
            "tool" => Some(Role::Tool),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One harmony message with text content.
///
/// For a tool message the header shows `author_name` (e.g. `functions.get_weather`) instead of
/// the role; for other roles a name is appended as `role:name`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub author_name: Option<String>,
    pub recipient: Option<String>,
    pub channel: Option<String>,
    pub content_type: Option<String>,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message { role, author_name: None, recipient: None, channel: None, content_type: None, content: content.into() }
    }

    /// A message from a tool (`functions.NAME`, `browser.search`...).
    pub fn from_tool(name: impl Into<String>, content: impl Into<String>) -> Message {
        Message { author_name: Some(name.into()), ..Message::new(Role::Tool, content) }
    }

    pub fn with_author_name(mut self, name: impl Into<String>) -> Message {
        self.author_name = Some(name.into());
        self
    }

    pub fn with_recipient(mut self, recipient: impl Into<String>) -> Message {
        self.recipient = Some(recipient.into());
        self
    }

    pub fn with_channel(mut self, channel: impl Into<String>) -> Message {
        self.channel = Some(channel.into());
        self
    }

    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Message {
        self.content_type = Some(content_type.into());
        self
    }

    /// An assistant message addressed to a tool: rendered with `<|call|>` instead of `<|end|>`.
    pub fn is_tool_call(&self) -> bool {
        self.role == Role::Assistant && self.recipient.is_some()
    }
}

/// A function tool of the developer message's `namespace functions`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments; `None` renders as a function without arguments.
    pub parameters: Option<Value>,
}

/// Content of the system message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemOptions {
    pub model_identity: String,
    pub knowledge_cutoff: String,
    /// `Current date: ...` line, e.g. `2025-08-05`.
    pub current_date: Option<String>,
    pub reasoning: ReasoningEffort,
}

impl Default for SystemOptions {
    fn default() -> Self {
        SystemOptions {
            model_identity: DEFAULT_MODEL_IDENTITY.to_string(),
            knowledge_cutoff: DEFAULT_KNOWLEDGE_CUTOFF.to_string(),
            current_date: None,
            reasoning: ReasoningEffort::Medium,
        }
    }
}

/// A conversation: the system message, the developer message (instructions and function tools)
/// and the history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conversation {
    pub system: SystemOptions,
    /// Text of the developer message's `# Instructions` section.
    pub instructions: Option<String>,
    pub tools: Vec<ToolDef>,
    pub messages: Vec<Message>,
}

/// Header of a message, known once `<|message|>` is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Header {
    pub role: Role,
    pub author_name: Option<String>,
    pub recipient: Option<String>,
    pub channel: Option<String>,
    pub content_type: Option<String>,
}

impl Header {
    pub(crate) fn plain(role: Role) -> Header {
        Header { role, author_name: None, recipient: None, channel: None, content_type: None }
    }

    pub(crate) fn into_message(self, content: String) -> Message {
        Message {
            role: self.role,
            author_name: self.author_name,
            recipient: self.recipient,
            channel: self.channel,
            content_type: self.content_type,
            content,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `<|return|>`: the answer is complete.
    Return,
    /// `<|call|>`: the assistant called a tool and waits for its result.
    Call,
    /// The tokens ran out (`finish`) without `<|return|>` or `<|call|>`.
    EndOfStream,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum Event {
    /// A message header was read.
    MessageStart(Header),
    /// More text of the current message (never a broken UTF-8 character).
    Delta { channel: Option<String>, text: String },
    /// The current message is complete (or cut off, at `finish`).
    MessageEnd(Message),
    /// A complete assistant message addressed to a tool.
    ToolCall { recipient: String, channel: Option<String>, content_type: Option<String>, arguments: String },
    /// `<|return|>`, `<|call|>`, or the end of the tokens.
    Done(StopReason),
    /// Malformed output; the parser carries on (header text is kept as message text).
    Error(String),
}
