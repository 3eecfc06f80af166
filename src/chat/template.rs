//! Jinja chat templates (the `tokenizer.chat_template` of GGUF files and `tokenizer_config.json`),
//! rendered the way Hugging Face's `apply_chat_template` renders them: `trim_blocks` and
//! `lstrip_blocks` on, `messages`, `add_generation_prompt`, `bos_token`, `eos_token` and `tools`
//! (none) in the context, `raise_exception` and `strftime_now` as functions, Python's string
//! methods (`.strip()`, `.startswith()`, ...) on strings.
//!
//! The output is split into what the template wrote (where special-token text such as
//! `<|im_start|>` becomes the token) and what the messages said (always ordinary text, so a user
//! typing `<|im_end|>` cannot end a turn).

use minijinja::value::{Kwargs, Value};
use minijinja::{context, Environment, ErrorKind};

use crate::error::{Error, Result};
use crate::tokenizer::{Segment, Tokenizer};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TemplateMessage {
    pub role: String,
    pub content: String,
}

impl TemplateMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        TemplateMessage { role: role.into(), content: content.into() }
    }
}

/// A part of a rendered prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Written by the template: special-token text in it is recognised.
    Template(String),
    /// A message's content: ordinary text.
    Content(String),
}

pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos: String,
    eos: String,
}

const NAME: &str = "chat_template";

/// Template instructions one rendering may run (minijinja's fuel): real templates take a few
/// hundred per message.
const FUEL: u64 = 10_000_000;
/// Bytes one rendering may write (or 4 times the messages' contents, if more).
const MAX_OUTPUT: usize = 16 << 20;
/// Time one rendering may take.
const MAX_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// The output of a rendering, refused past a size or a deadline.
struct Capped {
    buf: Vec<u8>,
    limit: usize,
    deadline: web_time::Instant,
    over: Option<String>,
}

