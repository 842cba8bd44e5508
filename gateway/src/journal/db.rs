//! The sled database the journal lives in, and getting it back after a write
//! error.
//!
//! sled 0.34 remembers the first I/O error of its log (a full disk, a read-only
//! remount) and fails every later write with it, even once the cause is gone:
//! only a fresh open clears it. So the daemon gives the journal a database of
//! its own (`data_dir/journal`) that the writer can close and open again, and
//! nobody else keeps a handle on it: readers take the current tree for each
//! read. A database handed in by a caller (tests, benches) is used as it is.

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::Duration;

use super::JournalError;

/// The tree that holds the journal (also its name in a shared database).
pub const TREE: &str = "journal";

/// The journal's database: fixed, or reopenable from its folder.
pub(crate) struct JournalDb {
    /// The folder to reopen from; `None` for a database handed in.
    path: Option<PathBuf>,
    cache_bytes: u64,
    /// `None` while closed for a reopen (or when the reopen failed).
    current: RwLock<Option<(sled::Db, sled::Tree)>>,
}

impl JournalDb {
    /// A database handed in; never reopened.
    pub fn fixed(db: &sled::Db) -> Result<Self, JournalError> {
        let tree = db.open_tree(TREE)?;
        Ok(Self {
            path: None,
            cache_bytes: 0,
            current: RwLock::new(Some((db.clone(), tree))),
        })
    }

    /// Opens the database in `path`, waiting while a previous holder lets go.
    pub async fn open(path: &Path, cache_bytes: u64) -> Result<Self, JournalError> {
        let (db, tree) = open_waiting(path, cache_bytes).await?;
        Ok(Self {
            path: Some(path.to_owned()),
            cache_bytes,
            current: RwLock::new(Some((db, tree))),
        })
    }

    pub fn reopenable(&self) -> bool {
        self.path.is_some()
    }

    /// The journal's tree now; an error while it is being reopened.
    pub fn tree(&self) -> Result<sled::Tree, JournalError> {
        self.with(|(_, t)| t.clone())
    }

    pub fn db(&self) -> Result<sled::Db, JournalError> {
        self.with(|(d, _)| d.clone())
    }

    fn with<T>(&self, f: impl FnOnce(&(sled::Db, sled::Tree)) -> T) -> Result<T, JournalError> {
        let guard = match self.current.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard.as_ref().map(f).ok_or(JournalError::Reopening)
    }

    /// Closes the database and opens it again, which clears sled's remembered
    /// error. What was durable stays; what sled held only in memory is gone,
    /// which is why the writer re-applies its batch until it is durable.
    pub async fn reopen(&self) -> Result<(), JournalError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let old = match self.current.write() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        // sled flushes on the last drop (and fails again on a full disk): off the runtime.
        if let Some(old) = old {
            let _ = tokio::task::spawn_blocking(move || drop(old)).await;
        }
        let (db, tree) = open_waiting(path, self.cache_bytes).await?;
        match self.current.write() {
            Ok(mut g) => *g = Some((db, tree)),
            Err(p) => *p.into_inner() = Some((db, tree)),
        }
        Ok(())
    }

    /// Bytes of the database's files on disk (what the disk budget measures).
    pub fn size_on_disk(&self) -> u64 {
        match &self.path {
            Some(path) => dir_bytes(path),
            None => self
                .db()
                .ok()
                .and_then(|db| db.size_on_disk().ok())
                .unwrap_or(0),
        }
    }
}

/// Opens a sled database, waiting up to 10 s while another holder (a previous
/// run, or handles of this one still being dropped) lets go of its lock.
async fn open_waiting(
    path: &Path,
    cache_bytes: u64,
) -> Result<(sled::Db, sled::Tree), JournalError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let p = path.to_owned();
        let opened = tokio::task::spawn_blocking(move || {
            let db = sled::Config::new()
                .path(p)
                .cache_capacity(cache_bytes.max(1024 * 1024))
                .open()?;
            let tree = db.open_tree(TREE)?;
            Ok::<_, sled::Error>((db, tree))
        })
        .await
        .map_err(|_| JournalError::Stopped)?;
        match opened {
            Ok(pair) => return Ok(pair),
            Err(sled::Error::Io(e))
                if (e.kind() == std::io::ErrorKind::WouldBlock
                    || e.to_string().contains("could not acquire lock"))
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Space the files under `dir` take on disk (allocated blocks, not lengths).
fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// Moves a journal kept in the gateway's main store (before it had a database
/// of its own) into `journal`, once: only when `journal` is still empty.
pub fn migrate(main: &sled::Db, journal: &sled::Tree) -> Result<u64, sled::Error> {
    if !main
        .tree_names()
        .iter()
        .any(|n| n.as_ref() == TREE.as_bytes())
    {
        return Ok(0);
    }
    let old = main.open_tree(TREE)?;
    if old.is_empty() || !journal.is_empty() {
        return Ok(0);
    }
    let mut moved = 0u64;
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    for kv in old.iter() {
        let (k, v) = kv?;
        batch.insert(k, v);
        in_batch += 1;
        moved += 1;
        if in_batch == 10_000 {
            journal.apply_batch(std::mem::take(&mut batch))?;
            in_batch = 0;
        }
    }
    journal.apply_batch(batch)?;
    journal.flush()?;
    main.drop_tree(TREE)?;
    main.flush()?;
    Ok(moved)
}
