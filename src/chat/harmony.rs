//! The harmony chat format of gpt-oss.
//!
//! Rendering gives the same ids as openai-harmony's `render_conversation_for_completion` with the
//! assistant as the next turn: control tokens are placed by id, and every text piece (a role, a
//! recipient, a channel name, a message body...) is tokenized on its own, exactly where
//! openai-harmony splits them. Parsing follows openai-harmony's `StreamableParser`; the streaming
//! parser can also recover from malformed output, reporting it as [`Event::Error`].
//!
//! Tool parameter schemas are rendered in the order of their JSON keys, which relies on
//! `serde_json`'s `preserve_order` feature (without it, objects come back in alphabetical order).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::tokenizer::{TextStream, Tokenizer};

pub const DEFAULT_MODEL_IDENTITY: &str = "You are ChatGPT, a large language model trained by OpenAI.";
pub const DEFAULT_KNOWLEDGE_CUTOFF: &str = "2024-06";

const CHANNEL_MARK: &str = "<|channel|>";
const CONSTRAIN_MARK: &str = "<|constrain|>";

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

// ------------------------------------------------------------------------------------------------
// Control tokens
// ------------------------------------------------------------------------------------------------

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

    /// Tokens that end sampling for an assistant turn: `<|return|>` and `<|call|>`.
    pub fn assistant_stops(&self) -> [u32; 2] {
        [self.ret, self.call]
    }

    fn ends_message(&self, id: u32) -> bool {
        id == self.end || id == self.ret || id == self.call
    }
}

// ------------------------------------------------------------------------------------------------
// Rendering
// ------------------------------------------------------------------------------------------------

/// Prompt ids for the next assistant turn: system message, developer message (when there are
/// instructions or tools), the history, then `<|start|>assistant`.
///
/// Analysis messages that come before the first `final` message are dropped when the last
/// assistant message is a `final` one (openai-harmony's `auto_drop_analysis`), so the reasoning
/// of an unfinished tool-calling turn stays.
pub fn render_for_completion(conv: &Conversation, tok: &Tokenizer) -> Result<Vec<u32>> {
    let ct = ControlTokens::new(tok)?;
    let mut out = Vec::new();
    let has_functions = !conv.tools.is_empty();

    let system = Message::new(Role::System, system_text(&conv.system, has_functions));
    render_message_into(&system, tok, &ct, &mut out)?;
    if conv.instructions.is_some() || has_functions {
        let developer = Message::new(Role::Developer, developer_text(conv.instructions.as_deref(), &conv.tools));
        render_message_into(&developer, tok, &ct, &mut out)?;
    }

    let msgs = &conv.messages;
    let last_assistant_is_final = msgs
        .iter()
        .rev()
        .find(|m| m.role == Role::Assistant)
        .is_some_and(|m| m.channel.as_deref() == Some("final"));
    let first_final = msgs.iter().position(|m| m.channel.as_deref() == Some("final"));
    for (i, m) in msgs.iter().enumerate() {
        let dropped = last_assistant_is_final
            && first_final.is_some_and(|f| i < f)
            && m.channel.as_deref() == Some("analysis");
        if !dropped {
            render_message_into(m, tok, &ct, &mut out)?;
        }
    }

    out.push(ct.start);
    out.extend(tok.encode(Role::Assistant.as_str())?);
    Ok(out)
}

impl Conversation {
    /// See [`render_for_completion`].
    pub fn render_for_completion(&self, tok: &Tokenizer) -> Result<Vec<u32>> {
        render_for_completion(self, tok)
    }
}

/// Ids of one message, `<|start|>` to `<|end|>` (or `<|call|>` for an assistant tool call).
pub fn render_message(msg: &Message, tok: &Tokenizer) -> Result<Vec<u32>> {
    let ct = ControlTokens::new(tok)?;
    let mut out = Vec::new();
    render_message_into(msg, tok, &ct, &mut out)?;
    Ok(out)
}

