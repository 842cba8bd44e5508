//! Credentials in one canonical form, so that a card read by OSDP, a plate pushed
//! by a camera or read from video, and the roster's `{type, value}` compare equal.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kinds of credential of the outside contract (`credential.type`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    #[default]
    Card,
    Tag,
    Plate,
    Face,
    Pin,
    Qr,
    Remote,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Card => "card",
            CredentialKind::Tag => "tag",
            CredentialKind::Plate => "plate",
            CredentialKind::Face => "face",
            CredentialKind::Pin => "pin",
            CredentialKind::Qr => "qr",
            CredentialKind::Remote => "remote",
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CredentialKind {
    type Err = CredentialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "card" => CredentialKind::Card,
            "tag" => CredentialKind::Tag,
            "plate" => CredentialKind::Plate,
            "face" => CredentialKind::Face,
            "pin" => CredentialKind::Pin,
            "qr" => CredentialKind::Qr,
            "remote" => CredentialKind::Remote,
            other => return Err(CredentialError::UnknownKind(other.to_owned())),
        })
    }
}

/// A credential: its kind and its canonical value (see [`Credential::parse`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Credential {
    #[serde(rename = "type")]
    pub kind: CredentialKind,
    pub value: String,
}

/// Why a credential value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("unknown credential type `{0}` (expected card, tag, plate, face, pin, qr or remote)")]
    UnknownKind(String),
    #[error("empty {0} value")]
    Empty(CredentialKind),
    #[error("card number `{0}` is not a decimal number")]
    BadCard(String),
    #[error("tag EPC `{0}` is not hexadecimal")]
    BadTag(String),
    #[error("PIN `{0}` must be 4 to 12 digits")]
    BadPin(String),
    #[error("plate `{0}`: {1}")]
    BadPlate(String, &'static str),
    #[error("{0} value is longer than 256 characters")]
    TooLong(CredentialKind),
    #[error("credential `{0}` must be written as type:value, e.g. card:10001")]
    NoKind(String),
}

impl Credential {
    /// Builds a credential from its kind and a value in any usual spelling, normalised:
    /// card numbers as decimal without leading zeros, EPCs as upper-case hex,
    /// plates as in [`normalize_plate`], PINs as digits.
    pub fn parse(kind: CredentialKind, value: &str) -> Result<Self, CredentialError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(CredentialError::Empty(kind));
        }
        if value.chars().count() > 256 {
            return Err(CredentialError::TooLong(kind));
        }
        let value = match kind {
            CredentialKind::Card => {
                let n: u128 = value
                    .parse()
                    .map_err(|_| CredentialError::BadCard(value.to_owned()))?;
                n.to_string()
            }
            CredentialKind::Tag => {
                let hex: String = value
                    .chars()
                    .filter(|c| !matches!(c, ' ' | '-' | ':'))
                    .map(|c| c.to_ascii_uppercase())
                    .collect();
                if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(CredentialError::BadTag(value.to_owned()));
                }
                hex
            }
            CredentialKind::Plate => normalize_plate(value)
                .map_err(|why| CredentialError::BadPlate(value.to_owned(), why))?,
            CredentialKind::Pin => {
                if !(4..=12).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CredentialError::BadPin(value.to_owned()));
                }
                value.to_owned()
            }
            CredentialKind::Face | CredentialKind::Qr | CredentialKind::Remote => value.to_owned(),
        };
        Ok(Self { kind, value })
    }

    /// Parses the `type:value` shorthand used in config files (`card:10001`, `plate:京A12345`).
    pub fn parse_shorthand(s: &str) -> Result<Self, CredentialError> {
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| CredentialError::NoKind(s.to_owned()))?;
        Self::parse(kind.trim().parse()?, value)
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// The 31 provincial abbreviations that open a mainland Chinese plate.
const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";
/// Characters that may close a special plate (coach, police, HK/Macau, trailer, embassy, consulate).
const SPECIAL_SUFFIXES: &str = "学警港澳挂使领试超";

/// Normalises a Chinese licence plate to its canonical 7 or 8 characters:
/// separators (`·`, spaces, dashes, dots) dropped, full-width letters and digits
/// made ASCII, letters upper-case, and the letters I and O (never used after the
/// first two characters) read as 1 and 0. New-energy (green) plates have 8 characters.
pub fn normalize_plate(raw: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(10);
    for c in raw.chars() {
        let c = match c {
            // Full-width ASCII block (Ａ..Ｚ, ０..９) as pushed by some cameras.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        if matches!(
            c,
            ' ' | '·' | '•' | '.' | '-' | '_' | '\u{3000}' | '\u{30FB}'
        ) {
            continue;
        }
        out.push(c.to_ascii_uppercase());
    }
    let chars: Vec<char> = out.chars().collect();
    if chars.len() < 7 {
        return Err("too short: a plate has 7 or 8 characters");
    }
    if chars.len() > 8 {
        return Err("too long: a plate has 7 or 8 characters");
    }
    if !PROVINCES.contains(chars[0]) {
        return Err("does not start with a province character");
    }
    if !chars[1].is_ascii_uppercase() {
        return Err("second character must be a letter");
    }
    let mut fixed: String = chars[..2].iter().collect();
    for (i, &c) in chars[2..].iter().enumerate() {
        let last = i + 2 == chars.len() - 1;
        let c = match c {
            'O' => '0',
            'I' => '1',
            c => c,
        };
        if c.is_ascii_uppercase() || c.is_ascii_digit() || (last && SPECIAL_SUFFIXES.contains(c)) {
            fixed.push(c);
        } else {
            return Err("only letters and digits may follow the city letter");
        }
    }
    Ok(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_lose_leading_zeros() {
        let c = Credential::parse(CredentialKind::Card, " 0010001 ").unwrap();
        assert_eq!(c.value, "10001");
        assert!(Credential::parse(CredentialKind::Card, "12a").is_err());
    }

    #[test]
    fn tags_are_upper_hex() {
        let c = Credential::parse(CredentialKind::Tag, "e200-0017 2211").unwrap();
        assert_eq!(c.value, "E20000172211");
        assert!(Credential::parse(CredentialKind::Tag, "xyz").is_err());
    }

    #[test]
    fn plates_normalise() {
        assert_eq!(normalize_plate("京A·12345").unwrap(), "京A12345");
        assert_eq!(normalize_plate("沪ａ ｄ１２３４５").unwrap(), "沪AD12345");
        assert_eq!(normalize_plate("粤B-D12345").unwrap(), "粤BD12345");
        assert_eq!(normalize_plate("苏E1O23I").unwrap(), "苏E10231");
        assert_eq!(normalize_plate("粤B1234学").unwrap(), "粤B1234学");
        assert!(normalize_plate("A12345").is_err());
        assert!(normalize_plate("京112345").is_err());
        assert!(normalize_plate("京A123456789").is_err());
        assert!(normalize_plate("京A12#45").is_err());
    }

    #[test]
    fn shorthand() {
        let c = Credential::parse_shorthand("plate:京A12345").unwrap();
        assert_eq!(c.kind, CredentialKind::Plate);
        assert!(Credential::parse_shorthand("10001").is_err());
        assert!(Credential::parse_shorthand("badge:1").is_err());
    }
}
