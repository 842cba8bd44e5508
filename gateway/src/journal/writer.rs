//! The journal's single writer. It alone assigns `seq`, so numbering is gap-free
//! without locks. Everything queued while one batch is being made durable goes
//! into the next one (group commit): one fsync for many records.
//!
//! A failing disk (full, read-only) is retried with backoff while the records
//! stay queued in memory (within the pending budget, see `health`): nobody
//! sees them before they are durable. sled keeps failing after its first I/O
//! error, so each retry reopens the journal's database first; re-applying a
//! batch is harmless, since it only sets keys to values computed once.

use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

use super::db::JournalDb;
use super::health::Gauge;
use super::store::{self, Stored};
use super::WriteReq;
use crate::contract::{Record, SnapshotRef};

/// At most this many records in one batch, to bound a batch's memory and the
/// wait of an alarm queued behind a burst.
const MAX_BATCH: usize = 256;

pub(super) struct Writer {
    db: Arc<JournalDb>,
    gauge: Arc<Gauge>,
    last_seq: u64,
    ids: Arc<(String, String)>,
    committed: watch::Sender<u64>,
    queued: Arc<AtomicU64>,
    /// Payload and snapshot bytes stored, mirrored in `m bytes`.
    bytes: u64,
}

impl Writer {
    pub fn new(
        db: Arc<JournalDb>,
        tree: &sled::Tree,
        last_seq: u64,
        ids: Arc<(String, String)>,
        committed: watch::Sender<u64>,
        queued: Arc<AtomicU64>,
        gauge: Arc<Gauge>,
    ) -> Self {
        Self {
            db,
            gauge,
            last_seq,
            ids,
            bytes: store::u64_value(
                tree.get(store::named(store::META, store::META_BYTES))
                    .ok()
                    .flatten()
                    .as_deref(),
            ),
            committed,
            queued,
        }
    }

    pub async fn run(
        mut self,
        mut urgent: mpsc::UnboundedReceiver<WriteReq>,
        mut rx: mpsc::UnboundedReceiver<WriteReq>,
    ) {
        let mut reqs = Vec::new();
        loop {
            let (first, is_urgent) = tokio::select! {
                biased;
                Some(r) = urgent.recv() => (r, true),
                r = rx.recv() => match r {
                    Some(r) => (r, false),
                    None => break,
                },
            };
            let mut next = Some(first);
            let mut count = 0;
            while let Some(req) = next.take() {
                match req {
                    WriteReq::Append(a) => {
                        count += a.drafts.len();
                        reqs.push(a);
                    }
                    WriteReq::Evict { seqs, reply } => {
                        // Keep order: what was appended before the eviction is stored first.
                        if !reqs.is_empty() {
                            self.commit(&mut reqs).await;
                            count = 0;
                        }
                        let outcome = self.evict(&seqs).await;
                        let _ = reply.send(outcome);
                    }
                    WriteReq::Close(reply) => {
                        while let Ok(WriteReq::Append(a)) = urgent.try_recv() {
                            reqs.push(a);
                        }
                        if !reqs.is_empty() {
                            self.commit(&mut reqs).await;
                        }
                        self.final_flush().await;
                        let _ = reply.send(());
                        return;
                    }
                }
                if count < MAX_BATCH {
                    // An urgent batch holds only urgent appends, so it is small and quick;
                    // a normal batch takes urgent ones that came meanwhile first.
                    next = if is_urgent {
                        urgent.try_recv().ok()
                    } else {
                        urgent.try_recv().ok().or_else(|| rx.try_recv().ok())
                    };
                }
            }
            if !reqs.is_empty() {
                self.commit(&mut reqs).await;
            }
        }
        // All senders gone: the gateway is stopping; make sure the last batch is on disk.
        self.final_flush().await;
    }

