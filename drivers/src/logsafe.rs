//! Strangers' text in log lines: a login name, a camera's plate string or an
//! id can hold newlines (a forged log line), ANSI escapes (a terminal taken
//! over) or megabytes. [`Escaped`] writes it on one line, control characters
//! escaped, cut at [`MAX_CHARS`] characters with a note of the length.

use std::fmt;

/// Characters of the input written before the rest is cut.
pub const MAX_CHARS: usize = 120;

/// Displays `0` escaped and truncated: `tracing::warn!(user = %Escaped(&name), ...)`.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for (written, c) in self.0.chars().enumerate() {
            if written == MAX_CHARS {
                let total = self.0.chars().count();
                return write!(f, "…(+{} chars)", total - MAX_CHARS);
            }
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\\' => f.write_str("\\\\")?,
                // C0 and C1 controls (ESC starts ANSI sequences, U+009B is a
                // one-character CSI), DEL, and the bidi overrides that reorder
                // what a reader sees on the line.
                c if c.is_control()
                    || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') =>
                {
                    write!(f, "\\u{{{:x}}}", c as u32)?
                }
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let forged = "guard1\n2026-01-01T00:00:00Z  INFO console: login ok\x1b[31m\r\t\\\u{202E}";
        let s = Escaped(forged).to_string();
        assert!(!s.chars().any(|c| c.is_control()), "{s:?}");
        assert_eq!(
            s,
            "guard1\\n2026-01-01T00:00:00Z  INFO console: login ok\\u{1b}[31m\\r\\t\\\\\\u{202e}"
        );
        assert_eq!(Escaped("京A12345 ok").to_string(), "京A12345 ok");
    }

    #[test]
    fn long_input_is_cut_with_a_note() {
        let long = "é".repeat(MAX_CHARS + 1000);
        let s = Escaped(&long).to_string();
        assert!(s.starts_with(&"é".repeat(MAX_CHARS)));
        assert!(s.ends_with("…(+1000 chars)"), "{s}");
        let exact = "x".repeat(MAX_CHARS);
        assert_eq!(Escaped(&exact).to_string(), exact);
    }
}
