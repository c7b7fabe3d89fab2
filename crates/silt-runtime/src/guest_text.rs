//! Text that came from an extension, made safe to print: an error string,
//! a file or model name, a metadata field, a log line.
//!
//! A hostile guest can put terminal escapes in any string it hands the host
//! (clear the screen, retitle the window, print a fake `silt: ok`). Every
//! such string goes through [`guest_text`] before it reaches a terminal or
//! a log: control characters (C0, DEL, C1) and the Unicode bidirectional
//! overrides are shown escaped, and the text is cut to a bounded length,
//! saying how much was dropped.

use std::fmt::Write as _;

/// Longest guest text shown, in characters; the rest is dropped (and counted).
pub const MAX_GUEST_TEXT: usize = 1024;

/// `text` with control characters escaped (`\u{1b}`, `\n`, …) and cut to
/// [`MAX_GUEST_TEXT`] characters.
pub fn guest_text(text: &str) -> String {
    guest_text_limited(text, MAX_GUEST_TEXT)
}

/// [`guest_text`] with another length limit (in characters).
pub fn guest_text_limited(text: &str, limit: usize) -> String {
    let mut shown = String::with_capacity(text.len().min(limit.saturating_add(16)));
    for (count, ch) in text.chars().enumerate() {
        if count == limit {
            let rest = text.chars().count() - count;
            let _ = write!(shown, "… ({rest} more characters dropped)");
            return shown;
        }
        match ch {
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            '\t' => shown.push_str("\\t"),
            ch if needs_escape(ch) => {
                let _ = write!(shown, "\\u{{{:x}}}", ch as u32);
            }
            ch => shown.push(ch),
        }
    }
    shown
}

/// Lines of guest text (a stderr tail) made safe to print: each line as
/// [`guest_text_limited`] with `line_limit`, the line breaks kept, at most
/// the last `max_lines` lines.
pub fn guest_lines(text: &str, max_lines: usize, line_limit: usize) -> String {
    // From the end, so that a text of nothing but line breaks costs no more
    // than `max_lines` of them.
    let mut lines: Vec<&str> = text
        .trim_end_matches('\n')
        .rsplit('\n')
        .take(max_lines)
        .collect();
    lines.reverse();
    lines
        .iter()
        .map(|line| guest_text_limited(line.strip_suffix('\r').unwrap_or(line), line_limit))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Control characters and the invisible characters that reorder or hide
/// text on a terminal: what [`guest_text`] escapes.
pub fn needs_escape(ch: char) -> bool {
    ch.is_control()
        || matches!(ch,
            '\u{200b}'..='\u{200f}' // zero-width and direction marks
            | '\u{202a}'..='\u{202e}' // bidirectional embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidirectional isolates
            | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_breaks_each_escaped_and_only_the_last_few() {
        let text = "one\ntwo\u{1b}[2J\r\nthree\n";
        assert_eq!(guest_lines(text, 8, 100), "one\ntwo\\u{1b}[2J\nthree");
        assert_eq!(guest_lines(text, 2, 100), "two\\u{1b}[2J\nthree");
        let breaks = "\n".repeat(1 << 20);
        assert_eq!(guest_lines(&breaks, 3, 100), "");
    }

    #[test]
    fn escapes_terminal_controls() {
        let hostile = "\u{1b}[2J\u{1b}]0;pwned\u{7}\rsilt: ok\u{9b}\u{202e}txt";
        let shown = guest_text(hostile);
        assert!(!shown.chars().any(needs_escape), "{shown}");
        assert_eq!(
            shown,
            "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\rsilt: ok\\u{9b}\\u{202e}txt"
        );
        assert_eq!(guest_text("weights.bin"), "weights.bin");
        assert_eq!(guest_text("ünïcode ok"), "ünïcode ok");
    }

    #[test]
    fn cuts_long_text_and_says_how_much() {
        let long = "x".repeat(100_000);
        let shown = guest_text(&long);
        assert!(shown.len() < MAX_GUEST_TEXT + 64);
        assert!(
            shown.ends_with("(98976 more characters dropped)"),
            "{shown}"
        );
    }
}
