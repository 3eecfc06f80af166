//! Model output to messages and events: a streaming parser fed one token at a time, lenient
//! (malformed output becomes [`Event::Error`]) or strict (as openai-harmony's parser).

use crate::chat::{Event, Header, Message, Role, StopReason};
use crate::error::{Error, Result};
use crate::tokenizer::{TextStream, Tokenizer};

use super::{ControlTokens, CHANNEL_MARK, CONSTRAIN_MARK};

enum State {
    ExpectStart,
    Header { role: Option<Role>, tokens: Vec<u32> },
    Content { header: Header, text: String, stream: TextStream },
}

/// Streaming parser of model output, fed one token at a time.
///
/// [`StreamParser::new`] expects the output that follows a prompt ending in `<|start|>assistant`
/// (as made by [`render_for_completion`](super::render_for_completion)). Malformed output gives [`Event::Error`] and the
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
