//! Searching the journal: events by time, kind, person, plate and door; past
//! alarms by state and type. Pages go newest first and continue `before` a
//! seq, or oldest first `since` a seq (catching up). The console reads its
//! query strings into these searches (`console::search`).
//!
//! Records are numbered in the order they were decided, and their `ts` is the
//! device's time, so `ts` grows with `seq` except for reads that arrived late
//! (buffered through an outage). Time ranges are found by bisecting on `seq`
//! with [`LATE_SLACK`] to spare, and every record is still checked exactly.

use chrono::{DateTime, Duration, Utc};
use drivers::CredentialKind;
use serde::Serialize;

use super::{Journal, Stored};
use crate::contract::{AlarmState, AlarmType, DoorId, EventKind, Record, RecordBody};

/// How late a read may arrive and still be found by a time search.
pub const LATE_SLACK: Duration = Duration::hours(6);
/// Records looked at per page at most; a page that ran out says where to go on.
pub const SCAN_BUDGET: usize = 200_000;

/// Where a page continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cursor {
    Before(u64),
    Since(u64),
}

/// A checked event search.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub kinds: Vec<EventKind>,
    /// A person id (exact) or part of a name (any case).
    pub person: Option<String>,
    /// Part of a plate, normalised.
    pub plate: Option<String>,
    pub door: Option<DoorId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<Cursor>,
    pub limit: usize,
}

impl EventQuery {
    fn needs_body(&self) -> bool {
        self.person.is_some() || self.plate.is_some() || self.door.is_some()
    }

    /// Byte strings a matching payload must contain, tested before parsing it.
    fn needles(&self) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        if let Some(plate) = &self.plate {
            v.push(plate.as_bytes().to_vec());
        }
        if let Some(door) = &self.door {
            // Written as serde_json writes the field, escapes included.
            let id = serde_json::to_string(door.as_str()).unwrap_or_default();
            v.push(format!("\"door\":{id}").into_bytes());
        }
        if self.person.is_some() {
            v.push(b"\"person\":{".to_vec());
        }
        v
    }

    /// Whether a stored event matches; `None` when it is not an event at all.
    fn matches(&self, s: &Stored, needles: &[memchr::memmem::Finder]) -> Option<Record> {
        if s.alarm {
            return None;
        }
        if self.from.is_some_and(|f| s.ts < f) || self.to.is_some_and(|t| s.ts > t) {
            return None;
        }
        let kind = s.event_kind()?;
        if !self.kinds.is_empty() && !self.kinds.contains(&kind) {
            return None;
        }
        // Cheap tests before parsing: the wanted text must be in the payload.
        if needles.iter().any(|n| n.find(s.json).is_none()) {
            return None;
        }
        let r = Record::from_json(s.json).ok()?;
        if !self.needs_body() {
            return Some(r);
        }
        let RecordBody::Event(e) = &r.body else {
            return None;
        };
        if let Some(door) = &self.door {
            if e.door.as_ref() != Some(door) {
                return None;
            }
        }
        if let Some(q) = &self.person {
            let p = e.person.as_ref()?;
            let by_id = p.id.as_str().to_lowercase() == *q;
            let by_name = p
                .name
                .as_deref()
                .is_some_and(|n| n.to_lowercase().contains(q.as_str()));
            if !by_id && !by_name {
                return None;
            }
        }
        if let Some(plate) = &self.plate {
            let c = e.credential.as_ref()?;
            if c.kind != CredentialKind::Plate || !c.value.contains(plate.as_str()) {
                return None;
            }
        }
        Some(r)
    }
}

/// One page of records.
#[derive(Debug)]
pub struct Page {
    pub records: Vec<Record>,
    /// Where the next page starts, if there may be more.
    pub next: Option<Cursor>,
}

/// The `ts` of the first stored record at or after `seq` (up to `hi`).
fn ts_at(journal: &Journal, seq: u64, hi: u64) -> Option<(u64, DateTime<Utc>)> {
    let (s, raw) = journal.range(seq, hi, false).next()?;
    Stored::decode(&raw).map(|st| (s, st.ts))
}

