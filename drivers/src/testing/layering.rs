//! The module-layering check of a crate's own tests: which top-level modules
//! import which, whether they form a cycle, and whether they keep an allowed
//! order of layers.
//!
//! [`Graph::of_src`] takes a crate's `src` folder. The top-level modules are
//! the `mod` lines of `lib.rs`; a module's files are `src/<m>.rs` and every
//! `.rs` file under `src/<m>/`. An import is a path that reaches the crate
//! root: `crate::<m>...` (also each branch of `use crate::{a, b::c}`), and
//! `super::` where it climbs to the root (from `src/<m>.rs`, `src/<m>/mod.rs`,
//! or as `super::super::` one folder down); a name that `lib.rs` re-exports
//! (`crate::DriverConfig`) counts as its module. Test code is left out:
//! `#[cfg(test)]` items, files named `tests.rs`, files under a `tests/` folder,
//! and files of a `#[cfg(test)] mod x;`. The sources are read as text, with
//! comments and string literals stripped; macros are not expanded.
//!
//! ```no_run
//! use drivers::testing::layering::{Graph, Layer};
//! let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
//! let graph = Graph::of_src(&src).unwrap();
//! if let Err(cycle) = graph.check_acyclic() {
//!     panic!("{cycle}"); // module cycle: config -> engine -> config, with each edge's file:line
//! }
//! let layers = [
//!     Layer::new("leaves", &["event"]),
//!     Layer::new("the rest", &["engine", "config"]),
//! ];
//! if let Err(broken) = graph.check_layers(&layers) {
//!     panic!("{broken}");
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

/// One import of a top-level module by another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// The path as written, from its root (`crate::osdp::sc::Key`, `super::event`).
    pub path: String,
    /// The file, as given: under the `src` passed to [`Graph::of_src`].
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}: `{}` at {}:{}",
            self.from,
            self.to,
            self.path,
            self.file.display(),
            self.line
        )
    }
}

/// Which top-level modules of a crate import which.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub modules: BTreeSet<String>,
    /// Every import, ordered by importing module, imported module, file and line.
    pub edges: Vec<Edge>,
}

/// A cycle of imports, each edge with the file and line it stands at.
#[derive(Debug, Clone)]
pub struct Cycle {
    pub edges: Vec<Edge>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.edges.iter().map(|e| e.from.as_str()).collect();
        if let Some(first) = self.edges.first() {
            names.push(&first.from);
        }
        write!(f, "module cycle: {}", names.join(" -> "))?;
        for e in &self.edges {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Cycle {}

/// Modules that may import only modules of earlier layers, never one of their own.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    pub name: &'a str,
    pub modules: &'a [&'a str],
}

impl<'a> Layer<'a> {
    pub const fn new(name: &'a str, modules: &'a [&'a str]) -> Self {
        Self { name, modules }
    }
}

/// What breaks the allowed order, one line a problem.
#[derive(Debug, Clone)]
pub struct LayerViolations {
    pub problems: Vec<String>,
}

impl fmt::Display for LayerViolations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "module layering broken:")?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LayerViolations {}

