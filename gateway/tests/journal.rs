//! The journal on a real sled store: gap-free numbering across reopen, durable
//! before visible, snapshots, retention by age and by budget with loss counting.

mod common;

use bytes::Bytes;
use chrono::{Duration, Utc};
use common::Tmpfs;
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
        j.close(std::time::Duration::from_secs(10)).await;
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
        j.close(std::time::Duration::from_secs(10)).await;
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

async fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn detailed(n: usize) -> Draft {
    let mut e = EventRecord::new(
        EventKind::Access,
        EventAction::Decision,
        DeviceId::new("r1"),
    );
    e.detail = Some(format!("pass {n} {}", "x".repeat(900)));
    Draft::event(Utc::now(), e)
}

/// The disk fills up under the journal and empties again: the journal says
/// `degraded` with the reason, keeps what waits within its pending budget and
/// refuses (counting) past it, and once space is back reopens its store and
/// makes every waiting record durable, in order, with no gap: a disk error
/// must not stop the journal for good (sled fails every write after its first
/// I/O error until reopened).
#[tokio::test]
async fn journal_recovers_after_the_disk_was_full() {
    let Some(disk) = Tmpfs::mount(12) else {
        return;
    };
    let jdir = disk.path().join("journal");
    let limits = gateway::journal::Limits {
        pending_bytes: 2 * 1024 * 1024,
    };
    let j = Journal::open_dir(&jdir, 2, None, "est", "gw", limits)
        .await
        .unwrap();
    j.append((0..10).map(detailed).collect()).await.unwrap();
    assert!(j.health().is_ok());

    let filler = disk.fill();
    // Records keep coming while the disk is full: they wait in memory.
    let mut waiting = Vec::new();
    for n in 10..400 {
        waiting.push(j.append_notify(vec![detailed(n)]).unwrap());
    }
    wait_until("degraded while the disk is full", 20, || {
        !j.health().is_ok()
    })
    .await;
    let reason = j.health().reason().unwrap_or_default().to_owned();
    eprintln!("degraded: {reason}; queued {}", j.queued());
    assert!(reason.contains("cannot write"), "{reason}");
    assert!(j.queued() > 0, "nothing can have been written");

    // Past the pending budget pass records are refused and counted, not queued.
    let big = || {
        let mut d = detailed(0);
        d.snapshot = Some(Bytes::from(vec![0xffu8; 512 * 1024]));
        d
    };
    let mut refused = 0;
    for _ in 0..8 {
        if let Err(e) = j.append_notify(vec![big()]) {
            assert!(e.to_string().contains("refused"), "{e}");
            refused += 1;
        }
    }
    assert!(refused > 0, "the pending budget must refuse");
    assert_eq!(j.refused_total(), refused);
    assert!(j.pending_bytes() <= limits.pending_bytes);

    // Space comes back: everything that waited becomes durable, in order.
    std::fs::remove_file(filler).unwrap();
    wait_until("durable once space is back", 30, || j.queued() == 0).await;
    wait_until("healthy again", 10, || j.health().is_ok()).await;
    let mut seqs = Vec::new();
    for rx in waiting {
        let recs = rx.await.expect("a waiting record was dropped");
        seqs.push(recs[0].seq);
    }
    assert_eq!(seqs, (11..=400).collect::<Vec<_>>(), "in order, no gap");
    let more = j.append(vec![detailed(1000)]).await.unwrap();
    assert!(more[0].seq > 400);
    let kept: Vec<u64> = j.range(0, u64::MAX, false).map(|(s, _)| s).collect();
    assert_eq!(
        kept.len() as u64,
        more[0].seq,
        "every accepted record is stored"
    );
    j.close(std::time::Duration::from_secs(10)).await;
    drop(j);

    // And it is on disk: a fresh open reads it all.
    let j = Journal::open_dir(&jdir, 2, None, "est", "gw", limits)
        .await
        .unwrap();
    assert_eq!(j.range(0, u64::MAX, false).count() as u64, more[0].seq);
    j.close(std::time::Duration::from_secs(10)).await;
}