fn render_message_into(msg: &Message, tok: &Tokenizer, ct: &ControlTokens, out: &mut Vec<u32>) -> Result<()> {
    out.push(ct.start);
    if msg.role == Role::Tool {
        let name = msg
            .author_name
            .as_deref()
            .ok_or_else(|| Error::Input("a tool message needs an author name (e.g. functions.NAME)".into()))?;
        out.extend(tok.encode(name)?);
    } else {
        out.extend(tok.encode(msg.role.as_str())?);
        if let Some(name) = &msg.author_name {
            out.extend(tok.encode(&format!(":{name}"))?);
        }
    }
    if let Some(r) = msg.recipient.as_deref().filter(|r| *r != "all") {
        out.extend(tok.encode(&format!(" to={r}"))?);
    }
    if let Some(channel) = &msg.channel {
        out.push(ct.channel);
        out.extend(tok.encode(channel)?);
    }
    if let Some(content_type) = &msg.content_type {
        match content_type.strip_prefix(CONSTRAIN_MARK) {
            Some(rest) => {
                out.extend(tok.encode(" ")?);
                out.push(ct.constrain);
                out.extend(tok.encode(rest)?);
            }
            None => out.extend(tok.encode(&format!(" {content_type}"))?),
        }
    }
    out.push(ct.message);
    out.extend(tok.encode(&msg.content)?);
    out.push(if msg.is_tool_call() { ct.call } else { ct.end });
    Ok(())
}

/// Text of the system message.
pub fn system_text(sys: &SystemOptions, has_function_tools: bool) -> String {
    let mut top = vec![sys.model_identity.clone(), format!("Knowledge cutoff: {}", sys.knowledge_cutoff)];
    if let Some(date) = &sys.current_date {
        top.push(format!("Current date: {date}"));
    }
    let mut channels =
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.".to_string();
    if has_function_tools {
        channels.push_str("\nCalls to these tools must go to the commentary channel: 'functions'.");
    }
    [top.join("\n"), format!("Reasoning: {}", sys.reasoning), channels].join("\n\n")
}

/// Text of the developer message: `# Instructions` and the `functions` namespace.
pub fn developer_text(instructions: Option<&str>, tools: &[ToolDef]) -> String {
    let mut sections: Vec<String> = Vec::new();
    if let Some(text) = instructions {
        sections.push("# Instructions".into());
        sections.push(text.into());
    }
    if !tools.is_empty() {
        let mut lines = vec!["## functions\n".to_string(), "namespace functions {\n".to_string()];
        for tool in tools {
            lines.extend(tool.description.lines().map(|l| format!("// {l}")));
            match &tool.parameters {
                Some(schema) => lines.push(format!("type {} = (_: {}) => any;\n", tool.name, typescript(schema, ""))),
                None => lines.push(format!("type {} = () => any;\n", tool.name)),
            }
        }
        lines.push("} // namespace functions".into());
        sections.push(format!("# Tools\n\n{}", lines.join("\n")));
    }
    sections.join("\n\n")
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn has_enum(v: &Value) -> bool {
    v.get("enum").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

fn is_nullable(v: &Value) -> bool {
    v.get("nullable").and_then(Value::as_bool).unwrap_or(false)
}

/// A default value as shown in a comment: strings quoted unless the schema is an enum (and, with
/// `json_enum`, enum strings shown as JSON), other values as compact JSON.
fn default_text(default: &Value, schema: &Value, json_enum: bool) -> String {
    match default.as_str() {
        Some(s) if !has_enum(schema) => format!("\"{s}\""),
        Some(s) if !json_enum => s.to_string(),
        _ => default.to_string(),
    }
}

fn with_null(ty: String, schema: &Value) -> String {
    if is_nullable(schema) && !ty.contains("null") {
        format!("{ty} | null")
    } else {
        ty
    }
}

/// TypeScript-like type of a JSON schema, as openai-harmony renders tool parameters.
pub fn typescript(schema: &Value, indent: &str) -> String {
    if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
        let mut out = String::new();
        for v in variants {
            out.push_str(&format!("\n{indent} | "));
            out.push_str(&with_null(typescript(v, &format!("{indent}   ")), v));
            let mut notes = Vec::new();
            if let Some(d) = str_field(v, "description") {
                notes.push(d.to_string());
            }
            if let Some(d) = v.get("default") {
                notes.push(format!("default: {}", default_text(d, v, true)));
            }
            if !notes.is_empty() {
                out.push_str(&format!(" // {}", notes.join(" ")));
            }
        }
        return out;
    }
    if let Some(types) = schema.get("type").and_then(Value::as_array) {
        let names: Vec<&str> =
            types.iter().filter_map(Value::as_str).map(|t| if t == "integer" { "number" } else { t }).collect();
        return if names.is_empty() { "any".into() } else { names.join(" | ") };
    }
    match str_field(schema, "type") {
        Some("object") => object_typescript(schema, indent),
        Some("string") => {
            let values: Vec<String> = schema
                .get("enum")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(|s| format!("\"{s}\"")).collect())
                .unwrap_or_default();
            if values.is_empty() {
                "string".into()
            } else {
                values.join(" | ")
            }
        }
        Some("number") | Some("integer") => "number".into(),
        Some("boolean") => "boolean".into(),
        Some("array") => match schema.get("items") {
            Some(items) => format!("{}[]", typescript(items, indent)),
            None => "Array<any>".into(),
        },
        _ => "any".into(),
    }
}