impl Graph {
    /// Reads every `.rs` file under `src` (which must hold a `lib.rs`).
    pub fn of_src(src: &Path) -> io::Result<Graph> {
        if !src.join("lib.rs").is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no lib.rs", src.display()),
            ));
        }
        let mut files = Vec::new();
        read_rs_files(src, Path::new(""), &mut files)?;
        Ok(build(
            files
                .into_iter()
                .map(|(rel, text)| (src.join(&rel), rel, text))
                .collect(),
        ))
    }

    /// The same from files in memory; paths are relative to `src` (`lib.rs`, `a/mod.rs`).
    pub fn of_files<P: AsRef<Path>, S: AsRef<str>>(
        files: impl IntoIterator<Item = (P, S)>,
    ) -> Graph {
        build(
            files
                .into_iter()
                .map(|(p, s)| {
                    let rel = p.as_ref().to_path_buf();
                    (rel.clone(), rel, s.as_ref().to_owned())
                })
                .collect(),
        )
    }

    /// The modules `from` imports.
    pub fn imports(&self, from: &str) -> BTreeSet<&str> {
        self.edges
            .iter()
            .filter(|e| e.from == from)
            .map(|e| e.to.as_str())
            .collect()
    }

    /// A cycle of imports, if there is one (the first found, modules taken in name order).
    pub fn find_cycle(&self) -> Option<Cycle> {
        // One edge per pair of modules: its first place.
        let mut adj: BTreeMap<&str, BTreeMap<&str, &Edge>> = BTreeMap::new();
        for e in &self.edges {
            adj.entry(&e.from).or_default().entry(&e.to).or_insert(e);
        }
        let mut state: BTreeMap<&str, Visit> = BTreeMap::new();
        let mut path = Vec::new();
        self.modules.iter().find_map(|m| {
            if state.contains_key(m.as_str()) {
                None
            } else {
                visit(m, &adj, &mut state, &mut path)
            }
        })
    }

    /// Ok when no module imports itself through others; else the cycle.
    pub fn check_acyclic(&self) -> Result<(), Cycle> {
        self.find_cycle().map_or(Ok(()), Err)
    }

    /// Checks that each module is in exactly one layer and imports only modules
    /// of earlier layers; every offending import is named with its file and line.
    pub fn check_layers(&self, layers: &[Layer<'_>]) -> Result<(), LayerViolations> {
        let mut problems = Vec::new();
        let mut layer_of: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, layer) in layers.iter().enumerate() {
            for &m in layer.modules {
                if let Some(j) = layer_of.insert(m, i) {
                    problems.push(format!(
                        "module `{m}` is listed in two layers (`{}` and `{}`)",
                        layers[j].name, layer.name
                    ));
                }
                if !self.modules.contains(m) {
                    problems.push(format!(
                        "layer `{}` lists `{m}`, which is not a module of the crate",
                        layer.name
                    ));
                }
            }
        }
        for m in &self.modules {
            if !layer_of.contains_key(m.as_str()) {
                problems.push(format!(
                    "module `{m}` is in no layer: give it its place in the allowed order"
                ));
            }
        }
        for e in &self.edges {
            let (Some(&from), Some(&to)) =
                (layer_of.get(e.from.as_str()), layer_of.get(e.to.as_str()))
            else {
                continue;
            };
            let at = format!("{}:{}", e.file.display(), e.line);
            if from == to {
                problems.push(format!(
                    "{at}: `{}` imports `{}` (module `{}`), but modules of the layer `{}` may not import each other",
                    e.from, e.path, e.to, layers[from].name
                ));
            } else if to > from {
                let earlier: Vec<&str> = layers[..from].iter().map(|l| l.name).collect();
                problems.push(format!(
                    "{at}: `{}` (layer `{}`) imports `{}` (module `{}`, layer `{}`), a later layer; it may import only the layers {}",
                    e.from,
                    layers[from].name,
                    e.path,
                    e.to,
                    layers[to].name,
                    if earlier.is_empty() { "(none)".to_owned() } else { earlier.join(", ") }
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(LayerViolations { problems })
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    Open,
    Done,
}

fn visit<'g>(
    m: &'g str,
    adj: &BTreeMap<&'g str, BTreeMap<&'g str, &'g Edge>>,
    state: &mut BTreeMap<&'g str, Visit>,
    path: &mut Vec<&'g Edge>,
) -> Option<Cycle> {
    state.insert(m, Visit::Open);
    for (&to, &e) in adj.get(m).into_iter().flatten() {
        match state.get(to) {
            Some(Visit::Open) => {
                let start = path.iter().position(|p| p.from == to).unwrap_or(path.len());
                let mut edges: Vec<Edge> = path[start..].iter().map(|&p| p.clone()).collect();
                edges.push(e.clone());
                return Some(Cycle { edges });
            }
            Some(Visit::Done) => {}
            None => {
                path.push(e);
                if let Some(c) = visit(to, adj, state, path) {
                    return Some(c);
                }
                path.pop();
            }
        }
    }
    state.insert(m, Visit::Done);
    None
}

fn read_rs_files(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, String)>) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let rel = rel.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            read_rs_files(root, &rel, out)?;
        } else if rel.extension().is_some_and(|x| x == "rs") {
            out.push((rel.clone(), std::fs::read_to_string(root.join(&rel))?));
        }
    }
    Ok(())
}

