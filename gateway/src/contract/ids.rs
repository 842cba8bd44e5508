//! The gateway's own names for places and people. Devices are named by the
//! drivers (`drivers::DeviceId`); doors, zones and persons exist only here.

drivers::name_type!(
    /// A door, gate, turnstile or barrier as named in `[[doors]] id`.
    DoorId
);
drivers::name_type!(
    /// An area of the estate (`[[doors]] zone`): anti-passback and schedules apply per zone.
    ZoneId
);
drivers::name_type!(
    /// A person of the roster (resident, staff, visitor, watchlist entry).
    PersonId
);

/// Longest identifier (person, door, zone, device, console user).
pub const MAX_ID: usize = 64;
/// Characters an identifier may have, as the error says it.
pub const ID_CHARS: &str = "ASCII letters, digits and - _ . : @";

/// Why an identifier or a free text was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{field}: must be 1-{max} characters of {ID_CHARS}, got {got}")]
    BadId {
        field: String,
        max: usize,
        got: String,
    },
    #[error("{field}: longer than {max} characters")]
    TooLong { field: String, max: usize },
    #[error("{field}: must not be empty")]
    Empty { field: String },
}

/// Checks an identifier: 1..=64 of ASCII letters, digits and `-_.:@`, so that
/// look-alikes (Cyrillic letters, zero-width or direction marks, combining
/// characters, NUL) can never name a person, door or user.
pub fn check_id(field: &str, id: &str) -> Result<(), TextError> {
    let ok = (1..=MAX_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(TextError::BadId {
            field: field.to_owned(),
            max: MAX_ID,
            got: quoted(id),
        })
    }
}

/// A stranger's id quoted for an error message: escaped, and shortened.
fn quoted(id: &str) -> String {
    let short: String = id.chars().take(MAX_ID + 1).collect();
    let mut q = format!("{short:?}");
    if short.len() < id.len() {
        q.push('…');
    }
    q
}

/// Free text (display names, `by`, notes): NFC-normalised, control
/// characters removed (`keep_newlines` keeps line breaks, for notes),
/// trimmed, at most `max` characters.
pub fn clean_text(
    field: &str,
    text: &str,
    max: usize,
    keep_newlines: bool,
) -> Result<String, TextError> {
    use unicode_normalization::UnicodeNormalization;
    // Checked before normalising too, so that a huge input costs nothing more.
    let too_long = || TextError::TooLong {
        field: field.to_owned(),
        max,
    };
    if text.chars().count() > max * 4 {
        return Err(too_long());
    }
    let clean: String = text
        .nfc()
        .filter(|c| !c.is_control() || (keep_newlines && *c == '\n'))
        // Direction overrides and zero-width characters are not `is_control`.
        .filter(|c| !matches!(*c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'))
        .collect();
    let clean = clean.trim().to_owned();
    if clean.chars().count() > max {
        return Err(too_long());
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_a_safe_ascii_set() {
        for ok in [
            "r-001",
            "north-gate",
            "gw.01",
            "user@estate",
            "zone:b1",
            "A_b",
        ] {
            assert!(check_id("id", ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(65);
        for bad in [
            "",
            "r-0\u{200b}01",
            "r\u{202e}100",
            "a\0b",
            "guаrd1",
            "e\u{301}",
            "a b",
            "a/b",
            &long,
        ] {
            let e = check_id("person.id", bad).unwrap_err().to_string();
            assert!(
                e.starts_with("person.id: must be 1-64 characters of ASCII"),
                "{e}"
            );
        }
        let e = check_id("id", &"é".repeat(1000)).unwrap_err().to_string();
        assert!(e.len() < 400, "the refusal quotes a bounded part: {e}");
    }

    #[test]
    fn text_is_nfc_without_controls() {
        assert_eq!(
            clean_text("name", "  Zhang Wei ", 100, false).unwrap(),
            "Zhang Wei"
        );
        // e + combining acute becomes one é.
        assert_eq!(
            clean_text("name", "Ame\u{301}lie", 100, false).unwrap(),
            "Amélie"
        );
        assert_eq!(
            clean_text("name", "a\u{1b}[31mb\n\u{202e}c\u{200b}", 100, false).unwrap(),
            "a[31mbc"
        );
        assert_eq!(clean_text("note", "l1\nl2", 100, true).unwrap(), "l1\nl2");
        assert_eq!(
            clean_text("by", &"x".repeat(65), 64, false)
                .unwrap_err()
                .to_string(),
            "by: longer than 64 characters"
        );
        assert_eq!(
            clean_text("name", &"王".repeat(100), 100, false)
                .unwrap()
                .chars()
                .count(),
            100
        );
    }
}
