//! Durable journal appends: how many records per second reach the disk (fsync)
//! with group commit, and the latency of one durable append.

use anyhow::Result;
use chrono::Utc;
use drivers::DeviceId;
use std::time::Instant;

use crate::journal::{Draft, EventAction, EventKind, EventRecord, Journal};

fn draft() -> Draft {
    let mut e = EventRecord::new(
        EventKind::Access,
        EventAction::Decision,
        DeviceId::new("reader-1"),
    );
    e.detail = Some("bench".into());
    Draft::event(Utc::now(), e)
}

pub async fn run() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let db = sled::Config::new().path(dir.path().join("db")).open()?;
    let journal = Journal::open(&db, "bench", "bench")?;

    // Latency of one durable append with nobody else writing (one fsync each).
    let mut h = hdrhistogram::Histogram::<u64>::new(3)?;
    for _ in 0..500 {
        let t = Instant::now();
        journal.append(vec![draft()]).await?;
        h.record(t.elapsed().as_micros() as u64)?;
    }
    println!(
        "journal: one durable append alone: {}",
        super::percentiles(&h)
    );

    // Many writers at once, each waiting for durability: group commit at work.
    let writers = 64;
    let per = 2_000;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let j = journal.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                j.append(vec![draft()]).await?;
            }
            Ok::<_, crate::journal::JournalError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let n = writers * per;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "journal: {n} durable appends from {writers} concurrent writers: {:.0} records/s",
        n as f64 / secs
    );

    // The engine's way: queue and go on; durable when the writer has flushed.
    let n = 200_000;
    let start = journal.last_committed();
    let t = Instant::now();
    for _ in 0..n / 100 {
        journal.append_nowait((0..100).map(|_| draft()).collect())?;
    }
    let target = start + n as u64;
    let mut committed = journal.committed();
    while *committed.borrow() < target {
        committed.changed().await?;
    }
    println!(
        "journal: {n} pipelined appends made durable: {:.0} records/s",
        n as f64 / t.elapsed().as_secs_f64()
    );
    Ok(())
}
