//! The append-only journal in sled: every pass, refusal, device change and alarm,
//! numbered with a gap-free `seq`, durable before anyone forwards or shows it.
//! The uplink and the console read from here only.
//!
//! - `config`: the `[retention]` section and its checks.
//! - `db`: the journal's own sled database, reopened after a write error.
//! - `store`: the key layout in sled.
//! - `writer`: the single writer task (numbering, group commit, fsync,
//!   retrying and reopening until the disk takes a batch).
//! - `health`: whether records are being made durable, and what was refused.
//! - `retention`: eviction by age and disk budget, counting unforwarded losses.
//! - `search`: events and past alarms for the console, newest or oldest first.

pub mod config;
mod db;
pub mod health;
pub mod retention;
pub mod search;
mod store;
mod writer;

// The record types live in the contract; re-exported for the journal's users.
pub use crate::contract::{
    Ack, AlarmRecord, AlarmState, AlarmType, DecisionRef, Draft, EventAction, EventKind,
    EventRecord, InputRef, PersonRef, Record, RecordBody, SensorRef, Severity, SnapshotRef, TagRef,
};
pub use config::RetentionSection;
pub use health::{Health, Limits};
pub use store::Stored;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

use db::JournalDb;
use health::Gauge;

/// Why the journal could not do something.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal storage: {0}")]
    Storage(#[from] sled::Error),
    #[error("the journal writer has stopped")]
    Stopped,
    #[error("{0}")]
    Decode(#[from] crate::contract::DecodeError),
    #[error("the journal's store is being reopened after a write error")]
    Reopening,
    /// Memory for records waiting for the disk is used up: the records were
    /// refused (and counted), not queued.
    #[error("the journal cannot keep up (the disk is failing or full): {0} records refused")]
    Full(usize),
}

/// Drafts to number and store, and maybe someone waiting for them.
pub(crate) struct AppendReq {
    drafts: Vec<Draft>,
    /// Memory the drafts hold while they wait (the pending budget's measure).
    bytes: u64,
    reply: Option<oneshot::Sender<Vec<Record>>>,
}

/// What the writer is asked to do; it alone changes the journal's records.
pub(crate) enum WriteReq {
    Append(AppendReq),
    Evict {
        seqs: Vec<u64>,
        reply: oneshot::Sender<Evicted>,
    },
    /// Store what is queued, flush, and stop.
    Close(oneshot::Sender<()>),
}

/// What an eviction removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    pub records: u64,
    pub snapshots: u64,
}

/// A handle on the journal; clones share it.
#[derive(Clone)]
pub struct Journal {
    db: Arc<JournalDb>,
    tx: mpsc::UnboundedSender<WriteReq>,
    /// Appends holding an alarm: the writer takes them before queued pass events.
    urgent: mpsc::UnboundedSender<WriteReq>,
    committed: watch::Receiver<u64>,
    queued: Arc<AtomicU64>,
    gauge: Arc<Gauge>,
    ids: Arc<(String, String)>,
}

impl Journal {
    /// Opens the journal in a database of the caller's (tests, benches, tools):
    /// it is not reopened after a write error. Starts the writer task.
    pub fn open(db: &sled::Db, estate: &str, gateway: &str) -> Result<Journal, JournalError> {
        Self::start(JournalDb::fixed(db)?, estate, gateway, Limits::default())
    }

    /// Opens the journal in its own database in `dir` (the daemon's way): the
    /// writer reopens it after a write error. A journal still kept in the
    /// gateway's main store `legacy` (older versions) is moved over first.
    pub async fn open_dir(
        dir: &Path,
        cache_mb: u64,
        legacy: Option<&sled::Db>,
        estate: &str,
        gateway: &str,
        limits: Limits,
    ) -> Result<Journal, JournalError> {
        let jdb = JournalDb::open(dir, cache_mb.saturating_mul(1024 * 1024)).await?;
        if let Some(main) = legacy {
            let moved = db::migrate(main, &jdb.tree()?)?;
            if moved > 0 {
                tracing::info!(moved, "journal moved to its own store {}", dir.display());
            }
        }
        Self::start(jdb, estate, gateway, limits)
    }

    fn start(
        jdb: JournalDb,
        estate: &str,
        gateway: &str,
        limits: Limits,
    ) -> Result<Journal, JournalError> {
        let db = Arc::new(jdb);
        let tree = db.tree()?;
        let last = last_seq(&tree)?;
        let (committed_tx, committed) = watch::channel(last);
        let (tx, rx) = mpsc::unbounded_channel();
        let (urgent, urgent_rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicU64::new(0));
        let gauge = Arc::new(Gauge::new(limits));
        let ids = Arc::new((estate.to_owned(), gateway.to_owned()));
        let w = writer::Writer::new(
            db.clone(),
            &tree,
            last,
            ids.clone(),
            committed_tx,
            queued.clone(),
            gauge.clone(),
        );
        tokio::spawn(w.run(urgent_rx, rx));
        Ok(Journal {
            db,
            tx,
            urgent,
            committed,
            queued,
            gauge,
            ids,
        })
    }