fn object_typescript(schema: &Value, indent: &str) -> String {
    let mut out = String::new();
    if let Some(d) = str_field(schema, "description") {
        out.push_str(&format!("{indent}// {d}\n"));
    }
    out.push_str("{\n");
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let props = schema.get("properties").and_then(Value::as_object);
    for (key, prop) in props.into_iter().flatten() {
        let optional = if required.contains(&key.as_str()) { "" } else { "?" };
        if let Some(title) = str_field(prop, "title") {
            out.push_str(&format!("{indent}// {title}\n{indent}//\n"));
        }
        let has_one_of = prop.get("oneOf").is_some();
        let desc = str_field(prop, "description");
        if let (false, Some(d)) = (has_one_of, desc) {
            out.push_str(&format!("{indent}// {d}\n"));
        }
        if let Some(examples) = prop.get("examples").and_then(Value::as_array).filter(|a| !a.is_empty()) {
            out.push_str(&format!("{indent}// Examples:\n"));
            for ex in examples.iter().filter_map(Value::as_str) {
                out.push_str(&format!("{indent}// - \"{ex}\"\n"));
            }
        }
        if let Some(variants) = prop.get("oneOf").and_then(Value::as_array) {
            // The property's description goes above it unless the first variant repeats it.
            let first_desc = variants.first().and_then(|v| str_field(v, "description"));
            let desc_above = desc.is_some() && desc != first_desc;
            if let (true, Some(d)) = (desc_above, desc) {
                out.push_str(&format!("{indent}// {d}\n"));
            }
            if let Some(d) = prop.get("default") {
                out.push_str(&format!("{indent}// default: {}\n", default_text(d, prop, false)));
            }
            out.push_str(&format!("{indent}{key}{optional}:\n"));
            for (i, v) in variants.iter().enumerate() {
                out.push_str(&format!("{indent} | "));
                out.push_str(&with_null(typescript(v, &format!("{indent}   ")), v));
                let mut notes = Vec::new();
                if !(i == 0 && desc_above) {
                    if let Some(d) = str_field(v, "description").filter(|d| Some(*d) != desc) {
                        notes.push(d.to_string());
                    }
                }
                if let Some(d) = v.get("default") {
                    notes.push(format!("default: {}", default_text(d, v, false)));
                }
                if !notes.is_empty() {
                    out.push_str(&format!(" // {}", notes.join(" ")));
                }
                out.push('\n');
            }
            out.push_str(&format!("{indent},\n"));
            continue;
        }
        out.push_str(&format!("{indent}{key}{optional}: "));
        out.push_str(&with_null(typescript(prop, &format!("{indent}    ")), prop));
        out.push(',');
        if let (false, Some(d)) = (has_one_of, prop.get("default")) {
            out.push_str(&format!(" // default: {}", default_text(d, prop, false)));
        }
        out.push('\n');
    }
    out.push_str(&format!("{indent}}}"));
    out
}

// ------------------------------------------------------------------------------------------------
// OpenAI chat-completions requests
// ------------------------------------------------------------------------------------------------