/// `(shown, relative to src, text)` of every file.
fn build(files: Vec<(PathBuf, PathBuf, String)>) -> Graph {
    let scans: Vec<(PathBuf, PathBuf, Scan)> = files
        .into_iter()
        .map(|(shown, rel, text)| {
            let scan = scan(&tokenize(&text), module_path(&rel).len());
            (shown, rel, scan)
        })
        .collect();
    let Some((_, _, lib)) = scans.iter().find(|(_, rel, _)| rel == Path::new("lib.rs")) else {
        return Graph::default();
    };
    let modules: BTreeSet<String> = lib.mods.iter().cloned().collect();
    // Names lib.rs re-exports from a module (`pub use registry::DriverConfig`).
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    for u in &lib.uses {
        let segs: Vec<&str> = u
            .segments
            .iter()
            .map(String::as_str)
            .skip_while(|s| *s == "crate" || *s == "self")
            .collect();
        if let (Some(&m), Some(&last)) = (segs.first(), segs.last()) {
            if segs.len() > 1 && modules.contains(m) && last != "*" && last != "self" {
                reexports.insert(
                    u.alias.clone().unwrap_or_else(|| last.to_owned()),
                    m.to_owned(),
                );
            }
        }
    }
    // Test-only files: by name, by folder, by `#[cfg(test)] mod x;` or `#![cfg(test)]`.
    let mut excluded: Vec<PathBuf> = Vec::new();
    for (_, rel, scan) in &scans {
        let dir = child_dir(rel);
        for t in &scan.test_mods {
            excluded.push(dir.join(format!("{t}.rs")));
            excluded.push(dir.join(t));
        }
        if scan.test_only {
            excluded.push(rel.clone());
            excluded.push(dir);
        }
    }
    let is_test_file = |rel: &Path| {
        rel.file_name().is_some_and(|n| n == "tests.rs")
            || rel
                .parent()
                .is_some_and(|p| p.components().any(|c| c.as_os_str() == "tests"))
            || excluded.iter().any(|x| rel.starts_with(x))
    };
    let mut edges = Vec::new();
    for (shown, rel, scan) in &scans {
        let Some(from) = module_path(rel).into_iter().next() else {
            continue;
        };
        if !modules.contains(&from) || is_test_file(rel) {
            continue;
        }
        for r in &scan.refs {
            let Some(first) = r.segments.first() else {
                continue;
            };
            let to = if modules.contains(first) {
                first.clone()
            } else if let Some(m) = reexports.get(first) {
                m.clone()
            } else {
                continue;
            };
            if to != from {
                edges.push(Edge {
                    from: from.clone(),
                    to,
                    path: format!("{}::{}", r.root, r.segments.join("::")),
                    file: shown.clone(),
                    line: r.line,
                });
            }
        }
    }
    edges.sort_by(|a, b| (&a.from, &a.to, &a.file, a.line).cmp(&(&b.from, &b.to, &b.file, b.line)));
    Graph { modules, edges }
}

/// The module a file is, from the crate root: `osdp/pd.rs` is `[osdp, pd]`,
/// `osdp/mod.rs` is `[osdp]`, `lib.rs` is `[]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.strip_suffix(".rs").unwrap_or(&last);
        if !(stem == "mod" || (parts.is_empty() && (stem == "lib" || stem == "main"))) {
            parts.push(stem.to_owned());
        }
    }
    parts
}

