//! Key paths (`devices[2].door`) and where they stand in the file, so that every
//! config error names the key and its line.

use std::fmt;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path to a key, as written by `gatewayd check`: `mqtt.url`, `devices[2].door`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    pub fn key(&self, k: impl Into<String>) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.into()));
        p
    }

    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    /// Appends a dotted sub-path as a driver reports it (`outputs.lock`, `script[3]`).
    pub fn join_dotted(&self, sub: &str) -> Self {
        let mut p = self.clone();
        for part in sub.split('.').filter(|s| !s.is_empty()) {
            match part.split_once('[') {
                Some((name, rest)) => {
                    if !name.is_empty() {
                        p.0.push(Seg::Key(name.to_owned()));
                    }
                    for idx in rest.split('[') {
                        if let Ok(i) = idx.trim_end_matches(']').parse() {
                            p.0.push(Seg::Index(i));
                        }
                    }
                }
                None => p.0.push(Seg::Key(part.to_owned())),
            }
        }
        p
    }

    /// Converts a path as serde_path_to_error records it.
    pub fn from_serde(base: &KeyPath, path: &serde_path_to_error::Path) -> Self {
        let mut p = base.clone();
        for seg in path.iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => p.0.push(Seg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => p.0.push(Seg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        p
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The 1-based line of byte offset `at` in `text`.
pub fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Finds the line of the deepest part of `path` that exists in the document:
/// the key itself when present, else the table that should have held it.
pub fn locate(doc: &toml_edit::ImDocument<&str>, text: &str, path: &KeyPath) -> Option<usize> {
    let mut node = Node::Table(doc.as_table());
    let mut best = None;
    for seg in &path.0 {
        match step(&node, seg) {
            Some((next, span)) => {
                best = span.or(best);
                node = next;
            }
            None => break,
        }
    }
    best.map(|r| line_of(text, r.start))
}

enum Node<'a> {
    Table(&'a toml_edit::Table),
    Tables(&'a toml_edit::ArrayOfTables),
    Value(&'a toml_edit::Value),
}

type Span = Option<std::ops::Range<usize>>;

/// One step down the document, with the span that best marks where it is.
fn step<'a>(node: &Node<'a>, seg: &Seg) -> Option<(Node<'a>, Span)> {
    use toml_edit::{Item, Value};
    match (node, seg) {
        (Node::Table(t), Seg::Key(k)) => {
            let key_span = t.key(k).and_then(|key| key.span());
            match t.get(k)? {
                Item::Table(sub) => Some((Node::Table(sub), key_span.or(sub.span()))),
                Item::ArrayOfTables(a) => Some((Node::Tables(a), key_span.or(a.span()))),
                Item::Value(v) => Some((Node::Value(v), key_span.or(v.span()))),
                Item::None => None,
            }
        }
        (Node::Tables(a), Seg::Index(i)) => {
            let t = a.get(*i)?;
            // The first key of the table gives a line even where the header has no span.
            let first = t
                .iter()
                .next()
                .and_then(|(k, _)| t.key(k))
                .and_then(|k| k.span());
            Some((Node::Table(t), t.span().or(first)))
        }
        (Node::Value(Value::InlineTable(t)), Seg::Key(k)) => {
            let key_span = t.key(k).and_then(|key| key.span());
            let v = t.get(k)?;
            Some((Node::Value(v), key_span.or(v.span())))
        }
        (Node::Value(Value::Array(a)), Seg::Index(i)) => {
            let v = a.get(*i)?;
            Some((Node::Value(v), v.span()))
        }
        _ => None,
    }
}
