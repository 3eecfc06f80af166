//! Which chat format a model speaks: harmony (gpt-oss) or a Jinja chat template from the model
//! file (the Llama family from GGUF).

use std::sync::Arc;

use crate::error::Result;
use crate::loader::gguf::Gguf;
use crate::tokenizer::Tokenizer;

use super::template::ChatTemplate;

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
}