fn input_err(msg: impl Into<String>) -> Error {
    Error::Input(msg.into())
}

/// Text of a message's `content`: a string or a list of `{"type": "text", "text": ...}` parts,
/// concatenated without separator.
fn content_text(content: &Value, what: &str) -> Result<String> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = String::new();
            for (i, part) in parts.iter().enumerate() {
                let text = match (str_field(part, "type"), str_field(part, "text")) {
                    (Some("text"), Some(t)) => t,
                    (Some("text"), None) => return Err(input_err(format!("{what}: content part {i} has no text string"))),
                    (Some(other), _) => {
                        return Err(input_err(format!("{what}: content part {i} has type {other:?}; only text is supported")))
                    }
                    (None, _) => return Err(input_err(format!("{what}: content part {i} is not a {{\"type\": \"text\"}} object"))),
                };
                out.push_str(text);
            }
            Ok(out)
        }
        Value::Null => Err(input_err(format!("{what}: content is missing"))),
        _ => Err(input_err(format!("{what}: content must be a string or a list of text parts"))),
    }
}

/// An optional string field: absent or null gives "".
fn opt_string(msg: &Value, key: &str, what: &str) -> Result<String> {
    match msg.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(input_err(format!("{what}: {key} must be a string"))),
    }
}

/// The `function` object of a tool or tool call (`{"type": "function", "function": {...}}`) and its name.
fn function_object<'v>(v: &'v Value, what: &str) -> Result<(&'v Value, &'v str)> {
    match v.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == "function" => {}
        Some(t) => return Err(input_err(format!("{what}: type {t} is not supported (only \"function\")"))),
    }
    let f = v
        .get("function")
        .filter(|f| f.is_object())
        .ok_or_else(|| input_err(format!("{what}: missing the \"function\" object")))?;
    let name = str_field(f, "name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| input_err(format!("{what}: function.name must be a non-empty string")))?;
    Ok((f, name))
}

fn parse_tool(tool: &Value, i: usize) -> Result<ToolDef> {
    let what = format!("tools[{i}]");
    if !tool.is_object() {
        return Err(input_err(format!("{what} must be an object")));
    }
    let (f, name) = function_object(tool, &what)?;
    let description = opt_string(f, "description", &format!("{what}.function"))?;
    let parameters = match f.get("parameters") {
        None | Some(Value::Null) => None,
        Some(p @ Value::Object(_)) => Some(p.clone()),
        Some(_) => return Err(input_err(format!("{what}: function.parameters must be a JSON schema object"))),
    };
    Ok(ToolDef { name: name.to_string(), description, parameters })
}

impl Conversation {
    /// Builds a conversation from an OpenAI chat-completions request `{"messages": [...], "tools":
    /// [...]}` (other request fields are ignored):
    ///
    /// - `system` and `developer` messages, wherever they stand, make up the developer
    ///   instructions, joined with a blank line;
    /// - `tools` (`{"type": "function", "function": {name, description, parameters}}`) become the
    ///   function tools;
    /// - `user` messages are user messages (`name` becomes the author name);
    /// - an `assistant` message gives, in order: an `analysis` message from non-empty
    ///   `reasoning_content` (or `reasoning`); a `final` message from non-empty content, or a
    ///   `commentary` preamble when it also has `tool_calls`; one commentary message per tool
    ///   call, to `functions.NAME` with content type `<|constrain|>json` and the `arguments`
    ///   string as content;
    /// - a `tool` message comes from `functions.NAME` to the assistant on `commentary`, NAME being
    ///   its `name` or that of the earlier tool call whose `id` is its `tool_call_id`.
    ///
    /// Content is a string or a list of text parts (concatenated).
    pub fn from_openai_chat(request: &Value, reasoning: ReasoningEffort, date: Option<String>) -> Result<Conversation> {
        if !request.is_object() {
            return Err(input_err("the request must be a JSON object with a \"messages\" list"));
        }
        let messages = request
            .get("messages")
            .and_then(Value::as_array)
            .ok_or_else(|| input_err("the request needs a \"messages\" list"))?;
        let tools = match request.get("tools") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list.iter().enumerate().map(|(i, t)| parse_tool(t, i)).collect::<Result<_>>()?,
            Some(_) => return Err(input_err("\"tools\" must be a list")),
        };