impl std::io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > self.limit {
            self.over = Some(format!("wrote more than {} bytes", self.limit));
        } else if web_time::Instant::now() > self.deadline {
            self.over = Some(format!("took more than {} seconds", MAX_TIME.as_secs()));
        }
        if self.over.is_some() {
            return Err(std::io::Error::other("chat template output refused"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Private-use characters around a message number mark where contents go (see `render`).
const OPEN: char = '\u{F8F0}';
const CLOSE: char = '\u{F8F1}';

impl ChatTemplate {
    /// Compiles `source`; `bos` and `eos` are the texts of the model's begin and end tokens.
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_fuel(Some(FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned(NAME, without_generation_tags(source))
            .map_err(|e| Error::Config(format!("chat template: {}", one_line(&e))))?;
        Ok(ChatTemplate { env, source: source.to_string(), bos: bos.to_string(), eos: eos.to_string() })
    }

    /// The prompt text as one string (contents inline).
    pub fn render_text(&self, messages: &[TemplateMessage], add_generation_prompt: bool) -> Result<String> {
        self.render_raw(messages, add_generation_prompt)
    }

    fn render_raw(&self, messages: &[TemplateMessage], add_generation_prompt: bool) -> Result<String> {
        let tmpl = self.env.get_template(NAME).map_err(|e| Error::Config(format!("chat template: {}", one_line(&e))))?;
        let contents: usize = messages.iter().map(|m| m.content.len()).sum();
        let mut out = Capped {
            buf: Vec::new(),
            limit: MAX_OUTPUT.max(4 * contents),
            deadline: web_time::Instant::now() + MAX_TIME,
            over: None,
        };
        let ctx = context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos,
            eos_token => &self.eos,
            tools => (),
            documents => (),
        };
        let rendered = tmpl.render_captured_to(ctx, &mut out);
        if let Some(over) = out.over {
            return Err(Error::Input(format!("the model's chat template {over}; it was stopped")));
        }
        match rendered {
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(Error::Input(format!(
                "the model's chat template ran more than {FUEL} steps; it was stopped (a template that loops this long is not a chat format)"
            ))),
            Err(e) => Err(Error::Input(format!("chat template: {}", one_line(&e)))),
            Ok(_) => String::from_utf8(out.buf).map_err(|_| Error::Input("the model's chat template wrote invalid UTF-8".into())),
        }
    }

    /// Renders the conversation, split into template text and message contents.
    ///
    /// The template is rendered once with each content replaced by a marker, and once as is; if
    /// putting the contents back in place of the markers gives exactly the real rendering, the
    /// markers show where contents are. A template that changes contents (cuts them, checks
    /// their start, ...) loses that guarantee: then each content is looked for, in order, in the
    /// real rendering (as written, trimmed, or JSON-escaped), and what is not found stays template
    /// text.
    pub fn render(&self, messages: &[TemplateMessage], add_generation_prompt: bool) -> Result<Vec<Piece>> {
        let real = self.render_raw(messages, add_generation_prompt)?;
        let clash = |s: &str| s.contains(OPEN) || s.contains(CLOSE);
        if !clash(&self.source) && !clash(&self.bos) && !clash(&self.eos) && !messages.iter().any(|m| clash(&m.content))
        {
            let marked: Vec<TemplateMessage> = messages
                .iter()
                .enumerate()
                .map(|(i, m)| TemplateMessage { role: m.role.clone(), content: format!("{OPEN}{i}{CLOSE}") })
                .collect();
            if let Ok(with_markers) = self.render_raw(&marked, add_generation_prompt) {
                if let Some(pieces) = split_markers(&with_markers, messages) {
                    if concat(&pieces) == real {
                        return Ok(pieces);
                    }
                }
            }
        }
        Ok(find_contents(&real, messages))
    }
}

/// A template error as one line: what went wrong and where, with the errors it wraps (the
/// alternate form dumps the source with debug info, which can fail on odd spans).
fn one_line(e: &minijinja::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out.replace('\n', " ")
}

/// transformers' `{% generation %}` ... `{% endgeneration %}` only marks the assistant's text for
/// training masks; it renders its body unchanged, so it becomes an `if true` block.
fn without_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(open) = rest.find("{%") {
        let Some(end) = rest[open + 2..].find("%}").map(|i| open + 2 + i + 2) else { break };
        let tag = &rest[open..end];
        let inner = tag[2..tag.len() - 2].trim_start_matches(['-', '+']).trim_end_matches(['-', '+']).trim();
        out.push_str(&rest[..open]);
        // Keep the whitespace-control marks (`{%-`, `-%}`).
        let left_mark = usize::from(tag[2..].starts_with(['-', '+']));
        let right_mark = usize::from(tag[..tag.len() - 2].ends_with(['-', '+']));
        let (left, right) = (&tag[..2 + left_mark], &tag[tag.len() - 2 - right_mark..]);
        match inner {
            "generation" => out.push_str(&format!("{left} if true {right}")),
            "endgeneration" => out.push_str(&format!("{left} endif {right}")),
            _ => out.push_str(tag),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Pieces of a rendering with markers, the markers replaced by the contents they stand for;
/// `None` if a marker is malformed.
fn split_markers(rendered: &str, messages: &[TemplateMessage]) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = rendered;
    while let Some(open) = rest.find(OPEN) {
        push(&mut pieces, Piece::Template(rest[..open].to_string()));
        let after = &rest[open + OPEN.len_utf8()..];
        let close = after.find(CLOSE)?;
        let index: usize = after[..close].parse().ok()?;
        push(&mut pieces, Piece::Content(messages.get(index)?.content.clone()));
        rest = &after[close + CLOSE.len_utf8()..];
    }
    if rest.contains(CLOSE) {
        return None;
    }
    push(&mut pieces, Piece::Template(rest.to_string()));
    Some(pieces)
}

/// The forms in which a template may show a content: as written, trimmed, or escaped inside a
/// JSON string (`tojson`).
pub fn content_forms(content: &str) -> [String; 3] {
    let json = serde_json::to_string(content).unwrap_or_default();
    let escaped = json.get(1..json.len().saturating_sub(1)).unwrap_or_default().to_string();
    [content.to_string(), content.trim().to_string(), escaped]
}

/// Fallback split: each message's content, in one of its forms, found in order.
fn find_contents(rendered: &str, messages: &[TemplateMessage]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut rest = rendered;
    for m in messages {
        for content in content_forms(&m.content) {
            if content.is_empty() {
                continue;
            }
            if let Some(at) = rest.find(&content) {
                push(&mut pieces, Piece::Template(rest[..at].to_string()));
                rest = &rest[at + content.len()..];
                push(&mut pieces, Piece::Content(content));
                break;
            }
        }
    }
    push(&mut pieces, Piece::Template(rest.to_string()));
    pieces
}

/// Appends, joining neighbours of one kind and dropping empty pieces.
fn push(pieces: &mut Vec<Piece>, piece: Piece) {
    let (Piece::Template(text) | Piece::Content(text)) = &piece;
    if text.is_empty() {
        return;
    }
    if let Some(last) = pieces.last_mut() {
        match (last, &piece) {
            (Piece::Template(a), Piece::Template(b)) | (Piece::Content(a), Piece::Content(b)) => {
                a.push_str(b);
                return;
            }
            _ => {}
        }
    }
    pieces.push(piece);
}

/// The whole text of pieces.
pub fn concat(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Template(s) | Piece::Content(s) => s.as_str(),
        })
        .collect()
}

/// Prompt ids of rendered pieces, as llama.cpp tokenizes a rendered chat (special tokens
/// recognised in template text, each run of text between special tokens tokenized as one piece)
/// except that special-token text inside message contents stays text. A `bos` is put first when
/// the tokenizer asks for one and the template did not write it.
pub fn encode_chat(tok: &Tokenizer, pieces: &[Piece]) -> Result<Vec<u32>> {
    enum Part {
        Text(String),
        Special(u32),
    }
    // Runs of text join across template/content boundaries so that tokens form across them as in
    // a single tokenization of the whole prompt.
    let mut parts: Vec<Part> = Vec::new();
    for piece in pieces {
        let segments = match piece {
            Piece::Template(s) => tok.split_special(s),
            Piece::Content(s) => vec![Segment::Text(s)],
        };
        for seg in segments {
            match (seg, parts.last_mut()) {
                (Segment::Text(t), Some(Part::Text(run))) => run.push_str(t),
                (Segment::Text(t), _) => parts.push(Part::Text(t.to_string())),
                (Segment::Special(id), _) => parts.push(Part::Special(id)),
            }
        }
    }
    let segments: Vec<Segment<'_>> = parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => Segment::Text(t),
            Part::Special(id) => Segment::Special(*id),
        })
        .collect();
    let mut ids = Vec::new();
    if let (true, Some(bos)) = (tok.add_bos(), tok.bos()) {
        if segments.first() != Some(&Segment::Special(bos)) {
            ids.push(bos);
        }
    }
    ids.extend(tok.encode_segments(&segments)?);
    Ok(ids)
}

