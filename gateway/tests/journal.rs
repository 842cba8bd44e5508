//! The journal on a real sled store: gap-free numbering across reopen, durable
//! before visible, snapshots, retention by age and by budget with loss counting.

use bytes::Bytes;
use chrono::{Duration, Utc};
use drivers::DeviceId;
use gateway::journal::retention::{self, Forwarded, Policy};
use gateway::journal::{Draft, EventAction, EventKind, EventRecord, Journal, RecordBody, Stored};

fn event(kind: EventKind, ts: chrono::DateTime<Utc>) -> Draft {
    Draft::event(
        ts,
        EventRecord::new(kind, EventAction::Decision, DeviceId::new("r1")),
    )
}

/// Opens the store; sled lets go of its file lock a moment after the last
/// handle of a previous open goes (its flusher thread), so a reopen waits for it
/// (up to 5 s).
fn open(dir: &std::path::Path) -> (sled::Db, Journal) {
    let mut tries = 0;
    let db = loop {
        match sled::Config::new().path(dir.join("db")).open() {
            Ok(db) => break db,
            Err(e) if tries < 100 && e.to_string().contains("could not acquire lock") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("opening the store: {e}"),
        }
    };
    let j = Journal::open(&db, "est", "gw").unwrap();
    (db, j)
}

#[tokio::test]
async fn numbering_is_gap_free_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_db, j) = open(dir.path());
        let recs = j
            .append(
                (0..10)
                    .map(|_| event(EventKind::Access, Utc::now()))
                    .collect(),
            )
            .await
            .unwrap();
        assert_eq!(
            recs.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        // Concurrent appenders still get one gap-free sequence.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let j = j.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    j.append(vec![event(EventKind::Input, Utc::now())])
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(j.last_committed(), 210);
        j.close().await;
    }
    let (_db, j) = open(dir.path());
    assert_eq!(j.last_committed(), 210);
    let seqs: Vec<u64> = j.range(0, u64::MAX, false).map(|(s, _)| s).collect();
    assert_eq!(seqs, (1..=210).collect::<Vec<_>>());
    let next = j
        .append(vec![event(EventKind::Access, Utc::now())])
        .await
        .unwrap();
    assert_eq!(next[0].seq, 211);
    // Payloads carry the contract's head.
    let r = j.get(211).unwrap().unwrap();
    assert_eq!(
        (r.estate.as_str(), r.gateway.as_str(), r.seq),
        ("est", "gw", 211)
    );
}

#[tokio::test]
async fn nowait_appends_become_visible_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, j) = open(dir.path());
    let mut committed = j.committed();
    j.append_nowait(
        (0..1000)
            .map(|_| event(EventKind::Access, Utc::now()))
            .collect(),
    )
    .unwrap();
    while *committed.borrow() < 1000 {
        committed.changed().await.unwrap();
    }
    assert_eq!(j.range(1, 1000, false).count(), 1000);
    assert_eq!(j.queued(), 0);
}

#[tokio::test]
async fn snapshots_are_stored_once_and_freed_with_their_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, j) = open(dir.path());
    let jpeg = Bytes::from_static(b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9");
    let mut a = event(EventKind::Face, Utc::now());
    a.snapshot = Some(jpeg.clone());
    let mut b = event(EventKind::Face, Utc::now());
    b.snapshot = Some(jpeg.clone());
    let recs = j.append(vec![a, b]).await.unwrap();
    let sha = match &recs[0].body {
        RecordBody::Event(e) => e.snapshot.clone().unwrap().sha256,
        _ => unreachable!(),
    };
    assert_eq!(sha.len(), 64);
    assert_eq!(j.snapshot(&sha).unwrap().unwrap().as_ref(), jpeg.as_ref());
    j.evict(vec![1]).await.unwrap();
    assert!(
        j.snapshot(&sha).unwrap().is_some(),
        "still referenced by record 2"
    );
    let out = j.evict(vec![2]).await.unwrap();
    assert_eq!(out.snapshots, 1);
    assert!(j.snapshot(&sha).unwrap().is_none());
    assert!(j.get(1).unwrap().is_none());
}

#[tokio::test]
async fn retention_by_age_keeps_unforwarded_records() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, j) = open(dir.path());
    let now = Utc::now();
    let old = now - Duration::days(40);
    // 1-3: old pass events; 4-5: old device events; 6: recent.
    let mut drafts: Vec<Draft> = (0..3).map(|_| event(EventKind::Access, old)).collect();
    drafts.extend((0..2).map(|_| event(EventKind::Device, old)));
    drafts.push(event(EventKind::Access, now));
    j.append(drafts).await.unwrap();
    let policy = Policy {
        pass: Duration::days(90),
        device: Duration::days(30),
        alarm: Duration::days(365),
        max_bytes: u64::MAX,
    };
    // Device events are past 30 days, but 5 was never forwarded: it stays.
    let out = retention::run_once(
        &j,
        &policy,
        now,
        Some(Forwarded {
            events: 4,
            alarms: 0,
        }),
    )
    .await
    .unwrap();
    assert_eq!(out.evicted.records, 1);
    assert_eq!(out.unforwarded, 0);
    assert!(j.get(4).unwrap().is_none());
    assert!(j.get(5).unwrap().is_some());
    assert!(j.get(1).unwrap().is_some(), "pass events are kept 90 days");
}

#[tokio::test]
async fn budget_eviction_counts_unforwarded_losses_and_numbering_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_db, j) = open(dir.path());
        j.append(
            (0..100)
                .map(|_| event(EventKind::Access, Utc::now()))
                .collect(),
        )
        .await
        .unwrap();
        let per_record = j.stored_bytes() / 100;
        let policy = Policy {
            pass: Duration::days(90),
            device: Duration::days(30),
            alarm: Duration::days(365),
            max_bytes: per_record * 50,
        };
        // The platform has the first 30: evicting down to 90 % of the budget loses 25 it never got.
        let out = retention::run_once(
            &j,
            &policy,
            Utc::now(),
            Some(Forwarded {
                events: 30,
                alarms: 0,
            }),
        )
        .await
        .unwrap();
        assert!(out.evicted.records >= 55, "{out:?}");
        assert_eq!(out.unforwarded, out.evicted.records - 30);
        assert!(j.stored_bytes() <= per_record * 50);
        // Everything evicted, then reopened: numbering continues after the highest seq.
        let rest: Vec<u64> = j.range(0, u64::MAX, false).map(|(s, _)| s).collect();
        j.evict(rest).await.unwrap();
        j.close().await;
    }
    let (_db, j) = open(dir.path());
    assert_eq!(j.range(0, u64::MAX, false).count(), 0);
    let r = j
        .append(vec![event(EventKind::Access, Utc::now())])
        .await
        .unwrap();
    assert_eq!(r[0].seq, 101);
}

#[tokio::test]
async fn stored_records_route_without_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, j) = open(dir.path());
    j.append(vec![event(EventKind::Vehicle, Utc::now())])
        .await
        .unwrap();
    let raw = j.get_raw(1).unwrap().unwrap();
    let s = Stored::decode(&raw).unwrap();
    assert_eq!(s.topic_suffix, "events/vehicle");
    assert!(!s.alarm);
    let v: serde_json::Value = serde_json::from_slice(s.json).unwrap();
    assert_eq!(v["kind"], "vehicle");
}
