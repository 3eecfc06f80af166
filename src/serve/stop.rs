//! Stop sequences on streamed text: text is released as soon as it can no longer be the start of
//! a stop sequence, and everything from the first match on is dropped.

/// Filters a stream of text pieces against a list of stop sequences.
#[derive(Debug, Default)]
pub struct StopFilter {
    stops: Vec<String>,
    held: String,
    hit: bool,
}

impl StopFilter {
    pub fn new(stops: Vec<String>) -> StopFilter {
        StopFilter { stops: stops.into_iter().filter(|s| !s.is_empty()).collect(), held: String::new(), hit: false }
    }

    /// True once a stop sequence was seen.
    pub fn stopped(&self) -> bool {
        self.hit
    }

    /// Adds text; returns what may be shown now. After a match nothing more is released.
    pub fn push(&mut self, text: &str) -> String {
        if self.hit {
            return String::new();
        }
        if self.stops.is_empty() {
            return text.to_string();
        }
        self.held.push_str(text);
        if let Some(at) = self.stops.iter().filter_map(|s| self.held.find(s.as_str())).min() {
            self.hit = true;
            let out = self.held[..at].to_string();
            self.held.clear();
            return out;
        }
        // Keep the longest tail that could still grow into a stop sequence.
        let keep = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| self.stops.iter().any(|s| s.starts_with(&self.held[i..])))
            .unwrap_or(self.held.len());
        let out = self.held[..keep].to_string();
        self.held.drain(..keep);
        out
    }

    /// The text still held back at the end of the stream.
    pub fn finish(&mut self) -> String {
        if self.hit {
            return String::new();
        }
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::StopFilter;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut f = StopFilter::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for p in pieces {
            out.push_str(&f.push(p));
        }
        out.push_str(&f.finish());
        (out, f.stopped())
    }

    #[test]
    fn cuts_at_the_first_stop_across_pieces() {
        assert_eq!(run(&["END"], &["Hello E", "N", "D and more"]), ("Hello ".into(), true));
        assert_eq!(run(&["xyz", "lo w"], &["Hel", "lo wor", "ld"]), ("Hel".into(), true));
    }

    #[test]
    fn releases_text_that_cannot_start_a_stop() {
        let mut f = StopFilter::new(vec!["STOP".into()]);
        assert_eq!(f.push("abc S"), "abc ");
        assert_eq!(f.push("T"), "");
        assert_eq!(f.push("x"), "STx");
        assert_eq!(run(&["STOP"], &["no S", "TO"]), ("no STO".into(), false));
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
        assert_eq!(run(&["é!"], &["caf", "é", "é!"]), ("café".into(), true));
    }
}
