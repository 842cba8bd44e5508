//! The console's search parameters (`GET /api/events`, `GET /api/alarms`):
//! query strings read and checked, with errors that name the parameter, into
//! the journal's searches (`journal::search`), which do the scanning.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::error::ApiError;
use crate::contract::{AlarmState, AlarmType, DoorId, EventKind};
pub use crate::journal::search::{alarm_history, events, Cursor, EventQuery, Page};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{
        AlarmRecord, DecisionRef, Draft, EventAction, EventRecord, Group, PersonId, PersonRef,
        Reason, Severity,
    };
    use crate::journal::Journal;
    use drivers::{Credential, CredentialKind, DeviceId};

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
