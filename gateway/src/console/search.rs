//! Searching the journal for the console: events by time, kind, person, plate
//! and door; past alarms by state and type. Pages go newest first and continue
//! `before` a seq, or oldest first `since` a seq (catching up).
//!
//! Records are numbered in the order they were decided, and their `ts` is the
//! device's time, so `ts` grows with `seq` except for reads that arrived late
//! (buffered through an outage). Time ranges are found by bisecting on `seq`
//! with [`LATE_SLACK`] to spare, and every record is still checked exactly.

use chrono::{DateTime, Duration, Utc};
use drivers::{CredentialKind, DoorId};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::journal::{AlarmState, AlarmType, EventKind, Journal, Record, RecordBody, Stored};

/// How late a read may arrive and still be found by a time search.
pub const LATE_SLACK: Duration = Duration::hours(6);
/// Records looked at per page at most; a page that ran out says where to go on.
pub const SCAN_BUDGET: usize = 200_000;
pub const MAX_LIMIT: usize = 500;
const DEFAULT_LIMIT: usize = 50;

/// `GET /api/events` parameters, as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    pub since: Option<String>,
    pub before: Option<String>,
    pub limit: Option<String>,
    /// One kind or several, comma-separated (`access,vehicle`).
    pub kind: Option<String>,
    pub person: Option<String>,
    pub plate: Option<String>,
    pub door: Option<String>,
    /// RFC 3339 times.
    pub from: Option<String>,
    pub to: Option<String>,
}

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

fn seq_param(name: &str, v: &Option<String>) -> Result<Option<u64>, ApiError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{name}: `{s}` is not a record number"))),
    }
}

fn time_param(name: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| {
                ApiError::invalid(format!(
                    "{name}: `{s}` is not a time like 2026-11-23T08:00:00+08:00"
                ))
            }),
    }
}

fn text_param(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub fn limit_param(v: &Option<String>) -> Result<usize, ApiError> {
    match seq_param("limit", v)? {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT as u64).contains(&n) => Ok(n as usize),
        Some(_) => Err(ApiError::invalid(format!(
            "limit: must be between 1 and {MAX_LIMIT}"
        ))),
    }
}

/// A plate, or part of one, as stored: separators dropped, upper case.
pub fn plate_key(raw: &str) -> String {
    drivers::credential::normalize_plate(raw).unwrap_or_else(|_| {
        raw.chars()
            .filter(|c| !matches!(c, ' ' | '·' | '•' | '.' | '-' | '_'))
            .flat_map(char::to_uppercase)
            .collect()
    })
}

impl EventQuery {
    pub fn parse(p: &EventParams) -> Result<EventQuery, ApiError> {
        let since = seq_param("since", &p.since)?;
        let before = seq_param("before", &p.before)?;
        let cursor = match (since, before) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid("give `since` or `before`, not both"))
            }
            (Some(s), None) => Some(Cursor::Since(s)),
            (None, Some(b)) => Some(Cursor::Before(b)),
            (None, None) => None,
        };
        let mut kinds = Vec::new();
        for k in p.kind.as_deref().unwrap_or("").split(',') {
            let k = k.trim();
            if k.is_empty() {
                continue;
            }
            kinds.push(EventKind::parse(k).ok_or_else(|| {
                ApiError::invalid(format!(
                    "kind: `{k}` is not one of {}",
                    EventKind::ALL.map(|k| k.as_str()).join(", ")
                ))
            })?);
        }
        let from = time_param("from", &p.from)?;
        let to = time_param("to", &p.to)?;
        if let (Some(f), Some(t)) = (from, to) {
            if t < f {
                return Err(ApiError::invalid("to: is before `from`"));
            }
        }
        Ok(EventQuery {
            kinds,
            person: text_param(&p.person).map(|s| s.to_lowercase()),
            plate: text_param(&p.plate).map(|s| plate_key(&s)),
            door: text_param(&p.door).map(DoorId::new),
            from,
            to,
            cursor,
            limit: limit_param(&p.limit)?,
        })
    }

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

/// `GET /api/alarms` parameters for past alarms.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmParams {
    /// `open` (default: from the engine), `raised`, `acked`, `cleared`,
    /// `escalated` or `all` (from the journal: one record per lifecycle change).
    pub state: Option<String>,
    #[serde(rename = "type")]
    pub alarm_type: Option<String>,
    pub before: Option<String>,
    pub limit: Option<String>,
}

/// Which alarms are asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmQuery {
    Open,
    History {
        state: Option<AlarmState>,
        alarm_type: Option<AlarmType>,
        before: Option<u64>,
        limit: usize,
    },
}

