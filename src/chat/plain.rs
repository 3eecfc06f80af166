//! Output of models whose chat format is a template (the Llama family from GGUF): the answer is
//! one assistant message of plain text, ended by an end-of-generation token. It is reported with
//! the same events as a harmony answer (on the `final` channel), so every front end — the
//! terminal, the server, the browser, the library's `Chat` — shows both kinds alike.

use crate::error::Result;
use crate::tokenizer::{TextStream, Tokenizer};

use super::{Event, Header, Message, Role, StopReason};

/// The channel plain answers are reported on.
pub const CHANNEL: &str = "final";

/// Turns generated ids into events.
pub struct PlainParser {
    tok: Tokenizer,
    stop: Vec<u32>,
    stream: TextStream,
    text: String,
    started: bool,
    done: bool,
}

impl PlainParser {
    /// A parser whose answer ends at any of the `stop` ids.
    pub fn new(tok: &Tokenizer, stop: &[u32]) -> PlainParser {
        PlainParser { tok: tok.clone(), stop: stop.to_vec(), stream: TextStream::default(), text: String::new(), started: false, done: false }
    }

    fn header() -> Header {
        Header { role: Role::Assistant, author_name: None, recipient: None, channel: Some(CHANNEL.into()), content_type: None }
    }

    fn end(&mut self, reason: StopReason, events: &mut Vec<Event>) -> Result<()> {
        let rest = self.stream.finish(&self.tok)?;
        self.delta(rest, events);
        let mut msg = Message::new(Role::Assistant, std::mem::take(&mut self.text));
        msg.channel = Some(CHANNEL.into());
        events.push(Event::MessageEnd(msg));
        events.push(Event::Done(reason));
        self.done = true;
        Ok(())
    }

    fn delta(&mut self, text: String, events: &mut Vec<Event>) {
        if !text.is_empty() {
            self.text.push_str(&text);
            events.push(Event::Delta { channel: Some(CHANNEL.into()), text });
        }
    }

    /// The events of one generated id.
    pub fn push(&mut self, id: u32) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        if self.done {
            return Ok(events);
        }
        if !self.started {
            self.started = true;
            events.push(Event::MessageStart(Self::header()));
        }
        if self.stop.contains(&id) {
            self.end(StopReason::Return, &mut events)?;
        } else {
            let piece = self.stream.push(&self.tok, id)?;
            self.delta(piece, &mut events);
        }
        Ok(events)
    }

    /// Ends an answer cut off before its end token.
    pub fn finish(&mut self) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        if !self.done {
            if !self.started {
                self.started = true;
                events.push(Event::MessageStart(Self::header()));
            }
            self.end(StopReason::EndOfStream, &mut events)?;
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_one_final_message_ended_by_a_stop_id() {
        let tok = Tokenizer::o200k_harmony().unwrap();
        let ids = tok.encode("Hello there, café!").unwrap();
        let stop = 200002;
        let mut p = PlainParser::new(&tok, &[stop]);
        let mut events = Vec::new();
        for &id in ids.iter().chain([stop, 5].iter()) {
            events.extend(p.push(id).unwrap());
        }
        events.extend(p.finish().unwrap());
        assert!(matches!(&events[0], Event::MessageStart(h) if h.channel.as_deref() == Some("final")));
        let text: String = events.iter().filter_map(|e| if let Event::Delta { text, .. } = e { Some(text.as_str()) } else { None }).collect();
        assert_eq!(text, "Hello there, café!");
        let n = events.len();
        assert!(matches!(&events[n - 2], Event::MessageEnd(m) if m.content == text));
        assert_eq!(events[n - 1], Event::Done(StopReason::Return));
    }

    #[test]
    fn a_cut_off_answer_ends_with_end_of_stream() {
        let tok = Tokenizer::o200k_harmony().unwrap();
        let mut p = PlainParser::new(&tok, &[200002]);
        let mut events = p.push(tok.encode("Hi").unwrap()[0]).unwrap();
        events.extend(p.finish().unwrap());
        assert_eq!(events.last(), Some(&Event::Done(StopReason::EndOfStream)));
        assert!(p.finish().unwrap().is_empty());
    }
}
