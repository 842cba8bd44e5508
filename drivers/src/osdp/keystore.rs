//! Where a PD's secure channel key lives once install mode has set it: the
//! device's state folder. A key is written as `scbk.pending` before osdp_KEYSET
//! is sent and renamed to `scbk` when the PD acknowledged it, so a crash
//! between the two loses no key: both are tried at the next handshake.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::config::parse_key;
use super::sc::Key;

pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    fn current(&self) -> PathBuf {
        self.dir.join("scbk")
    }

    fn pending(&self) -> PathBuf {
        self.dir.join("scbk.pending")
    }

    fn read(path: &Path) -> Option<Key> {
        let text = std::fs::read_to_string(path).ok()?;
        match parse_key(&text) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!("ignoring the stored key {}: {e}", path.display());
                None
            }
        }
    }

    /// Stored keys to try, the confirmed one first.
    pub fn keys(&self) -> Vec<Key> {
        [self.current(), self.pending()]
            .iter()
            .filter_map(|p| Self::read(p))
            .collect()
    }

    fn write(path: &Path, key: &Key) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            writeln!(f, "{}", hex::encode(key))?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }

    /// Keeps a key about to be sent with osdp_KEYSET.
    pub fn stage(&self, key: &Key) -> std::io::Result<()> {
        Self::write(&self.pending(), key)
    }

    /// When the reader was last heard from, as kept across restarts (Unix seconds).
    pub fn last_contact(&self) -> Option<std::time::SystemTime> {
        let text = std::fs::read_to_string(self.dir.join("last_contact")).ok()?;
        let secs: u64 = text.trim().parse().ok()?;
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }

    /// Keeps when the reader was last heard from (best effort: a failure only
    /// makes the next start's first reads count as late).
    pub fn set_last_contact(&self, at: std::time::SystemTime) {
        let secs = at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let tmp = self.dir.join("last_contact.tmp");
            std::fs::write(&tmp, format!("{secs}\n"))?;
            std::fs::rename(&tmp, self.dir.join("last_contact"))
        };
        if let Err(e) = write() {
            tracing::warn!(
                "cannot keep the reader's last contact in {}: {e}",
                self.dir.display()
            );
        }
    }

    /// The PD acknowledged the staged key: it becomes the key.
    pub fn commit(&self) -> std::io::Result<()> {
        std::fs::rename(self.pending(), self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_then_commit() {
        let dir = tempfile::tempdir().unwrap();
        let ks = KeyStore::new(&dir.path().join("dev"));
        assert!(ks.keys().is_empty());
        ks.stage(&[1; 16]).unwrap();
        assert_eq!(ks.keys(), vec![[1; 16]]);
        ks.commit().unwrap();
        assert_eq!(ks.keys(), vec![[1; 16]]);
        assert!(!dir.path().join("dev/scbk.pending").exists());
        let text = std::fs::read_to_string(dir.path().join("dev/scbk")).unwrap();
        assert_eq!(text.trim(), "01".repeat(16));
        assert!(ks.last_contact().is_none());
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        ks.set_last_contact(t);
        assert_eq!(ks.last_contact(), Some(t));
    }
}