fn alarm(at: gateway::journal::AlarmType) -> Draft {
    use gateway::journal::{AlarmRecord, AlarmState, Severity};
    Draft::alarm(
        Utc::now(),
        AlarmRecord {
            alarm_type: at,
            alarm: uuid::Uuid::now_v7(),
            state: AlarmState::Raised,
            severity: Severity::Major,
            device: None,
            door: None,
            zone: None,
            event: None,
            person: None,
            ack: None,
            count: 1,
            escalations: 0,
            snapshot: None,
            message: "m".into(),
            raised_at: Utc::now(),
        },
    )
}

/// The budget takes pass and device records before any alarm, even older
/// alarms, and never a `data_loss` alarm the platform has not received.
#[tokio::test]
async fn the_budget_takes_pass_records_before_alarms_and_keeps_data_loss() {
    use gateway::journal::AlarmType;
    let dir = tempfile::tempdir().unwrap();
    let (_db, j) = open(dir.path());
    // Oldest first: two alarms (one data_loss), then 100 pass events.
    j.append(vec![alarm(AlarmType::DataLoss)]).await.unwrap();
    j.append(vec![alarm(AlarmType::Smoke)]).await.unwrap();
    j.append(
        (0..100)
            .map(|_| event(EventKind::Access, Utc::now()))
            .collect(),
    )
    .await
    .unwrap();
    let policy = Policy {
        pass: Duration::days(90),
        device: Duration::days(30),
        alarm: Duration::days(365),
        // Far less than the records: everything that may go, goes.
        max_bytes: 1,
    };
    let nothing_forwarded = Some(Forwarded {
        events: 0,
        alarms: 0,
    });
    let out = retention::run_once(&j, &policy, Utc::now(), nothing_forwarded)
        .await
        .unwrap();
    let kept: Vec<u64> = j.range(0, u64::MAX, false).map(|(s, _)| s).collect();
    assert_eq!(
        kept,
        vec![1],
        "only the unforwarded data_loss stays: {out:?}"
    );
    assert_eq!(out.unforwarded, 101, "the smoke alarm and 100 passes");

    // A budget that pass events alone can meet leaves every alarm.
    let dir = tempfile::tempdir().unwrap();
    let (_db, j) = open(dir.path());
    j.append(vec![alarm(AlarmType::Smoke)]).await.unwrap();
    j.append(
        (0..100)
            .map(|_| event(EventKind::Access, Utc::now()))
            .collect(),
    )
    .await
    .unwrap();
    let per_record = j.stored_bytes() / 101;
    let policy = Policy {
        max_bytes: per_record * 100,
        ..policy
    };
    retention::run_once(&j, &policy, Utc::now(), nothing_forwarded)
        .await
        .unwrap();
    assert!(j.get(1).unwrap().is_some(), "the older alarm stays");
    assert!(j.get(2).unwrap().is_none(), "the oldest pass goes");
}

/// A journal kept in the gateway's main store (before it had a database of its
/// own) is moved over at the first start, once, and numbering goes on.
#[tokio::test]
async fn a_journal_in_the_main_store_moves_to_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let main = sled::Config::new()
        .path(dir.path().join("db"))
        .open()
        .unwrap();
    {
        let j = Journal::open(&main, "est", "gw").unwrap();
        j.append((0..20).map(detailed).collect()).await.unwrap();
        j.close(std::time::Duration::from_secs(10)).await;
    }
    let limits = gateway::journal::Limits::default();
    let j = Journal::open_dir(
        &dir.path().join("journal"),
        2,
        Some(&main),
        "est",
        "gw",
        limits,
    )
    .await
    .unwrap();
    assert_eq!(j.range(0, u64::MAX, false).count(), 20);
    assert!(
        !main.tree_names().iter().any(|n| n.as_ref() == b"journal"),
        "the old tree is gone"
    );
    let r = j.append(vec![detailed(20)]).await.unwrap();
    assert_eq!(r[0].seq, 21);
    j.close(std::time::Duration::from_secs(10)).await;
}