/// The folder of a file's child modules: `a.rs` and `a/mod.rs` have `a/`, `lib.rs` has ``.
fn child_dir(rel: &Path) -> PathBuf {
    module_path(rel).iter().collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Punct(char),
    /// `::`
    PathSep,
    /// A number, string or char literal (its text is not kept).
    Lit,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Rust source as tokens, without comments and with literals emptied.
fn tokenize(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let start_line = line;
        let tok = if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            None
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                let pair = (c[i], at(i + 1));
                if pair == ('/', '*') || pair == ('*', '/') {
                    depth += if pair.0 == '/' { 1 } else { -1 };
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
            None
        } else if ch.is_whitespace() {
            line += usize::from(ch == '\n');
            i += 1;
            None
        } else if ch == '"' {
            i = skip_quoted(&c, i + 1, &mut line);
            Some(Tok::Lit)
        } else if ch == '\'' && (at(i + 1) == '\\' || at(i + 2) == '\'') {
            i = skip_char(&c, i + 1);
            Some(Tok::Lit)
        } else if ch.is_ascii_digit() {
            i = word_end(&c, i);
            Some(Tok::Lit)
        } else if ch.is_alphabetic() || ch == '_' {
            let s = i;
            i = word_end(&c, i);
            let word: String = c[s..i].iter().collect();
            let hashes = c[i..].iter().take_while(|&&h| h == '#').count();
            if matches!(word.as_str(), "r" | "br" | "cr") && at(i + hashes) == '"' {
                // r"..", r#".."#: ends at a quote followed by as many hashes.
                let end: Vec<char> = std::iter::once('"').chain(vec!['#'; hashes]).collect();
                i += hashes + 1;
                while i < c.len() && !c[i..].starts_with(&end) {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
                i += end.len();
                Some(Tok::Lit)
            } else if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                i = skip_quoted(&c, i + 1, &mut line);
                Some(Tok::Lit)
            } else if word == "b" && at(i) == '\'' {
                i = skip_char(&c, i + 1);
                Some(Tok::Lit)
            } else if word == "r" && hashes == 1 && (at(i + 1).is_alphabetic() || at(i + 1) == '_')
            {
                // A raw identifier: r#type.
                let s = i + 1;
                i = word_end(&c, s);
                Some(Tok::Ident(c[s..i].iter().collect()))
            } else {
                Some(Tok::Ident(word))
            }
        } else if ch == ':' && at(i + 1) == ':' {
            i += 2;
            Some(Tok::PathSep)
        } else {
            // Punctuation; a lifetime's quote too (its name follows as an identifier).
            i += 1;
            Some(Tok::Punct(ch))
        };
        if let Some(tok) = tok {
            out.push(Token {
                tok,
                line: start_line,
            });
        }
    }
    out
}

/// The end of the identifier or number at `i`.
fn word_end(c: &[char], mut i: usize) -> usize {
    while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
        i += 1;
    }
    i
}

/// The end of a char literal whose opening quote is just before `i` ('a', '\n', '\u{..}').
fn skip_char(c: &[char], mut i: usize) -> usize {
    if c.get(i) == Some(&'\\') {
        i += 2;
    }
    while i < c.len() && c[i] != '\'' {
        i += 1;
    }
    i + 1
}

/// The end of a `"..."` literal whose opening quote is just before `i`.
fn skip_quoted(c: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < c.len() {
        match c[i] {
            '\\' => {
                *line += usize::from(c.get(i + 1) == Some(&'\n'));
                i += 2;
            }
            '"' => return i + 1,
            ch => {
                *line += usize::from(ch == '\n');
                i += 1;
            }
        }
    }
    i
}

/// A path reaching the crate root, from the segment after the root on.
#[derive(Debug, Clone)]
struct RootRef {
    /// `crate` or `super::super`, as written.
    root: String,
    segments: Vec<String>,
    line: usize,
}

/// One leaf of a `use` tree: `a::b::{c, d as e}` gives `[a, b, c]` and `[a, b, d]` (alias `e`).
#[derive(Debug, Clone)]
struct UsePath {
    segments: Vec<String>,
    alias: Option<String>,
    line: usize,
}

/// What one file says, test items left out.
#[derive(Debug, Default)]
struct Scan {
    refs: Vec<RootRef>,
    /// `mod x;` of the file itself (not inside an inline module).
    mods: Vec<String>,
    /// `#[cfg(test)] mod x;` of the file itself.
    test_mods: Vec<String>,
    /// The file's own `use` items (for the re-exports of lib.rs).
    uses: Vec<UsePath>,
    /// The file opens with `#![cfg(test)]`.
    test_only: bool,
}

fn is_ident(t: Option<&Token>, word: &str) -> bool {
    matches!(t, Some(Token { tok: Tok::Ident(w), .. }) if w == word)
}