/// The smallest seq in `lo..=hi+1` from which on records are later than `t`
/// (bisection; assumes `ts` grows with `seq`).
fn first_after(journal: &Journal, lo: u64, hi: u64, t: DateTime<Utc>) -> u64 {
    let (mut lo, mut hi_excl) = (lo, hi.saturating_add(1));
    while lo < hi_excl {
        let mid = lo + (hi_excl - lo) / 2;
        match ts_at(journal, mid, hi) {
            Some((_, ts)) if ts > t => hi_excl = mid,
            Some((s, _)) => lo = s + 1,
            None => hi_excl = mid,
        }
    }
    lo
}

/// Runs an event search (blocking reads: call it off the runtime).
pub fn events(journal: &Journal, q: &EventQuery) -> Page {
    let needles = q.needles();
    let needles: Vec<memchr::memmem::Finder> =
        needles.iter().map(memchr::memmem::Finder::new).collect();
    let last = journal.last_committed();
    let mut records = Vec::new();
    let mut scanned = 0usize;
    match q.cursor {
        Some(Cursor::Since(since)) => {
            let mut start = since.saturating_add(1);
            if let Some(from) = q.from {
                start = start.max(first_after(journal, start, last, from - LATE_SLACK));
            }
            let stop_after = q.to.map(|t| t + LATE_SLACK);
            let mut at = start.saturating_sub(1);
            for (seq, raw) in journal.range(start, last, false) {
                at = seq;
                scanned += 1;
                let Some(s) = Stored::decode(&raw) else {
                    continue;
                };
                if stop_after.is_some_and(|t| s.ts > t) {
                    return Page {
                        records,
                        next: None,
                    };
                }
                if let Some(r) = q.matches(&s, &needles) {
                    records.push(r);
                    if records.len() == q.limit {
                        break;
                    }
                }
                if scanned >= SCAN_BUDGET {
                    break;
                }
            }
            let more = at < last && (records.len() == q.limit || scanned >= SCAN_BUDGET);
            Page {
                records,
                next: more.then_some(Cursor::Since(at)),
            }
        }
        before => {
            let mut end = match before {
                Some(Cursor::Before(b)) => b.saturating_sub(1).min(last),
                _ => last,
            };
            if let Some(to) = q.to {
                let first = journal.first_seq();
                end = end.min(first_after(journal, first, end, to + LATE_SLACK).saturating_sub(1));
            }
            let stop_before = q.from.map(|f| f - LATE_SLACK);
            let mut at = end.saturating_add(1);
            let mut exhausted = true;
            for (seq, raw) in journal.range(0, end, true) {
                at = seq;
                scanned += 1;
                let Some(s) = Stored::decode(&raw) else {
                    continue;
                };
                if stop_before.is_some_and(|f| s.ts < f) {
                    break;
                }
                if let Some(r) = q.matches(&s, &needles) {
                    records.push(r);
                    if records.len() == q.limit {
                        exhausted = false;
                        break;
                    }
                }
                if scanned >= SCAN_BUDGET {
                    exhausted = false;
                    break;
                }
            }
            let more = !exhausted && at > journal.first_seq();
            Page {
                records,
                next: more.then_some(Cursor::Before(at)),
            }
        }
    }
}

/// Past alarm records, newest first, through the journal's alarm index.
pub fn alarm_history(
    journal: &Journal,
    state: Option<AlarmState>,
    alarm_type: Option<AlarmType>,
    before: Option<u64>,
    limit: usize,
) -> Page {
    let end = before.map(|b| b.saturating_sub(1)).unwrap_or(u64::MAX);
    // The index is read oldest first; alarms are few next to events, so the
    // seqs up to `end` are collected and walked backwards.
    let seqs: Vec<u64> = journal.alarm_seqs(0).take_while(|s| *s <= end).collect();
    let mut records = Vec::new();
    let mut next = None;
    for (i, seq) in seqs.iter().rev().enumerate() {
        if i >= SCAN_BUDGET {
            next = Some(Cursor::Before(*seq + 1));
            break;
        }
        let Ok(Some(r)) = journal.get(*seq) else {
            continue;
        };
        let RecordBody::Alarm(a) = &r.body else {
            continue;
        };
        if state.is_some_and(|s| s != a.state) || alarm_type.is_some_and(|t| t != a.alarm_type) {
            continue;
        }
        records.push(r);
        if records.len() == limit {
            if seqs.first().is_some_and(|first| first < seq) {
                next = Some(Cursor::Before(*seq));
            }
            break;
        }
    }
    Page { records, next }
}