impl AlarmQuery {
    pub fn parse(p: &AlarmParams) -> Result<AlarmQuery, ApiError> {
        let state = match p.state.as_deref().map(str::trim) {
            None | Some("") | Some("open") => {
                if p.before.is_some() || p.alarm_type.is_some() {
                    return Err(ApiError::invalid(
                        "before and type apply to past alarms (state=all, raised, acked, cleared or escalated)",
                    ));
                }
                return Ok(AlarmQuery::Open);
            }
            Some("all") => None,
            Some(s) => Some(
                serde_json::from_value::<AlarmState>(serde_json::Value::String(s.into()))
                    .map_err(|_| {
                        ApiError::invalid(format!(
                            "state: `{s}` is not one of open, all, raised, acked, cleared, escalated"
                        ))
                    })?,
            ),
        };
        let alarm_type = match p.alarm_type.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) => Some(
                serde_json::from_value::<AlarmType>(serde_json::Value::String(t.into()))
                    .map_err(|_| ApiError::invalid(format!("type: `{t}` is not an alarm type")))?,
            ),
        };
        Ok(AlarmQuery::History {
            state,
            alarm_type,
            before: seq_param("before", &p.before)?,
            limit: limit_param(&p.limit)?,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Group, Reason};
    use crate::journal::{
        AlarmRecord, DecisionRef, Draft, EventAction, EventRecord, PersonRef, Severity,
    };
    use drivers::{Credential, DeviceId, PersonId};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn pass(ts: &str, door: &str, cred: Credential, person: Option<(&str, &str)>) -> Draft {
        let kind = match cred.kind {
            CredentialKind::Plate => EventKind::Vehicle,
            _ => EventKind::Access,
        };
        let mut e = EventRecord::new(kind, EventAction::Decision, DeviceId::new("dev"));
        e.door = Some(DoorId::new(door));
        e.credential = Some(cred);
        e.person = person.map(|(id, name)| PersonRef {
            id: PersonId::new(id),
            group: Group::Resident,
            name: Some(name.into()),
        });
        e.decision = Some(DecisionRef {
            granted: true,
            reason: Reason::Granted,
        });
        Draft::event(t(ts), e)
    }

    fn alarm(ts: &str, state: AlarmState, at: AlarmType) -> Draft {
        Draft::alarm(
            t(ts),
            AlarmRecord {
                alarm_type: at,
                alarm: uuid::Uuid::now_v7(),
                state,
                severity: Severity::Critical,
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
                raised_at: t(ts),
            },
        )
    }

    async fn journal() -> (Journal, sled::Db) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let j = Journal::open(&db, "e", "g").unwrap();
        let card = |v: &str| Credential::parse(CredentialKind::Card, v).unwrap();
        let plate = |v: &str| Credential::parse(CredentialKind::Plate, v).unwrap();
        j.append(vec![
            pass(
                "2026-11-23T08:00:00Z",
                "north",
                card("1"),
                Some(("r-001", "Zhang Wei")),
            ),
            pass(
                "2026-11-23T08:01:00Z",
                "carpark",
                plate("京A12345"),
                Some(("r-001", "Zhang Wei")),
            ),
            alarm("2026-11-23T08:02:00Z", AlarmState::Raised, AlarmType::Smoke),
            pass(
                "2026-11-23T08:03:00Z",
                "north",
                card("2"),
                Some(("r-002", "Li Na")),
            ),
            pass("2026-11-23T08:04:00Z", "carpark", plate("沪B8M2Q7"), None),
            alarm("2026-11-23T08:05:00Z", AlarmState::Acked, AlarmType::Smoke),
            alarm(
                "2026-11-23T08:06:00Z",
                AlarmState::Raised,
                AlarmType::DoorForced,
            ),
            // Late: decided at 08:07, read at 07:59 (buffered through an outage).
            pass("2026-11-23T07:59:00Z", "north", card("3"), None),
        ])
        .await
        .unwrap();
        (j, db)
    }

    fn q(params: EventParams) -> EventQuery {
        EventQuery::parse(&params).unwrap()
    }

    fn seqs(p: &Page) -> Vec<u64> {
        p.records.iter().map(|r| r.seq).collect()
    }

    #[tokio::test]
    async fn newest_first_pages_and_filters() {
        let (j, _db) = journal().await;
        let p = events(&j, &q(EventParams::default()));
        assert_eq!(seqs(&p), vec![8, 5, 4, 2, 1]);
        assert_eq!(p.next, None);
        let p = events(
            &j,
            &q(EventParams {
                limit: Some("2".into()),
                ..Default::default()
            }),
        );
        assert_eq!(seqs(&p), vec![8, 5]);
        assert_eq!(p.next, Some(Cursor::Before(5)));
        let p = events(
            &j,
            &q(EventParams {
                limit: Some("2".into()),
                before: Some("5".into()),
                ..Default::default()
            }),
        );
        assert_eq!(seqs(&p), vec![4, 2]);
        let by = |params: EventParams| seqs(&events(&j, &q(params)));
        assert_eq!(
            by(EventParams {
                kind: Some("vehicle".into()),
                ..Default::default()
            }),
            vec![5, 2]
        );
        assert_eq!(
            by(EventParams {
                person: Some("zhang".into()),
                ..Default::default()
            }),
            vec![2, 1]
        );
        assert_eq!(
            by(EventParams {
                person: Some("R-002".into()),
                ..Default::default()
            }),
            vec![4]
        );
        assert_eq!(
            by(EventParams {
                plate: Some("京a·12345".into()),
                ..Default::default()
            }),
            vec![2]
        );
        assert_eq!(
            by(EventParams {
                plate: Some("8m2".into()),
                ..Default::default()
            }),
            vec![5]
        );
        assert_eq!(
            by(EventParams {
                door: Some("north".into()),
                kind: Some("access,vehicle".into()),
                ..Default::default()
            }),
            vec![8, 4, 1]
        );
    }

    #[tokio::test]
    async fn time_ranges_find_late_reads_and_catch_up_goes_forward() {
        let (j, _db) = journal().await;
        let by = |params: EventParams| seqs(&events(&j, &q(params)));
        assert_eq!(
            by(EventParams {
                from: Some("2026-11-23T08:00:30Z".into()),
                to: Some("2026-11-23T08:03:30+00:00".into()),
                ..Default::default()
            }),
            vec![4, 2]
        );
        assert_eq!(
            by(EventParams {
                to: Some("2026-11-23T16:00:30+08:00".into()),
                ..Default::default()
            }),
            vec![8, 1]
        );
        let p = events(
            &j,
            &q(EventParams {
                since: Some("2".into()),
                limit: Some("2".into()),
                ..Default::default()
            }),
        );
        assert_eq!(seqs(&p), vec![4, 5]);
        assert_eq!(p.next, Some(Cursor::Since(5)));
        let p = events(
            &j,
            &q(EventParams {
                since: Some("5".into()),
                ..Default::default()
            }),
        );
        assert_eq!(seqs(&p), vec![8]);
        assert_eq!(p.next, None);
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = |p: EventParams| EventQuery::parse(&p).unwrap_err().message;
        assert!(e(EventParams {
            kind: Some("access,bogus".into()),
            ..Default::default()
        })
        .starts_with("kind: `bogus`"));
        assert!(e(EventParams {
            from: Some("yesterday".into()),
            ..Default::default()
        })
        .starts_with("from:"));
        assert!(e(EventParams {
            limit: Some("100000".into()),
            ..Default::default()
        })
        .starts_with("limit:"));
        assert!(e(EventParams {
            since: Some("1".into()),
            before: Some("2".into()),
            ..Default::default()
        })
        .contains("not both"));
        assert!(e(EventParams {
            from: Some("2026-11-23T09:00:00Z".into()),
            to: Some("2026-11-23T08:00:00Z".into()),
            ..Default::default()
        })
        .starts_with("to:"));
    }

    #[tokio::test]
    async fn alarm_history_by_state_and_type() {
        let (j, _db) = journal().await;
        let h = |state, t, before, limit| seqs(&alarm_history(&j, state, t, before, limit));
        assert_eq!(h(None, None, None, 10), vec![7, 6, 3]);
        assert_eq!(h(Some(AlarmState::Raised), None, None, 10), vec![7, 3]);
        assert_eq!(h(None, Some(AlarmType::Smoke), None, 10), vec![6, 3]);
        let p = alarm_history(&j, None, None, None, 2);
        assert_eq!(p.next, Some(Cursor::Before(6)));
        assert_eq!(h(None, None, Some(6), 10), vec![3]);
        assert_eq!(
            AlarmQuery::parse(&AlarmParams::default()).unwrap(),
            AlarmQuery::Open
        );
        assert!(AlarmQuery::parse(&AlarmParams {
            state: Some("burning".into()),
            ..Default::default()
        })
        .is_err());
    }
}
