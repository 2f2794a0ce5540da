//! One escaping function for every client- or neighbour-supplied string that
//! reaches a terminal or a log (option 60, hostnames, LLDP names, ...).
//!
//! A leaf chooses those bytes: unescaped, an ESC sequence clears the
//! operator's screen or retitles the window, a BEL rings, a newline forges a
//! table row or a log line, and a Unicode bidi override (U+202E) or line
//! separator (U+2028) reorders or splits what is shown.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal or a log line as it is.
fn needs_escape(c: char) -> bool {
    c.is_control() // C0, DEL and C1 (U+0080..U+009F)
        || matches!(c,
            '\\'
            | '\u{061C}'              // Arabic letter mark
            | '\u{200E}' | '\u{200F}' // LRM, RLM
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}'              // zero-width no-break space (BOM)
        )
}

/// `s` with every control, bidi and line-separator character written as an
/// escape (`\x1b`, `\n`, `\u{202e}`) and `\` as `\\`, so what is shown is one
/// line of visible text that says exactly what was sent. Borrowed when there
/// is nothing to escape.
pub fn escape_untrusted(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_become_visible_escapes() {
        assert_eq!(
            escape_untrusted("Arista\x1b[2J\x1b]0;pwned\x07"),
            "Arista\\x1b[2J\\x1b]0;pwned\\x07"
        );
        assert_eq!(escape_untrusted("a\nEthernet9  yes"), "a\\nEthernet9  yes");
        assert_eq!(
            escape_untrusted("evil\u{202E}txt.exe"),
            "evil\\u{202e}txt.exe"
        );
        assert_eq!(escape_untrusted("one\u{2028}two"), "one\\u{2028}two");
        assert_eq!(escape_untrusted("c1\u{9b}31m"), "c1\\x9b31m");
        assert_eq!(escape_untrusted("tab\tcr\r"), "tab\\tcr\\r");
        // The escape character itself is escaped, so `\x1b` typed by a
        // client cannot pass for an escaped ESC.
        assert_eq!(escape_untrusted("\\x1b"), "\\\\x1b");
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for s in [
            "DCS-7050SX3-48YC8",
            "JPE12221671",
            "leaf-1.example.net",
            "Zürich ✓",
            "",
        ] {
            assert!(
                matches!(escape_untrusted(s), Cow::Borrowed(b) if b == s),
                "{s}"
            );
        }
    }
}
