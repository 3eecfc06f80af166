//! Download progress on the terminal: one bar per file, drawn from the events the library's
//! hub module reports.

use std::collections::HashMap;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use wgpt::hub::{DownloadEvent, EventKind};

/// A progress callback that draws one indicatif bar per file on stderr.
pub fn download_bars() -> impl FnMut(DownloadEvent) {
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template(
        "{msg:32} [{bar:30}] {binary_bytes:>10}/{binary_total_bytes:<10} {binary_bytes_per_sec:>12} {eta:>4}",
    )
    .expect("valid progress template")
    .progress_chars("=> ");
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    move |event: DownloadEvent| match event.kind {
        EventKind::Start => {
            let bar = multi.add(ProgressBar::new(event.total));
            bar.set_style(style.clone());
            bar.set_message(short_name(&event.file, 32));
            bar.set_position(event.done);
            bar.reset_eta();
            if let Some(old) = bars.insert(event.file, bar) {
                old.abandon();
            }
        }
        EventKind::Progress => {
            if let Some(bar) = bars.get(&event.file) {
                bar.set_position(event.done);
            }
        }
        EventKind::Finish => {
            if let Some(bar) = bars.remove(&event.file) {
                bar.set_position(event.total);
                bar.finish();
            }
        }
    }
}

fn short_name(name: &str, width: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= width {
        name.to_string()
    } else {
        let tail: String = chars[chars.len() - (width - 2)..].iter().collect();
        format!("..{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_bars_take_any_event_order() {
        let mut bars = download_bars();
        let ev = |kind, file: &str, done, total| DownloadEvent { kind, file: file.into(), done, total };
        bars(ev(EventKind::Progress, "unknown", 5, 10));
        bars(ev(EventKind::Start, "a", 3, 10));
        bars(ev(EventKind::Start, "a", 3, 10));
        bars(ev(EventKind::Progress, "a", 7, 10));
        bars(ev(EventKind::Finish, "a", 10, 10));
        bars(ev(EventKind::Finish, "a", 10, 10));
        bars(ev(EventKind::Start, "a-very-long-file-name-that-needs-shortening.safetensors", 0, 0));
    }

    #[test]
    fn long_names_keep_their_end() {
        assert_eq!(short_name("model.safetensors", 32), "model.safetensors");
        assert_eq!(short_name("abcdefghij", 6), "..ghij");
    }
}
