//! Which chat format a model speaks: harmony (gpt-oss) or a Jinja chat template from the model
//! file (the Llama family from GGUF).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::loader::gguf::Gguf;
use crate::tokenizer::Tokenizer;

use super::template::{encode_chat, ChatTemplate, TemplateMessage};
use super::{Conversation, Role};

/// How a conversation becomes prompt tokens, and generated tokens become messages.
#[derive(Clone)]
pub enum ChatFormat {
    /// gpt-oss: OpenAI's harmony format (channels, tools, reasoning effort).
    Harmony,
    /// A Jinja chat template (from the model file), with plain-text answers that end at any of
    /// the `stop` ids.
    Template { template: Arc<ChatTemplate>, stop: Vec<u32> },
}

/// A ChatML template for models whose file carries none (llama.cpp's fallback too).
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

impl ChatFormat {
    /// The chat template of a GGUF model and the ids that end an answer: the end-of-sequence and
    /// end-of-turn ids the metadata names, and the tokenizer's end-of-generation tokens.
    /// gpt-oss files get the harmony format (their template renders harmony too, but answers
    /// need its channel parsing and stop tokens).
    pub fn from_gguf(g: &Gguf, tok: &Tokenizer) -> Result<ChatFormat> {
        if g.architecture()? == "gpt-oss" {
            return Ok(ChatFormat::Harmony);
        }
        let source = g.get_str("tokenizer.chat_template")?.unwrap_or(CHATML);
        let name = |id: Option<u32>| id.and_then(|i| tok.decode(&[i]).ok()).unwrap_or_default();
        let (bos, eos) = (name(g.get_u32("tokenizer.ggml.bos_token_id")?), name(g.get_u32("tokenizer.ggml.eos_token_id")?));
        let template = ChatTemplate::new(source, &bos, &eos)?;
        let mut stop = tok.end_of_generation();
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let Some(id) = g.get_u32(key)? {
                if !stop.contains(&id) {
                    stop.push(id);
                }
            }
        }
        Ok(ChatFormat::Template { template: Arc::new(template), stop })
    }

    /// The prompt ids of `conv`, ready for the assistant's next message.
    pub fn render(&self, tok: &Tokenizer, conv: &Conversation) -> Result<Vec<u32>> {
        if conv.messages.iter().all(|m| matches!(m.role, Role::System | Role::Developer)) {
            return Err(Error::Input(
                "the conversation has no user message: a user message is needed after the system or developer instructions".into(),
            ));
        }
        match self {
            ChatFormat::Harmony => conv.render_for_completion(tok),
            ChatFormat::Template { template, .. } => render_template(tok, template, conv),
        }
    }
}

/// The prompt of a conversation in a template format: developer instructions become the system
/// message; message contents stay ordinary text (text that looks like a control token is not one).
fn render_template(tok: &Tokenizer, template: &ChatTemplate, conv: &Conversation) -> Result<Vec<u32>> {
    if !conv.tools.is_empty() {
        return Err(Error::Input("this model's chat template is used without tools; tool definitions are only supported for gpt-oss".into()));
    }
    let mut messages = Vec::new();
    if let Some(text) = &conv.instructions {
        messages.push(TemplateMessage { role: "system".into(), content: text.clone() });
    }
    for m in &conv.messages {
        let role = match m.role {
            Role::System | Role::Developer => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        };
        // Reasoning of earlier answers is not part of a plain conversation.
        if m.role == Role::Assistant && m.channel.as_deref() == Some("analysis") {
            continue;
        }
        messages.push(TemplateMessage { role: role.into(), content: m.content.clone() });
    }
    let pieces = template.render(&messages, true)?;
    let mut ids = Vec::new();
    let body = encode_chat(tok, &pieces)?;
    if let (true, Some(bos)) = (tok.add_bos(), tok.bos()) {
        if body.first() != Some(&bos) {
            ids.push(bos);
        }
    }
    ids.extend(body);
    Ok(ids)
}