    pub fn estate(&self) -> &str {
        &self.ids.0
    }

    pub fn gateway(&self) -> &str {
        &self.ids.1
    }

    /// Appends and waits until the records are durable; returns them numbered.
    pub async fn append(&self, drafts: Vec<Draft>) -> Result<Vec<Record>, JournalError> {
        let rx = self.append_notify(drafts)?;
        rx.await.map_err(|_| JournalError::Stopped)
    }

    /// Appends without waiting (the engine's path: a door must not wait for a disk).
    /// Records become visible to readers once durable.
    pub fn append_nowait(&self, drafts: Vec<Draft>) -> Result<(), JournalError> {
        if drafts.is_empty() {
            return Ok(());
        }
        self.send(drafts, None)
    }

    /// Appends, and says on the returned channel when the records are durable
    /// (it closes without a value if they never are: refused at a stop).
    pub fn append_notify(
        &self,
        drafts: Vec<Draft>,
    ) -> Result<oneshot::Receiver<Vec<Record>>, JournalError> {
        let (reply, rx) = oneshot::channel();
        self.send(drafts, Some(reply))?;
        Ok(rx)
    }

    /// Queues drafts for the writer within the pending budget: past it, pass
    /// and device records are refused and counted (alarms have a reserve of
    /// their own), so a disk that does not take writes cannot exhaust memory.
    fn send(
        &self,
        drafts: Vec<Draft>,
        reply: Option<oneshot::Sender<Vec<Record>>>,
    ) -> Result<(), JournalError> {
        let alarm = drafts.iter().any(|d| d.body.is_alarm());
        let bytes = drafts.iter().map(health::draft_bytes).sum();
        if !self.gauge.admit(bytes, drafts.len() as u64, alarm) {
            return Err(JournalError::Full(drafts.len()));
        }
        self.queued
            .fetch_add(drafts.len() as u64, Ordering::Relaxed);
        let lane = self.lane_for(&drafts);
        let n = drafts.len() as u64;
        lane.send(WriteReq::Append(AppendReq {
            drafts,
            bytes,
            reply,
        }))
        .map_err(|_| {
            self.gauge.release(bytes);
            self.queued.fetch_sub(n, Ordering::Relaxed);
            JournalError::Stopped
        })
    }

    /// Appends with an alarm jump the queue of pass events waiting for the disk:
    /// they are numbered and made durable first (`ts` keeps when things happened).
    fn lane_for(&self, drafts: &[Draft]) -> &mpsc::UnboundedSender<WriteReq> {
        if drafts.iter().any(|d| d.body.is_alarm()) {
            &self.urgent
        } else {
            &self.tx
        }
    }

    /// The highest durable seq; changes wake readers (uplink, console live feed).
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    pub fn last_committed(&self) -> u64 {
        *self.committed.borrow()
    }

    /// Records handed to the writer and not yet durable.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// The raw stored record at `seq`, if still kept.
    pub fn get_raw(&self, seq: u64) -> Result<Option<sled::IVec>, JournalError> {
        Ok(self.db.tree()?.get(store::key(store::RECORD, seq))?)
    }

