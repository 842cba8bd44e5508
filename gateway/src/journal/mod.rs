//! The append-only journal in sled: every pass, refusal, device change and alarm,
//! numbered with a gap-free `seq`, durable before anyone forwards or shows it.
//! The uplink and the console read from here only.
//!
//! - `config`: the `[retention]` section and its checks.
//! - `store`: the key layout in sled.
//! - `writer`: the single writer task (numbering, group commit, fsync).
//! - `retention`: eviction by age and disk budget, counting unforwarded losses.
//! - `search`: events and past alarms for the console, newest or oldest first.

pub mod config;
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
pub use store::Stored;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// Why the journal could not do something.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal storage: {0}")]
    Storage(#[from] sled::Error),
    #[error("the journal writer has stopped")]
    Stopped,
    #[error("{0}")]
    Decode(#[from] crate::contract::DecodeError),
}

/// Drafts to number and store, and maybe someone waiting for them.
pub(crate) struct AppendReq {
    drafts: Vec<Draft>,
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
    tree: sled::Tree,
    db: sled::Db,
    tx: mpsc::UnboundedSender<WriteReq>,
    /// Appends holding an alarm: the writer takes them before queued pass events.
    urgent: mpsc::UnboundedSender<WriteReq>,
    committed: watch::Receiver<u64>,
    queued: Arc<AtomicU64>,
    ids: Arc<(String, String)>,
}

impl Journal {
    /// Opens the journal in `db` and starts its writer task.
    pub fn open(db: &sled::Db, estate: &str, gateway: &str) -> Result<Journal, JournalError> {
        let tree = db.open_tree("journal")?;
        let last = last_seq(&tree)?;
        let (committed_tx, committed) = watch::channel(last);
        let (tx, rx) = mpsc::unbounded_channel();
        let (urgent, urgent_rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicU64::new(0));
        let ids = Arc::new((estate.to_owned(), gateway.to_owned()));
        let w = writer::Writer::new(
            db.clone(),
            tree.clone(),
            last,
            ids.clone(),
            committed_tx,
            queued.clone(),
        );
        tokio::spawn(w.run(urgent_rx, rx));
        Ok(Journal {
            tree,
            db: db.clone(),
            tx,
            urgent,
            committed,
            queued,
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
        let (reply, rx) = oneshot::channel();
        self.queued
            .fetch_add(drafts.len() as u64, Ordering::Relaxed);
        self.lane_for(&drafts)
            .send(WriteReq::Append(AppendReq {
                drafts,
                reply: Some(reply),
            }))
            .map_err(|_| JournalError::Stopped)?;
        rx.await.map_err(|_| JournalError::Stopped)
    }

    /// Appends without waiting (the engine's path: a door must not wait for a disk).
    /// Records become visible to readers once durable.
    pub fn append_nowait(&self, drafts: Vec<Draft>) -> Result<(), JournalError> {
        if drafts.is_empty() {
            return Ok(());
        }
        self.queued
            .fetch_add(drafts.len() as u64, Ordering::Relaxed);
        self.lane_for(&drafts)
            .send(WriteReq::Append(AppendReq {
                drafts,
                reply: None,
            }))
            .map_err(|_| JournalError::Stopped)
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
        Ok(self.tree.get(store::key(store::RECORD, seq))?)
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
    pub fn range(
        &self,
        from: u64,
        to: u64,
        newest_first: bool,
    ) -> impl Iterator<Item = (u64, sled::IVec)> {
        let iter = self
            .tree
            .range(store::key(store::RECORD, from)..=store::key(store::RECORD, to));
        let iter: Box<dyn Iterator<Item = _>> = if newest_first {
            Box::new(iter.rev())
        } else {
            Box::new(iter)
        };
        iter.filter_map(|kv| kv.ok())
            .filter_map(|(k, v)| store::seq_of(&k).map(|s| (s, v)))
    }

    /// Seqs of alarm records from `from` on, oldest first.
    pub fn alarm_seqs(&self, from: u64) -> impl Iterator<Item = u64> {
        self.tree
            .range(store::key(store::ALARM, from)..=store::key(store::ALARM, u64::MAX))
            .keys()
            .filter_map(|k| k.ok())
            .filter_map(|k| store::seq_of(&k))
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
        Ok(self.tree.get(store::named(store::SNAPSHOT, sha256))?)
    }

    /// A named position (the uplink's acknowledged seq per lane).
    pub fn cursor(&self, name: &str) -> Result<u64, JournalError> {
        let v = self
            .tree
            .get(store::named(store::META, &format!("cursor.{name}")))?;
        Ok(store::u64_value(v.as_deref()))
    }

    /// Stores a named position. Not flushed here: losing the latest moves after
    /// a crash only means resending (at least once), never losing.
    pub fn set_cursor(&self, name: &str, seq: u64) -> Result<(), JournalError> {
        self.tree.insert(
            store::named(store::META, &format!("cursor.{name}")),
            &seq.to_be_bytes(),
        )?;
        Ok(())
    }

    /// Bytes of payloads and snapshots stored (the disk budget's measure).
    pub fn stored_bytes(&self) -> u64 {
        let v = self
            .tree
            .get(store::named(store::META, store::META_BYTES))
            .ok()
            .flatten();
        store::u64_value(v.as_deref())
    }

    /// Stores everything queued, flushes and stops the writer; appends fail after
    /// this. The store is released once every handle is dropped.
    pub async fn close(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(WriteReq::Close(reply)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Flushes everything (cursors included) to disk; used at shutdown.
    pub async fn flush(&self) -> Result<(), JournalError> {
        self.db.flush_async().await?;
        Ok(())
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
