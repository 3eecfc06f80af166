//! Conversations to prompt ids, piece by piece as openai-harmony tokenizes them.

use crate::chat::{Conversation, Message, Role, SystemOptions, ToolDef};
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

use super::schema::typescript;
use super::{ControlTokens, CONSTRAIN_MARK};

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