fn is_punct(t: Option<&Token>, ch: char) -> bool {
    matches!(t, Some(Token { tok: Tok::Punct(p), .. }) if *p == ch)
}

fn is_sep(t: Option<&Token>) -> bool {
    matches!(
        t,
        Some(Token {
            tok: Tok::PathSep,
            ..
        })
    )
}

/// `depth`: how many modules deep the file is (`osdp/pd.rs`: 2), to know when
/// `super::` reaches the crate root.
fn scan(toks: &[Token], depth: usize) -> Scan {
    let mut scan = Scan::default();
    let mut braces = 0usize;
    // Inline modules (`mod tests { .. }`) open here: the brace depth inside each.
    let mut inline: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let at_file_level = braces == 0;
        match &toks[i].tok {
            Tok::Punct('#') => {
                let inner = is_punct(toks.get(i + 1), '!');
                let open = if inner { i + 2 } else { i + 1 };
                if !is_punct(toks.get(open), '[') {
                    i += 1;
                    continue;
                }
                let close = matching(toks, open);
                let test = is_test_cfg(&toks[open + 1..close.min(toks.len())]);
                i = close + 1;
                if test && inner && at_file_level {
                    scan.test_only = true;
                    return scan;
                }
                if test && !inner {
                    let (next, module) = skip_item(toks, i);
                    if let (Some(m), true) = (module, at_file_level) {
                        scan.test_mods.push(m);
                    }
                    i = next;
                }
            }
            Tok::Ident(w) if w == "mod" => {
                if let Some(Token {
                    tok: Tok::Ident(name),
                    ..
                }) = toks.get(i + 1)
                {
                    if is_punct(toks.get(i + 2), ';') && at_file_level {
                        scan.mods.push(name.clone());
                    } else if is_punct(toks.get(i + 2), '{') {
                        braces += 1;
                        inline.push(braces);
                        i += 3;
                        continue;
                    }
                }
                i += 1;
            }
            Tok::Ident(w) if w == "use" && at_file_level => {
                use_tree(toks, i + 1, &mut Vec::new(), None, &mut scan.uses);
                i += 1;
            }
            Tok::Ident(w) if w == "crate" && is_sep(toks.get(i + 1)) => {
                i = root_refs(toks, i + 2, "crate".to_owned(), &mut scan.refs);
            }
            Tok::Ident(w) if w == "super" && is_sep(toks.get(i + 1)) => {
                let mut n = 0;
                let mut j = i;
                while is_ident(toks.get(j), "super") && is_sep(toks.get(j + 1)) {
                    n += 1;
                    j += 2;
                }
                i = if n >= depth + inline.len() {
                    root_refs(toks, j, vec!["super"; n].join("::"), &mut scan.refs)
                } else {
                    j
                };
            }
            Tok::Punct('{') => {
                braces += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                if inline.last() == Some(&braces) {
                    inline.pop();
                }
                braces = braces.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    scan
}

/// Reads the path (or group) after a root at `i`; returns the index after it.
fn root_refs(toks: &[Token], i: usize, root: String, out: &mut Vec<RootRef>) -> usize {
    let mut leaves = Vec::new();
    let next = use_tree(toks, i, &mut Vec::new(), None, &mut leaves);
    out.extend(leaves.into_iter().map(|u| RootRef {
        root: root.clone(),
        segments: u.segments,
        line: u.line,
    }));
    next
}

/// Parses a path or `use` tree at `i` under `prefix`, adding its leaves; returns
/// the index after it. A group's braces are consumed whole.
fn use_tree(
    toks: &[Token],
    mut i: usize,
    prefix: &mut Vec<String>,
    line: Option<usize>,
    out: &mut Vec<UsePath>,
) -> usize {
    match toks.get(i).map(|t| &t.tok) {
        Some(Tok::Punct('{')) => {
            i += 1;
            loop {
                match toks.get(i).map(|t| &t.tok) {
                    None => return i,
                    Some(Tok::Punct('}')) => return i + 1,
                    Some(Tok::Ident(_) | Tok::Punct('{' | '*')) => {
                        i = use_tree(toks, i, &mut prefix.clone(), line, out);
                    }
                    Some(_) => i += 1,
                }
            }
        }
        Some(Tok::Punct('*')) => {
            let mut segments = prefix.clone();
            segments.push("*".to_owned());
            out.push(UsePath {
                segments,
                alias: None,
                line: line.unwrap_or(toks[i].line),
            });
            i + 1
        }
        Some(Tok::Ident(name)) => {
            let line = line.unwrap_or(toks[i].line);
            prefix.push(name.clone());
            i += 1;
            if is_sep(toks.get(i)) {
                return use_tree(toks, i + 1, prefix, Some(line), out);
            }
            let mut alias = None;
            if is_ident(toks.get(i), "as") {
                if let Some(Token {
                    tok: Tok::Ident(a), ..
                }) = toks.get(i + 1)
                {
                    alias = Some(a.clone());
                    i += 2;
                }
            }
            out.push(UsePath {
                segments: prefix.clone(),
                alias,
                line,
            });
            i
        }
        _ => {
            if let (false, Some(line)) = (prefix.is_empty(), line) {
                out.push(UsePath {
                    segments: prefix.clone(),
                    alias: None,
                    line,
                });
            }
            i
        }
    }
}

/// The index of the bracket closing the one at `open` (or the end).
fn matching(toks: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, t) in toks.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// `cfg(test)`, `cfg(all(.., test, ..))` or a `#[test]` function: code that exists only in tests.
fn is_test_cfg(attr: &[Token]) -> bool {
    let text: String = attr
        .iter()
        .map(|t| match &t.tok {
            Tok::Ident(w) => w.clone(),
            Tok::Punct(p) => p.to_string(),
            Tok::PathSep => "::".to_owned(),
            Tok::Lit => "_".to_owned(),
        })
        .collect();
    text == "cfg(test)"
        || text == "test"
        || text.ends_with("::test")
        || (text.starts_with("cfg(all(")
            && ["(test,", ",test,", ",test)", "(test)"]
                .iter()
                .any(|p| text.contains(p)))
}

/// Skips the item at `i` (with any further attributes): to its `;` or the end
/// of its `{ .. }` body. Returns the index after it, and the module's name when
/// it is `mod x;`.
fn skip_item(toks: &[Token], mut i: usize) -> (usize, Option<String>) {
    while is_punct(toks.get(i), '#') && is_punct(toks.get(i + 1), '[') {
        i = matching(toks, i + 1) + 1;
    }
    let start = i;
    let mut depth = 0usize;
    while i < toks.len() {
        match toks[i].tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            // A closing bracket of the enclosing code: the item ended before it.
            Tok::Punct(')' | ']' | '}') if depth == 0 => return (i, None),
            Tok::Punct('}') if depth == 1 => return (i + 1, None),
            Tok::Punct(')' | ']' | '}') => depth -= 1,
            Tok::Punct(';') if depth == 0 => {
                let module = match &toks[start..i] {
                    [.., m, Token {
                        tok: Tok::Ident(name),
                        ..
                    }] if is_ident(Some(m), "mod") => Some(name.clone()),
                    _ => None,
                };
                return (i + 1, module);
            }
            _ => {}
        }
        i += 1;
    }
    (i, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> Graph {
        Graph::of_files(files.iter().copied())
    }

    #[test]
    fn a_cycle_is_found_with_each_edge_s_place() {
        let g = graph(&[
            (
                "lib.rs",
                "pub mod config;\npub mod engine;\npub mod leaf;\n",
            ),
            (
                "config.rs",
                "use crate::leaf::X;\nuse crate::engine::Engine;\n",
            ),
            ("engine/mod.rs", "mod run;\n"),
            (
                "engine/run.rs",
                "// the run\n\nfn f() { let _ = crate::config::load(); }\n",
            ),
            ("leaf.rs", "pub struct X;\n"),
        ]);
        let cycle = g
            .check_acyclic()
            .expect_err("config and engine import each other");
        let text = cycle.to_string();
        assert!(
            text.starts_with("module cycle: config -> engine -> config"),
            "{text}"
        );
        assert!(
            text.contains("config -> engine: `crate::engine::Engine` at config.rs:2"),
            "{text}"
        );
        assert!(
            text.contains("engine -> config: `crate::config::load` at engine/run.rs:3"),
            "{text}"
        );
    }

    #[test]
    fn an_acyclic_graph_passes() {
        let g = graph(&[
            ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
            ("a.rs", "use crate::b::B;\nuse crate::c::C;\n"),
            ("b.rs", "use crate::c::C;\npub struct B;\n"),
            ("c.rs", "pub struct C;\n"),
        ]);
        assert!(g.check_acyclic().is_ok());
        assert_eq!(g.imports("a"), BTreeSet::from(["b", "c"]));
        assert_eq!(g.imports("b"), BTreeSet::from(["c"]));
        assert!(g.imports("c").is_empty());
    }

    #[test]
    fn test_code_is_left_out() {
        let g = graph(&[
            ("lib.rs", "pub mod a;\npub mod b;\n#[cfg(test)]\nmod fixtures;\n"),
            ("a.rs", "use crate::b::B;\n"),
            (
                "b.rs",
                "pub struct B;\n#[cfg(test)]\nmod tests {\n    use crate::a;\n    fn f() { crate::a::g(); }\n}\n\
                 #[cfg(test)]\nuse crate::a::A;\n#[cfg(all(test, unix))]\nfn h() -> crate::a::A { todo!() }\n\
                 #[cfg(test)]\nmod more;\n",
            ),
            ("b/tests.rs", "use crate::a;\n"),
            ("b/tests/deep.rs", "use crate::a;\n"),
            ("b/more.rs", "use crate::a;\n"),
            ("b/gated.rs", "#![cfg(test)]\nuse crate::a;\n"),
            ("fixtures.rs", "use crate::a;\n"),
        ]);
        assert!(g.check_acyclic().is_ok(), "{:?}", g.edges);
        assert!(g.imports("b").is_empty(), "{:?}", g.edges);
        assert_eq!(g.modules, BTreeSet::from(["a".to_owned(), "b".to_owned()]));
    }

    #[test]
    fn a_cfg_that_is_not_test_only_is_kept() {
        let g = graph(&[
            ("lib.rs", "pub mod a;\npub mod b;\n"),
            (
                "a.rs",
                "#[cfg(feature = \"testing\")]\nuse crate::b;\n#[cfg(any(test, unix))]\nfn f() { crate::b::g() }\n",
            ),
            ("b.rs", ""),
        ]);
        assert_eq!(g.edges.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 4]);
    }

    #[test]
    fn every_branch_of_a_group_counts() {
        let g = graph(&[
            ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\npub mod d;\n"),
            (
                "a.rs",
                "use crate::{\n    b,\n    c::{self, C as Sea},\n};\npub(crate) fn f() {}\n",
            ),
            ("b.rs", "use crate::{d::{x::Y, z}};\n"),
            ("c.rs", ""),
            ("d.rs", ""),
        ]);
        assert_eq!(g.imports("a"), BTreeSet::from(["b", "c"]));
        let lines: Vec<(&str, usize)> = g
            .edges
            .iter()
            .filter(|e| e.from == "a")
            .map(|e| (e.path.as_str(), e.line))
            .collect();
        assert_eq!(
            lines,
            [("crate::b", 2), ("crate::c::self", 3), ("crate::c::C", 3)]
        );
        assert_eq!(g.imports("b"), BTreeSet::from(["d"]));
    }

    #[test]
    fn super_counts_where_it_reaches_the_crate_root() {
        let g = graph(&[
            (
                "lib.rs",
                "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod e;\n",
            ),
            (
                "a.rs",
                "use super::b::B;\nmod inner { use super::x; use super::super::e; }\n",
            ),
            ("b/mod.rs", "mod part;\nuse super::{c, d::D};\n"),
            ("b/part.rs", "use super::B;\nuse super::super::d::D;\n"),
            ("c.rs", ""),
            ("d.rs", ""),
            ("e.rs", ""),
        ]);
        assert_eq!(g.imports("a"), BTreeSet::from(["b", "e"]));
        assert_eq!(g.imports("b"), BTreeSet::from(["c", "d"]));
        let paths: Vec<&str> = g.edges.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"super::super::d::D"), "{paths:?}");
    }

    #[test]
    fn comments_strings_and_unknown_names_are_not_imports() {
        let g = graph(&[
            ("lib.rs", "pub mod a;\npub mod b;\npub use b::Thing;\npub use b::Other as Renamed;\nfn root() {}\n"),
            (
                "a.rs",
                "// crate::b::X\n/* crate::b /* nested */ crate::b */\n/// crate::b\n\
                 const S: &str = \"crate::b \\\" crate::b\";\nconst R: &str = r#\"crate::b \"# ;\n\
                 const C: char = '\"'; const Q: u8 = b'\\''; fn l<'a>(x: &'a str) {}\n\
                 fn f() { crate::root(); }\nuse crate::Thing;\nuse crate::Renamed;\n",
            ),
            ("b.rs", "pub struct Thing;\npub struct Other;\n"),
        ]);
        let found: Vec<(&str, usize)> = g.edges.iter().map(|e| (e.path.as_str(), e.line)).collect();
        assert_eq!(found, [("crate::Thing", 8), ("crate::Renamed", 9)]);
    }

    #[test]
    fn layers_name_every_offending_import() {
        let g = graph(&[
            (
                "lib.rs",
                "pub mod event;\npub mod driver;\npub mod osdp;\npub mod lpr;\npub mod stray;\n",
            ),
            ("event.rs", "use crate::driver::Ctx;\n"),
            ("driver.rs", "use crate::event::E;\n"),
            ("osdp.rs", "use crate::driver::Ctx;\n"),
            (
                "lpr.rs",
                "use crate::driver::Ctx;\nuse crate::osdp::ct_eq;\n",
            ),
            ("stray.rs", ""),
        ]);
        let layers = [
            Layer::new("leaves", &["event"]),
            Layer::new("driver context", &["driver"]),
            Layer::new("drivers", &["osdp", "lpr", "gone"]),
        ];
        let broken = g.check_layers(&layers).expect_err("four problems");
        let text = broken.to_string();
        assert_eq!(broken.problems.len(), 4, "{text}");
        assert!(text.contains("`gone`, which is not a module"), "{text}");
        assert!(text.contains("module `stray` is in no layer"), "{text}");
        assert!(
            text.contains("event.rs:1: `event` (layer `leaves`) imports `crate::driver::Ctx` (module `driver`, layer `driver context`), a later layer"),
            "{text}"
        );
        assert!(
            text.contains("lpr.rs:2: `lpr` imports `crate::osdp::ct_eq` (module `osdp`), but modules of the layer `drivers` may not import each other"),
            "{text}"
        );
        let fixed = [
            Layer::new("leaves", &["event"]),
            Layer::new("driver context", &["driver"]),
            Layer::new("drivers", &["osdp", "lpr", "stray"]),
        ];
        let g = graph(&[
            (
                "lib.rs",
                "pub mod event;\npub mod driver;\npub mod osdp;\npub mod lpr;\npub mod stray;\n",
            ),
            ("driver.rs", "use crate::event::E;\n"),
            ("lpr.rs", "use crate::{driver::Ctx, event::E};\n"),
        ]);
        assert!(g.check_layers(&fixed).is_ok());
    }

    #[test]
    fn a_crate_on_disk_is_read_from_its_src_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        for (path, text) in [
            ("lib.rs", "pub mod a;\npub mod b;\n"),
            ("a/mod.rs", "pub mod x;\n"),
            ("a/x.rs", "use crate::b;\n"),
            ("a/tests/helpers.rs", "use crate::b;\n"),
            ("b.rs", "\nuse crate::a::x;\n"),
        ] {
            let file = src.join(path);
            std::fs::create_dir_all(file.parent().expect("a folder")).expect("mkdir");
            std::fs::write(&file, text).expect("write");
        }
        let g = Graph::of_src(&src).expect("read");
        let cycle = g.check_acyclic().expect_err("a and b import each other");
        let text = cycle.to_string();
        assert!(text.contains("a -> b -> a"), "{text}");
        assert!(
            text.contains(&format!("{}:2", src.join("b.rs").display())),
            "{text}"
        );
        assert_eq!(g.edges.len(), 2, "{:?}", g.edges);
        assert!(Graph::of_src(dir.path()).is_err(), "no lib.rs there");
    }
}