    /// The record at `seq`, decoded.
    pub fn get(&self, seq: u64) -> Result<Option<Record>, JournalError> {
        match self.get_raw(seq)? {
            Some(raw) => match Stored::decode(&raw) {
                Some(s) => Ok(Some(Record::from_json(s.json)?)),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Stored records with `from <= seq <= to`, oldest first (or newest first).
    /// Stops at the first read error (a store being reopened reads as empty):
    /// a failing iterator must not keep a reader spinning.
    pub fn range(
        &self,
        from: u64,
        to: u64,
        newest_first: bool,
    ) -> impl Iterator<Item = (u64, sled::IVec)> {
        let iter: Box<dyn Iterator<Item = _>> = match self.db.tree() {
            Ok(tree) => {
                let iter =
                    tree.range(store::key(store::RECORD, from)..=store::key(store::RECORD, to));
                if newest_first {
                    Box::new(iter.rev())
                } else {
                    Box::new(iter)
                }
            }
            Err(_) => Box::new(std::iter::empty()),
        };
        iter.map_while(|kv| kv.ok())
            .filter_map(|(k, v)| store::seq_of(&k).map(|s| (s, v)))
    }

    /// Seqs of alarm records from `from` on, oldest first.
    pub fn alarm_seqs(&self, from: u64) -> impl Iterator<Item = u64> {
        let iter: Box<dyn Iterator<Item = _>> = match self.db.tree() {
            Ok(tree) => Box::new(
                tree.range(store::key(store::ALARM, from)..=store::key(store::ALARM, u64::MAX))
                    .keys(),
            ),
            Err(_) => Box::new(std::iter::empty()),
        };
        iter.map_while(|k| k.ok()).filter_map(|k| store::seq_of(&k))
    }

    /// The oldest seq still kept (0 when empty).
    pub fn first_seq(&self) -> u64 {
        self.range(0, u64::MAX, false)
            .next()
            .map(|(s, _)| s)
            .unwrap_or(0)
    }

    /// A snapshot by its sha256 (hex).
    pub fn snapshot(&self, sha256: &str) -> Result<Option<sled::IVec>, JournalError> {
        Ok(self.db.tree()?.get(store::named(store::SNAPSHOT, sha256))?)
    }

    /// A named position (the uplink's acknowledged seq per lane).
    pub fn cursor(&self, name: &str) -> Result<u64, JournalError> {
        let v = self
            .db
            .tree()?
            .get(store::named(store::META, &format!("cursor.{name}")))?;
        Ok(store::u64_value(v.as_deref()))
    }

    /// Stores a named position. Not flushed here: losing the latest moves after
    /// a crash only means resending (at least once), never losing.
    pub fn set_cursor(&self, name: &str, seq: u64) -> Result<(), JournalError> {
        self.db.tree()?.insert(
            store::named(store::META, &format!("cursor.{name}")),
            &seq.to_be_bytes(),
        )?;
        Ok(())
    }

    /// Bytes of payloads and snapshots stored (the disk budget's measure).
    pub fn stored_bytes(&self) -> u64 {
        let v = self
            .db
            .tree()
            .ok()
            .and_then(|t| t.get(store::named(store::META, store::META_BYTES)).ok())
            .flatten();
        store::u64_value(v.as_deref())
    }

    /// Bytes the journal's files take on disk (sled's own overhead included).
    pub fn disk_bytes(&self) -> u64 {
        self.db.size_on_disk()
    }

    /// Whether records are being made durable, and if not why.
    pub fn health(&self) -> Health {
        self.gauge.health()
    }

    /// Wakes on every change of [`health`](Self::health).
    pub fn health_changes(&self) -> watch::Receiver<Health> {
        self.gauge.subscribe()
    }

    /// Whether the journal's own writes succeed now.
    pub fn writes_ok(&self) -> bool {
        self.gauge.writes_ok()
    }

    /// The gateway's main store failed (`Some`): said in [`health`](Self::health).
    pub fn set_store_error(&self, error: Option<String>) {
        self.gauge.set_store_error(error);
    }

    /// Records refused since start (pending budget used up, or not written at a stop).
    pub fn refused_total(&self) -> u64 {
        self.gauge.refused_total()
    }

    /// Records refused since the last call, for a `data_loss` alarm.
    pub fn take_refused(&self) -> u64 {
        self.gauge.take_refused()
    }

    /// Memory held by records waiting for the disk.
    pub fn pending_bytes(&self) -> u64 {
        self.gauge.pending_bytes()
    }

    /// Stores everything queued, flushes and stops the writer; appends fail after
    /// this. Waits at most `limit`: a disk that takes nothing must not hold up a
    /// stop, and what could not be stored is counted and said.
    /// The store is released once every handle is dropped.
    pub async fn close(&self, limit: std::time::Duration) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(WriteReq::Close(reply)).is_ok()
            && tokio::time::timeout(limit, rx).await.is_err()
        {
            let lost = self.queued();
            self.gauge.refuse(lost);
            tracing::error!(
                lost,
                "journal: the disk did not take the last records within {limit:?}; they are lost"
            );
        }
    }

    /// Removes the records at `seqs` (retention); done by the writer, in order
    /// with appends.
    pub async fn evict(&self, seqs: Vec<u64>) -> Result<Evicted, JournalError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriteReq::Evict { seqs, reply })
            .map_err(|_| JournalError::Stopped)?;
        rx.await.map_err(|_| JournalError::Stopped)
    }
}

/// The seq to continue from: the newest record, or the eviction floor when empty.
fn last_seq(tree: &sled::Tree) -> Result<u64, sled::Error> {
    let newest = tree
        .range(store::key(store::RECORD, 0)..=store::key(store::RECORD, u64::MAX))
        .next_back()
        .transpose()?
        .and_then(|(k, _)| store::seq_of(&k));
    let floor = store::u64_value(
        tree.get(store::named(store::META, store::META_EVICTED_UPTO))?
            .as_deref(),
    );
    Ok(newest.unwrap_or(0).max(floor))
}
