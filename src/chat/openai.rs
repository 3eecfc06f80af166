//! OpenAI chat-completions requests (`{"messages": [...], "tools": [...]}`) as conversations.

use serde_json::Value;

use crate::error::{Error, Result};

use super::{str_field, Conversation, Message, ReasoningEffort, Role, SystemOptions, ToolDef};

/// An invalid part of the request; `param` is its top-level field (OpenAI's error `param`).
fn input_err(param: &str, msg: impl Into<String>) -> Error {
    Error::Request { param: param.to_string(), message: msg.into() }
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
                    (Some("text"), None) => return Err(input_err("messages", format!("{what}: content part {i} has no text string"))),
                    (Some(other), _) => {
                        return Err(input_err("messages", format!("{what}: content part {i} has type {other:?}; only text is supported")))
                    }
                    (None, _) => return Err(input_err("messages", format!("{what}: content part {i} is not a {{\"type\": \"text\"}} object"))),
                };
                out.push_str(text);
            }
            Ok(out)
        }
        Value::Null => Err(input_err("messages", format!("{what}: content is missing"))),
        _ => Err(input_err("messages", format!("{what}: content must be a string or a list of text parts"))),
    }
}

/// An optional string field: absent or null gives "".
fn opt_string(msg: &Value, key: &str, what: &str, param: &str) -> Result<String> {
    match msg.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(input_err(param, format!("{what}: {key} must be a string"))),
    }
}

/// The `function` object of a tool or tool call (`{"type": "function", "function": {...}}`) and its name.
fn function_object<'v>(v: &'v Value, what: &str, param: &str) -> Result<(&'v Value, &'v str)> {
    match v.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == "function" => {}
        Some(t) => return Err(input_err(param, format!("{what}: type {t} is not supported (only \"function\")"))),
    }
    let f = v
        .get("function")
        .filter(|f| f.is_object())
        .ok_or_else(|| input_err(param, format!("{what}: missing the \"function\" object")))?;
    let name = str_field(f, "name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| input_err(param, format!("{what}: function.name must be a non-empty string")))?;
    Ok((f, name))
}

fn parse_tool(tool: &Value, i: usize) -> Result<ToolDef> {
    let what = format!("tools[{i}]");
    if !tool.is_object() {
        return Err(input_err("tools", format!("{what} must be an object")));
    }
    let (f, name) = function_object(tool, &what, "tools")?;
    let description = opt_string(f, "description", &format!("{what}.function"), "tools")?;
    let parameters = match f.get("parameters") {
        None | Some(Value::Null) => None,
        Some(p @ Value::Object(_)) => Some(p.clone()),
        Some(_) => return Err(input_err("tools", format!("{what}: function.parameters must be a JSON schema object"))),
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
            return Err(input_err("messages", "the request must be a JSON object with a \"messages\" list"));
        }
        let messages = request
            .get("messages")
            .and_then(Value::as_array)
            .ok_or_else(|| input_err("messages", "the request needs a \"messages\" list"))?;
        let tools = match request.get("tools") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list.iter().enumerate().map(|(i, t)| parse_tool(t, i)).collect::<Result<_>>()?,
            Some(_) => return Err(input_err("tools", "\"tools\" must be a list")),
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
                return Err(input_err("messages", format!("{what} must be an object")));
            }
            let role = str_field(m, "role").ok_or_else(|| input_err("messages", format!("{what}: missing a \"role\" string")))?;
            let what = format!("{what} ({role})");
            let content = m.get("content").unwrap_or(&Value::Null);
            match role {
                "system" | "developer" => instructions.push(content_text(content, &what)?),
                "user" => {
                    let mut msg = Message::new(Role::User, content_text(content, &what)?);
                    let name = opt_string(m, "name", &what, "messages")?;
                    if !name.is_empty() {
                        msg.author_name = Some(name);
                    }
                    conv.messages.push(msg);
                }
                "assistant" => {
                    let mut reasoning = opt_string(m, "reasoning_content", &what, "messages")?;
                    if reasoning.is_empty() {
                        reasoning = opt_string(m, "reasoning", &what, "messages")?;
                    }
                    if !reasoning.is_empty() {
                        conv.messages.push(Message::new(Role::Assistant, reasoning).with_channel("analysis"));
                    }
                    let calls = match m.get("tool_calls") {
                        None | Some(Value::Null) => &[][..],
                        Some(Value::Array(calls)) => &calls[..],
                        Some(_) => return Err(input_err("messages", format!("{what}: tool_calls must be a list"))),
                    };
                    let text = if content.is_null() { String::new() } else { content_text(content, &what)? };
                    if !text.is_empty() {
                        let channel = if calls.is_empty() { "final" } else { "commentary" };
                        conv.messages.push(Message::new(Role::Assistant, text).with_channel(channel));
                    }
                    for (j, call) in calls.iter().enumerate() {
                        let what = format!("{what}: tool_calls[{j}]");
                        let (f, name) = function_object(call, &what, "messages")?;
                        let args = str_field(f, "arguments")
                            .ok_or_else(|| input_err("messages", format!("{what}: function.arguments must be a JSON string")))?;
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
                    let mut name = opt_string(m, "name", &what, "messages")?;
                    if name.is_empty() {
                        let id = opt_string(m, "tool_call_id", &what, "messages")?;
                        name = call_names
                            .iter()
                            .rev()
                            .find(|(call_id, _)| *call_id == id)
                            .map(|(_, n)| n.clone())
                            .ok_or_else(|| {
                                input_err("messages", format!(
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
                    return Err(input_err("messages", format!(
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
