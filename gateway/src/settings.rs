//! What every component's config section shares: the problem a check reports
//! (a key relative to the section, and a message) and the checks of files
//! named in the config. Each component owns its section and its checks (as each
//! driver owns its `DriverConfig` variant); `config` parses the file, places
//! each problem at its line and checks the references between sections.

use std::path::{Path, PathBuf};

pub use drivers::ConfigProblem as Problem;

/// A path from the config file, resolved against the file's folder.
pub fn resolve(base_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base_dir.join(p)
    }
}

/// A problem when `path` is not a readable file.
pub fn check_file(key: &str, path: &Path) -> Option<Problem> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(_) => Some(Problem::new(
            key,
            format!("{} is not a file", path.display()),
        )),
        Err(e) => Some(Problem::new(
            key,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Characters that would break an MQTT topic level.
pub fn topic_safe(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '+', '#', '\0']) && s.len() <= 64
}

/// The message for a value that is not [`topic_safe`].
pub const TOPIC_SAFE: &str = "must be 1-64 characters without / + #";