        let mut conv = Conversation {
            system: SystemOptions { reasoning, current_date: date, ..SystemOptions::default() },
            instructions: None,
            tools,
            messages: Vec::new(),
        };
        let mut instructions: Vec<String> = Vec::new();
        let mut call_names: Vec<(String, String)> = Vec::new();

        for (i, m) in messages.iter().enumerate() {
            let what = format!("messages[{i}]");
            if !m.is_object() {
                return Err(input_err(format!("{what} must be an object")));
            }
            let role = str_field(m, "role").ok_or_else(|| input_err(format!("{what}: missing a \"role\" string")))?;
            let what = format!("{what} ({role})");
            let content = m.get("content").unwrap_or(&Value::Null);
            match role {
                "system" | "developer" => instructions.push(content_text(content, &what)?),
                "user" => {
                    let mut msg = Message::new(Role::User, content_text(content, &what)?);
                    let name = opt_string(m, "name", &what)?;
                    if !name.is_empty() {
                        msg.author_name = Some(name);
                    }
                    conv.messages.push(msg);
                }
                "assistant" => {
                    let mut reasoning = opt_string(m, "reasoning_content", &what)?;
                    if reasoning.is_empty() {
                        reasoning = opt_string(m, "reasoning", &what)?;
                    }
                    if !reasoning.is_empty() {
                        conv.messages.push(Message::new(Role::Assistant, reasoning).with_channel("analysis"));
                    }
                    let calls = match m.get("tool_calls") {
                        None | Some(Value::Null) => &[][..],
                        Some(Value::Array(calls)) => &calls[..],
                        Some(_) => return Err(input_err(format!("{what}: tool_calls must be a list"))),
                    };
                    let text = if content.is_null() { String::new() } else { content_text(content, &what)? };
                    if !text.is_empty() {
                        let channel = if calls.is_empty() { "final" } else { "commentary" };
                        conv.messages.push(Message::new(Role::Assistant, text).with_channel(channel));
                    }
                    for (j, call) in calls.iter().enumerate() {
                        let what = format!("{what}: tool_calls[{j}]");
                        let (f, name) = function_object(call, &what)?;
                        let args = str_field(f, "arguments")
                            .ok_or_else(|| input_err(format!("{what}: function.arguments must be a JSON string")))?;
                        if let Some(id) = str_field(call, "id").filter(|id| !id.is_empty()) {
                            call_names.push((id.to_string(), name.to_string()));
                        }
                        conv.messages.push(
                            Message::new(Role::Assistant, args)
                                .with_channel("commentary")
                                .with_recipient(format!("functions.{name}"))
                                .with_content_type("<|constrain|>json"),
                        );
                    }
                }
                "tool" => {
                    let text = content_text(content, &what)?;
                    let mut name = opt_string(m, "name", &what)?;
                    if name.is_empty() {
                        let id = opt_string(m, "tool_call_id", &what)?;
                        name = call_names
                            .iter()
                            .rev()
                            .find(|(call_id, _)| *call_id == id)
                            .map(|(_, n)| n.clone())
                            .ok_or_else(|| {
                                input_err(format!(
                                    "{what}: needs a \"name\" or a \"tool_call_id\" of an earlier tool call (got {id:?})"
                                ))
                            })?;
                    }
                    conv.messages.push(
                        Message::from_tool(format!("functions.{name}"), text)
                            .with_recipient("assistant")
                            .with_channel("commentary"),
                    );
                }
                other => {
                    return Err(input_err(format!(
                        "{what}: unknown role {other:?} (expected system, developer, user, assistant or tool)"
                    )))
                }
            }
        }
        if !instructions.is_empty() {
            conv.instructions = Some(instructions.join("\n\n"));
        }
        Ok(conv)
    }
}