    async fn final_flush(&self) {
        let flushed = match self.db.db() {
            Ok(db) => db
                .flush_async()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = flushed {
            tracing::error!("journal: final flush failed: {e}");
        }
    }

    /// Numbers, stores and flushes one group, retrying until the disk takes it.
    async fn commit(&mut self, reqs: &mut Vec<super::AppendReq>) {
        self.ensure_open().await;
        let drafts: usize = reqs.iter().map(|r| r.drafts.len()).sum();
        let pending: u64 = reqs.iter().map(|r| r.bytes).sum();
        let (batch, records, bytes) = self.prepare(reqs);
        self.apply(batch, records.len()).await;
        self.bytes = bytes;
        self.last_seq += records.len() as u64;
        self.queued.fetch_sub(drafts as u64, Ordering::Relaxed);
        self.gauge.release(pending);
        self.committed.send_replace(self.last_seq);
        // Hand each waiting requester its own records.
        let mut records = records.into_iter();
        for req in reqs.drain(..) {
            let mine: Vec<Record> = records.by_ref().take(req.drafts.len()).collect();
            if let Some(reply) = req.reply {
                let _ = reply.send(mine);
            }
        }
    }

    /// Builds the atomic batch: records numbered from `last_seq + 1`, alarm
    /// index entries, snapshots with their reference counts, the bytes counter.
    fn prepare(&self, reqs: &mut [super::AppendReq]) -> (sled::Batch, Vec<Record>, u64) {
        let mut batch = sled::Batch::default();
        let mut records = Vec::new();
        let mut seq = self.last_seq;
        let mut bytes = self.bytes;
        let mut snap_refs: std::collections::HashMap<String, u32> = Default::default();
        for req in reqs.iter_mut() {
            let mut kept = Vec::with_capacity(req.drafts.len());
            for mut draft in req.drafts.drain(..) {
                let mut body = draft.body.clone();
                let snapshot = draft.snapshot.take().map(|jpeg| {
                    let sha = hex::encode(Sha256::digest(&jpeg));
                    *body.snapshot_mut() = Some(SnapshotRef {
                        sha256: sha.clone(),
                        bytes: jpeg.len() as u64,
                    });
                    (sha, jpeg)
                });
                let record = Record {
                    id: draft.id,
                    seq: seq + 1,
                    ts: draft.ts,
                    estate: self.ids.0.clone(),
                    gateway: self.ids.1.clone(),
                    body,
                };
                // Encoded before it takes its seq: a record that cannot be
                // written is refused (and said), never published empty, and
                // `seq` stays gap-free.
                let json = match record.to_json() {
                    Ok(json) => json,
                    Err(e) => {
                        tracing::error!(id = %record.id, "journal: record refused: {e}");
                        self.gauge.refuse(1);
                        continue;
                    }
                };
                seq += 1;
                if let Some((sha, jpeg)) = snapshot {
                    let refs = snap_refs
                        .entry(sha.clone())
                        .or_insert_with(|| self.snapshot_refs(&sha));
                    if *refs == 0 {
                        bytes += jpeg.len() as u64;
                        batch.insert(store::named(store::SNAPSHOT, &sha), jpeg.to_vec());
                    }
                    *refs += 1;
                }
                let alarm = record.body.is_alarm();
                let raw = Stored::encode(record.ts, alarm, &record.body.topic_suffix(), &json);
                bytes += raw.len() as u64;
                batch.insert(&store::key(store::RECORD, seq), raw);
                if alarm {
                    batch.insert(&store::key(store::ALARM, seq), &[][..]);
                }
                records.push(record);
                kept.push(draft);
            }
            // What the requester gets back below: its records that were kept.
            req.drafts = kept;
        }
        for (sha, refs) in snap_refs {
            batch.insert(
                store::named(store::SNAP_REFS, &sha),
                &(refs as u64).to_be_bytes(),
            );
        }
        batch.insert(
            store::named(store::META, store::META_BYTES),
            &bytes.to_be_bytes(),
        );
        (batch, records, bytes)
    }

    fn snapshot_refs(&self, sha: &str) -> u32 {
        let v = self
            .db
            .tree()
            .ok()
            .and_then(|t| t.get(store::named(store::SNAP_REFS, sha)).ok())
            .flatten();
        store::u64_value(v.as_deref()) as u32
    }

    /// Applies a batch and makes it durable, retrying until the disk takes it:
    /// the journal is `degraded` meanwhile, and each retry reopens the
    /// database (sled fails every write after its first I/O error).
    async fn apply(&self, batch: sled::Batch, records: usize) {
        let mut delay = Duration::from_millis(50);
        let mut failures = 0u32;
        loop {
            match self.try_apply(&batch).await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::warn!(failures, "journal: writes again");
                        self.gauge.set_disk_error(None);
                    }
                    return;
                }
                Err(e) => {
                    failures += 1;
                    // Said once, then every 20th try: a full disk must not also fill the log.
                    if failures == 1 || failures.is_multiple_of(20) {
                        tracing::error!(
                            records,
                            failures,
                            "journal: cannot write, retrying every {delay:?} \
                             (the records wait in memory within the pending budget): {e}"
                        );
                    }
                    self.gauge.set_disk_error(Some(e.to_string()));
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    if self.db.reopenable() {
                        if let Err(e) = self.db.reopen().await {
                            tracing::debug!("journal: reopen failed: {e}");
                        }
                    }
                }
            }
        }
    }

    /// Waits until the database is open (a reopen after an error may have
    /// failed): a batch is prepared from what the store holds now.
    async fn ensure_open(&self) {
        let mut delay = Duration::from_millis(50);
        while self.db.tree().is_err() {
            if let Err(e) = self.db.reopen().await {
                self.gauge.set_disk_error(Some(e.to_string()));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }

    async fn try_apply(&self, batch: &sled::Batch) -> Result<(), super::JournalError> {
        let (db, tree) = (self.db.db()?, self.db.tree()?);
        tree.apply_batch(batch.clone())?;
        db.flush_async().await?;
        Ok(())
    }

    /// Removes records (and snapshots no other record refers to).
    async fn evict(&mut self, seqs: &[u64]) -> super::Evicted {
        let mut batch = sled::Batch::default();
        let mut out = super::Evicted::default();
        let mut bytes = self.bytes;
        let mut snap_refs: std::collections::HashMap<String, u32> = Default::default();
        self.ensure_open().await;
        let Ok(tree) = self.db.tree() else {
            return out;
        };
        let mut upto = store::u64_value(
            tree.get(store::named(store::META, store::META_EVICTED_UPTO))
                .ok()
                .flatten()
                .as_deref(),
        );
        for &seq in seqs {
            let key = store::key(store::RECORD, seq);
            let Ok(Some(raw)) = tree.get(key) else {
                continue;
            };
            bytes = bytes.saturating_sub(raw.len() as u64);
            if let Some(stored) = Stored::decode(&raw) {
                if stored.alarm {
                    batch.remove(&store::key(store::ALARM, seq));
                }
                if let Some(sha) = snapshot_sha(stored.json) {
                    let refs = snap_refs
                        .entry(sha.clone())
                        .or_insert_with(|| self.snapshot_refs(&sha));
                    *refs = refs.saturating_sub(1);
                }
            }
            batch.remove(&key);
            upto = upto.max(seq);
            out.records += 1;
        }
        for (sha, refs) in snap_refs {
            if refs == 0 {
                let skey = store::named(store::SNAPSHOT, &sha);
                if let Ok(Some(jpeg)) = tree.get(&skey) {
                    bytes = bytes.saturating_sub(jpeg.len() as u64);
                    out.snapshots += 1;
                }
                batch.remove(skey);
                batch.remove(store::named(store::SNAP_REFS, &sha));
            } else {
                batch.insert(
                    store::named(store::SNAP_REFS, &sha),
                    &(refs as u64).to_be_bytes(),
                );
            }
        }
        batch.insert(
            store::named(store::META, store::META_BYTES),
            &bytes.to_be_bytes(),
        );
        batch.insert(
            store::named(store::META, store::META_EVICTED_UPTO),
            &upto.to_be_bytes(),
        );
        // A reopen (in `apply`) needs every handle on the old store gone.
        drop(tree);
        self.apply(batch, 0).await;
        self.bytes = bytes;
        out
    }
}

/// The sha256 of a payload's snapshot, if it has one.
fn snapshot_sha(json: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Snap {
        sha256: String,
    }
    #[derive(serde::Deserialize)]
    struct WithSnap {
        snapshot: Option<Snap>,
    }
    serde_json::from_slice::<WithSnap>(json)
        .ok()?
        .snapshot
        .map(|s| s.sha256)
}