fn raise_exception(message: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
}

/// Python's `json.dumps` with the options transformers' `tojson` passes on (`indent`,
/// `separators`, `sort_keys`, `ensure_ascii`, default false), not Jinja's HTML-escaping `tojson`.
fn tojson(value: Value, kwargs: Kwargs) -> std::result::Result<Value, minijinja::Error> {
    let bad = |m: String| minijinja::Error::new(ErrorKind::InvalidOperation, format!("tojson: {m}"));
    let indent: Option<Value> = kwargs.get("indent")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    // Like Python: an integer indent is that many spaces, a string is used as is.
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => Some(" ".repeat(usize::try_from(v).map_err(|e| bad(format!("indent: {e}")))?)),
        },
    };
    let (item_sep, key_sep) = match separators.as_deref() {
        None => (if indent.is_some() { "," } else { ", " }.to_string(), ": ".to_string()),
        Some([item, key]) => (item.clone(), key.clone()),
        Some(other) => return Err(bad(format!("separators must be two strings, not {}", other.len()))),
    };
    let json = serde_json::to_value(&value).map_err(|e| bad(e.to_string()))?;
    let style = JsonStyle {
        indent,
        item_sep,
        key_sep,
        sort_keys: sort_keys.unwrap_or(false),
        ensure_ascii: ensure_ascii.unwrap_or(false),
    };
    let mut out = String::new();
    style.write(&json, 0, &mut out);
    Ok(Value::from_safe_string(out))
}

struct JsonStyle {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
    ensure_ascii: bool,
}

impl JsonStyle {
    fn newline(&self, out: &mut String, depth: usize) {
        if let Some(unit) = &self.indent {
            out.push('\n');
            out.push_str(&unit.repeat(depth));
        }
    }