// ------------------------------------------------------------------------------------------------
// Parsing model output
// ------------------------------------------------------------------------------------------------

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
    fn plain(role: Role) -> Header {
        Header { role, author_name: None, recipient: None, channel: None, content_type: None }
    }

    fn into_message(self, content: String) -> Message {
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

enum State {
    ExpectStart,
    Header { role: Option<Role>, tokens: Vec<u32> },
    Content { header: Header, text: String, stream: TextStream },
}

/// Streaming parser of model output, fed one token at a time.
///
/// [`StreamParser::new`] expects the output that follows a prompt ending in `<|start|>assistant`
/// (as made by [`render_for_completion`]). Malformed output gives [`Event::Error`] and the
/// parser goes on; the strict parser behind [`parse_completion`] returns an error instead, in the
/// cases where openai-harmony's parser fails.
pub struct StreamParser {
    tok: Tokenizer,
    ct: ControlTokens,
    state: State,
    strict: bool,
    done: bool,
}

impl StreamParser {
    /// Longest header (in tokens) the lenient parser waits for before showing it as text.
    const MAX_HEADER_TOKENS: usize = 128;

    /// Parser of the tokens that follow `<|start|>assistant`.
    pub fn new(tok: &Tokenizer) -> Result<StreamParser> {
        Self::with_role(tok, Some(Role::Assistant))
    }

    /// `role`: the role already given by the prompt (its header is then read without the role), or
    /// `None` for output that begins with `<|start|>`.
    pub fn with_role(tok: &Tokenizer, role: Option<Role>) -> Result<StreamParser> {
        let state = match role {
            Some(role) => State::Header { role: Some(role), tokens: Vec::new() },
            None => State::ExpectStart,
        };
        Ok(StreamParser { tok: tok.clone(), ct: ControlTokens::new(tok)?, state, strict: false, done: false })
    }

    fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// Malformed output: an error in strict mode, an `Error` event otherwise.
    fn fail(&self, events: &mut Vec<Event>, msg: String) -> Result<()> {
        if self.strict {
            return Err(Error::Input(format!("harmony output: {msg}")));
        }
        events.push(Event::Error(msg));
        Ok(())
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tok.decode(ids)
    }

    /// Feeds one token id.
    pub fn push(&mut self, id: u32) -> Result<Vec<Event>> {
        let mut ev = Vec::new();
        // Every id of the vocabulary decodes to at least one byte; unknown ids decode to nothing.
        if self.decode(&[id])?.is_empty() {
            self.fail(&mut ev, format!("token id {id} is outside the vocabulary"))?;
            return Ok(ev);
        }
        self.done = false;
        let ct = self.ct;
        match std::mem::replace(&mut self.state, State::ExpectStart) {
            State::ExpectStart => {
                if id == ct.start {
                    self.state = State::Header { role: None, tokens: Vec::new() };
                } else {
                    self.fail(&mut ev, format!("unexpected token {id} outside a message (expected <|start|>)"))?;
                    if id == ct.ret || id == ct.call {
                        self.finish_turn(&mut ev, id);
                    } else if id != ct.end {
                        // Stray text: shown as an assistant message without a channel.
                        let header = Header::plain(Role::Assistant);
                        ev.push(Event::MessageStart(header.clone()));
                        self.state = State::Content { header, text: String::new(), stream: TextStream::default() };
                        self.content_token(&mut ev, id)?;
                    }
                }
            }
            State::Header { role, mut tokens } => {
                if id == ct.message {
                    let text = self.decode(&tokens)?;
                    match parse_header(&text, role) {
                        Ok(header) => {
                            ev.push(Event::MessageStart(header.clone()));
                            self.state = State::Content { header, text: String::new(), stream: TextStream::default() };
                        }
                        Err(msg) => {
                            self.fail(&mut ev, msg)?;
                            self.header_as_text(&mut ev, role, text);
                        }
                    }
                } else if !self.strict && ct.ends_message(id) {
                    let text = self.decode(&tokens)?;
                    self.fail(&mut ev, format!("message header {text:?} ended without <|message|>"))?;
                    self.header_as_text(&mut ev, role, text);
                    self.end_message(&mut ev, id)?;
                } else if !self.strict && id == ct.start {
                    let text = self.decode(&tokens)?;
                    self.fail(&mut ev, format!("message header {text:?} interrupted by <|start|>"))?;
                    self.state = State::Header { role: None, tokens: Vec::new() };
                } else {
                    tokens.push(id);
                    if !self.strict && tokens.len() > Self::MAX_HEADER_TOKENS {
                        let text = self.decode(&tokens)?;
                        self.fail(&mut ev, "message header too long (no <|message|>)".into())?;
                        self.header_as_text(&mut ev, role, text);
                    } else {
                        self.state = State::Header { role, tokens };
                    }
                }
            }
            state @ State::Content { .. } => {
                self.state = state;
                if ct.ends_message(id) {
                    self.end_message(&mut ev, id)?;
                } else if !self.strict && id == ct.start {
                    self.fail(&mut ev, "<|start|> inside a message: the message was not ended".into())?;
                    self.close_content(&mut ev, false)?;
                    self.state = State::Header { role: None, tokens: Vec::new() };
                } else {
                    self.content_token(&mut ev, id)?;
                }
            }
        }
        Ok(ev)
    }

    /// Ends the output: reports a cut-off message or header, then `Done(EndOfStream)` unless the
    /// output already ended with `<|return|>` or `<|call|>`.
    pub fn finish(&mut self) -> Result<Vec<Event>> {
        let mut ev = Vec::new();
        match std::mem::replace(&mut self.state, State::ExpectStart) {
            State::ExpectStart => {}
            State::Header { tokens, .. } => {
                let text = self.decode(&tokens)?;
                self.fail(&mut ev, format!("output ended inside a message header ({text:?})"))?;
            }
            state @ State::Content { .. } => {
                self.state = state;
                self.close_content(&mut ev, true)?;
            }
        }
        if !self.done {
            ev.push(Event::Done(StopReason::EndOfStream));
            self.done = true;
        }
        Ok(ev)
    }

    fn content_token(&mut self, ev: &mut Vec<Event>, id: u32) -> Result<()> {
        if let State::Content { header, text, stream } = &mut self.state {
            let piece = stream.push(&self.tok, id)?;
            if !piece.is_empty() {
                text.push_str(&piece);
                ev.push(Event::Delta { channel: header.channel.clone(), text: piece });
            }
        }
        Ok(())
    }

    /// Flushes and emits the current message (without tool call); `cut_off` flags an unfinished
    /// tool call.
    fn close_content(&mut self, ev: &mut Vec<Event>, cut_off: bool) -> Result<Option<Message>> {
        let State::Content { header, mut text, mut stream } = std::mem::replace(&mut self.state, State::ExpectStart)
        else {
            return Ok(None);
        };
        let rest = stream.finish(&self.tok)?;
        if !rest.is_empty() {
            text.push_str(&rest);
            ev.push(Event::Delta { channel: header.channel.clone(), text: rest });
        }
        let msg = header.into_message(text);
        if cut_off && !self.strict && msg.is_tool_call() {
            let to = msg.recipient.clone().unwrap_or_default();
            ev.push(Event::Error(format!("tool call to {to} was cut off")));
        }
        ev.push(Event::MessageEnd(msg.clone()));
        Ok(Some(msg))
    }

    fn end_message(&mut self, ev: &mut Vec<Event>, id: u32) -> Result<()> {
        if let Some(msg) = self.close_content(ev, false)? {
            if let Some(to) = msg.recipient.as_ref().filter(|_| msg.is_tool_call()) {
                ev.push(Event::ToolCall {
                    recipient: to.clone(),
                    channel: msg.channel.clone(),
                    content_type: msg.content_type.clone(),
                    arguments: msg.content.clone(),
                });
            }
        }
        self.finish_turn(ev, id);
        Ok(())
    }

    fn finish_turn(&mut self, ev: &mut Vec<Event>, id: u32) {
        let reason = if id == self.ct.ret {
            StopReason::Return
        } else if id == self.ct.call {
            StopReason::Call
        } else {
            return;
        };
        ev.push(Event::Done(reason));
        self.done = true;
    }

    /// Recovery from a bad header: a channel-less message whose text starts with the header text.
    fn header_as_text(&mut self, ev: &mut Vec<Event>, role: Option<Role>, text: String) {
        let header = Header::plain(role.unwrap_or(Role::Assistant));
        ev.push(Event::MessageStart(header.clone()));
        if !text.is_empty() {
            ev.push(Event::Delta { channel: None, text: text.clone() });
        }
        self.state = State::Content { header, text, stream: TextStream::default() };
    }
}

/// Reads a decoded header (everything between `<|start|>` and `<|message|>`), as openai-harmony
/// does: `<|channel|>NAME` anywhere, then whitespace-separated words: the role (unless already
/// known), an optional recipient (`to=X`, or a lone word), an optional content type (last word).
/// An unknown first word followed by more words is a tool's name.
fn parse_header(text: &str, known_role: Option<Role>) -> std::result::Result<Header, String> {
    if text.contains('\u{FFFD}') {
        return Err(format!("message header {text:?} is not valid UTF-8"));
    }
    let mut rest = text.to_string();
    let mut channel = None;
    if let Some(at) = rest.find(CHANNEL_MARK) {
        let after = &rest[at + CHANNEL_MARK.len()..];
        let len = after.find(|c: char| c.is_whitespace() || c == '<').unwrap_or(after.len());
        if len == 0 {
            return Err(format!("message header {text:?} has <|channel|> without a channel name"));
        }
        channel = Some(after[..len].to_string());
        rest = format!("{}{}", &rest[..at], &after[len..]);
    }
    let mut rest = rest.trim().to_string();
    if rest.contains(CONSTRAIN_MARK) {
        rest = rest.replace(CONSTRAIN_MARK, &format!(" {CONSTRAIN_MARK}")).trim().to_string();
    }
    let mut words: Vec<&str> = rest.split_ascii_whitespace().collect();

    let mut author_name = None;
    let role = match known_role {
        Some(r) => r,
        None => {
            let first = *words.first().ok_or_else(|| format!("message header {text:?} has no role"))?;
            let role = match Role::parse(first) {
                Some(r) => r,
                None if words.len() > 1 || first.starts_with("to=") => {
                    words.remove(0);
                    Role::Tool
                }
                None => return Err(format!("unknown role {first:?} in message header")),
            };
            if role == Role::Tool {
                author_name = Some(first.to_string());
            }
            role
        }
    };
    if words.first() == Some(&role.as_str()) {
        words.remove(0);
    }

    let mut recipient = None;
    let mut content_type = None;
    if let Some(last) = words.pop() {
        if let Some(r) = last.strip_prefix("to=") {
            recipient = Some(r.to_string());
        } else if words.is_empty() {
            recipient = Some(last.to_string());
        } else {
            content_type = Some(last.to_string());
            if let Some(r) = words.pop() {
                recipient = Some(r.strip_prefix("to=").unwrap_or(r).to_string());
            }
        }
    }
    if !words.is_empty() {
        return Err(format!("unexpected words {:?} in message header {text:?}", words.join(" ")));
    }
    Ok(Header { role, author_name, recipient, channel, content_type })
}

fn parse_strict(tok: &Tokenizer, tokens: &[u32], role: Option<Role>) -> Result<Vec<Message>> {
    let mut parser = StreamParser::with_role(tok, role)?.strict();
    let mut messages = Vec::new();
    let mut take = |events: Vec<Event>| {
        messages.extend(events.into_iter().filter_map(|e| match e {
            Event::MessageEnd(m) => Some(m),
            _ => None,
        }))
    };
    for &id in tokens {
        take(parser.push(id)?);
    }
    take(parser.finish()?);
    Ok(messages)
}

/// Messages of a complete model output that follows `<|start|>assistant` (the same messages as
/// openai-harmony's `parse_messages_from_completion_tokens(tokens, Role.ASSISTANT)`; it fails
/// where that fails). A message cut off by the end of the tokens is returned as it stands.
pub fn parse_completion(tok: &Tokenizer, tokens: &[u32]) -> Result<Vec<Message>> {
    parse_strict(tok, tokens, Some(Role::Assistant))
}

/// Like [`parse_completion`]; `role: None` for tokens that begin with `<|start|>`.
pub fn parse_completion_with_role(tok: &Tokenizer, tokens: &[u32], role: Option<Role>) -> Result<Vec<Message>> {
    parse_strict(tok, tokens, role)
}