    fn string(&self, s: &str, out: &mut String) {
        let quoted = serde_json::to_string(s).unwrap_or_default();
        if !self.ensure_ascii {
            out.push_str(&quoted);
            return;
        }
        for c in quoted.chars() {
            if c.is_ascii() {
                out.push(c);
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }

    fn write(&self, v: &serde_json::Value, depth: usize, out: &mut String) {
        use serde_json::Value as J;
        match v {
            J::Array(items) if !items.is_empty() => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(out, depth + 1);
                    self.write(item, depth + 1, out);
                }
                self.newline(out, depth);
                out.push(']');
            }
            J::Object(map) if !map.is_empty() => {
                let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
                if self.sort_keys {
                    entries.sort_by(|a, b| a.0.cmp(b.0));
                }
                out.push('{');
                for (i, (k, item)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(out, depth + 1);
                    self.string(k, out);
                    out.push_str(&self.key_sep);
                    self.write(item, depth + 1, out);
                }
                self.newline(out, depth);
                out.push('}');
            }
            J::String(s) => self.string(s, out),
            J::Number(n) if n.is_f64() => {
                // Python prints floats with a fraction: 1.0, not 1.
                let f = n.as_f64().unwrap_or(0.0);
                if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
                    out.push_str(&format!("{f:.1}"));
                } else {
                    out.push_str(&n.to_string());
                }
            }
            other => out.push_str(&serde_json::to_string(other).unwrap_or_default()),
        }
    }
}

/// `strftime_now(format)`: the current UTC time (chat templates print today's date).
fn strftime_now(format: String) -> String {
    let secs =
        web_time::SystemTime::now().duration_since(web_time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    strftime(&format, secs)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// The C `strftime` directives chat templates use, for a UTC Unix time.
fn strftime(format: &str, unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let yday = days - days_from_civil(year, 1, 1) + 1;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('e') => out.push_str(&format!("{day:>2}")),
            Some('B') => out.push_str(MONTHS[month as usize - 1]),
            Some('b') | Some('h') => out.push_str(&MONTHS[month as usize - 1][..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('H') => out.push_str(&format!("{h:02}")),
            Some('I') => out.push_str(&format!("{:02}", if h % 12 == 0 { 12 } else { h % 12 })),
            Some('p') => out.push_str(if h < 12 { "AM" } else { "PM" }),
            Some('M') => out.push_str(&format!("{m:02}")),
            Some('S') => out.push_str(&format!("{s:02}")),
            Some('F') => out.push_str(&format!("{year}-{month:02}-{day:02}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_formats_known_dates() {
        // 2024-02-29 13:05:09 UTC, a Thursday.
        let t = 1_709_211_909;
        assert_eq!(strftime("%Y-%m-%d %H:%M:%S", t), "2024-02-29 13:05:09");
        assert_eq!(strftime("%d %B %Y", t), "29 February 2024");
        assert_eq!(strftime("%a %b %e %j %I%p %%", t), "Thu Feb 29 060 01PM %");
        assert_eq!(strftime("%A", 0), "Thursday");
        for days in [-800_000i64, -1, 0, 59, 11_016, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn generation_tags_render_their_body() {
        let src = "{% for m in messages %}{%- generation -%} [{{ m.content }}] {%- endgeneration %}{% endfor %}";
        let converted = without_generation_tags(src);
        assert_eq!(converted, "{% for m in messages %}{%- if true -%} [{{ m.content }}] {%- endif %}{% endfor %}");
        let t = ChatTemplate::new(src, "", "").unwrap();
        assert_eq!(t.render_text(&[TemplateMessage::new("user", "a")], false).unwrap(), "[a]");
    }

    #[test]
    fn markers_split_and_fallback_finds_contents() {
        let msgs = vec![TemplateMessage::new("user", "hi <|x|>")];
        let pieces = split_markers(&format!("<a>{OPEN}0{CLOSE}<b>"), &msgs).unwrap();
        assert_eq!(
            pieces,
            vec![Piece::Template("<a>".into()), Piece::Content("hi <|x|>".into()), Piece::Template("<b>".into())]
        );
        assert!(split_markers(&format!("{OPEN}7{CLOSE}"), &msgs).is_none());
        let found = find_contents("<a>hi <|x|><b>", &msgs);
        assert_eq!(found, pieces);
    }
}
