//! What each door is doing: closed, open after a release, held open too long,
//! forced. The engine feeds it releases (grants, exit requests, remote opens),
//! the door contact and people counts; it answers with signals for the alarm
//! rules (forced, held open, closed again, more people than grants).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::contract::DoorId;

/// A door opened within this long after its release window closed is still a
/// legitimate pass (people are slow with handles).
const GRACE: Duration = Duration::seconds(2);

/// The state shown on the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorStatus {
    Closed,
    /// Open after a release.
    Open,
    /// Open longer than `held_open_s`.
    Held,
    /// Opened without a release.
    Forced,
}

/// Something an alarm rule should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoorSignal {
    Forced,
    HeldOpen {
        for_s: i64,
    },
    /// The door closed: ends `door_held_open`.
    Closed,
    /// More people passed than were granted in this opening.
    Tailgate {
        passed: u32,
        granted: u32,
    },
}

#[derive(Debug, Clone)]
struct Door {
    status: DoorStatus,
    /// A release allows the door to open until then.
    released_until: Option<DateTime<Utc>>,
    open_since: Option<DateTime<Utc>>,
    held_open: Duration,
    held_signalled: bool,
    /// Grants and counted passages since the door last closed.
    granted: u32,
    passed: u32,
    last_change: Option<DateTime<Utc>>,
}

/// All doors.
#[derive(Debug, Default)]
pub struct Doors {
    doors: HashMap<DoorId, Door>,
}

/// A door's state for display.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DoorView {
    pub status: DoorStatus,
    pub open_since: Option<DateTime<Utc>>,
    pub last_change: Option<DateTime<Utc>>,
}

impl Doors {
    pub fn add(&mut self, id: DoorId, held_open_s: u32) {
        self.doors.insert(
            id,
            Door {
                status: DoorStatus::Closed,
                released_until: None,
                open_since: None,
                held_open: Duration::seconds(held_open_s as i64),
                held_signalled: false,
                granted: 0,
                passed: 0,
                last_change: None,
            },
        );
    }

    /// The lock was released (grant, exit request, remote open) for `open_ms`.
    pub fn release(&mut self, id: &DoorId, now: DateTime<Utc>, open_ms: u32) {
        if let Some(d) = self.doors.get_mut(id) {
            let until = now + Duration::milliseconds(open_ms as i64) + GRACE;
            d.released_until = Some(d.released_until.map_or(until, |u| u.max(until)));
            d.granted += 1;
        }
    }

    /// The door contact changed.
    pub fn contact(&mut self, id: &DoorId, open: bool, now: DateTime<Utc>) -> Option<DoorSignal> {
        let d = self.doors.get_mut(id)?;
        d.last_change = Some(now);
        if open {
            if d.open_since.is_some() {
                return None; // a repeated report of the same opening
            }
            d.open_since = Some(now);
            let released = d.released_until.is_some_and(|u| now <= u);
            if released {
                d.status = DoorStatus::Open;
                None
            } else {
                d.status = DoorStatus::Forced;
                Some(DoorSignal::Forced)
            }
        } else {
            let was_open = d.open_since.take().is_some();
            d.status = DoorStatus::Closed;
            d.released_until = None;
            d.held_signalled = false;
            d.granted = 0;
            d.passed = 0;
            was_open.then_some(DoorSignal::Closed)
        }
    }

    /// A turnstile or camera counted people through.
    pub fn passage(&mut self, id: &DoorId, count: u32) -> Option<DoorSignal> {
        let d = self.doors.get_mut(id)?;
        d.passed += count;
        // Turnstiles count without a door contact: each opening is one release.
        if d.passed > d.granted {
            let s = DoorSignal::Tailgate {
                passed: d.passed,
                granted: d.granted,
            };
            d.passed = d.granted;
            Some(s)
        } else {
            None
        }
    }

    /// Doors open too long, signalled once per opening.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<(DoorId, DoorSignal)> {
        let mut out = Vec::new();
        for (id, d) in self.doors.iter_mut() {
            if let Some(since) = d.open_since {
                if !d.held_signalled && now - since > d.held_open {
                    d.held_signalled = true;
                    if d.status == DoorStatus::Open {
                        d.status = DoorStatus::Held;
                    }
                    out.push((
                        id.clone(),
                        DoorSignal::HeldOpen {
                            for_s: (now - since).num_seconds(),
                        },
                    ));
                }
            }
        }
        out
    }

    pub fn view(&self, id: &DoorId) -> Option<DoorView> {
        self.doors.get(id).map(|d| DoorView {
            status: d.status,
            open_since: d.open_since,
            last_change: d.last_change,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::seconds(s)
    }

    fn doors() -> (Doors, DoorId) {
        let mut d = Doors::default();
        let id = DoorId::new("d1");
        d.add(id.clone(), 30);
        (d, id)
    }

    #[test]
    fn released_opening_is_fine_unreleased_is_forced() {
        let (mut d, id) = doors();
        d.release(&id, t(0), 3000);
        assert_eq!(d.contact(&id, true, t(1)), None);
        assert_eq!(d.view(&id).unwrap().status, DoorStatus::Open);
        assert_eq!(d.contact(&id, false, t(3)), Some(DoorSignal::Closed));
        // The release is used up by the closing.
        assert_eq!(d.contact(&id, true, t(4)), Some(DoorSignal::Forced));
        assert_eq!(d.view(&id).unwrap().status, DoorStatus::Forced);
        // Late past release + grace: forced.
        d.contact(&id, false, t(5));
        d.release(&id, t(10), 1000);
        assert_eq!(d.contact(&id, true, t(14)), Some(DoorSignal::Forced));
    }

    #[test]
    fn held_open_signalled_once() {
        let (mut d, id) = doors();
        d.release(&id, t(0), 3000);
        d.contact(&id, true, t(1));
        assert!(d.tick(t(20)).is_empty());
        assert_eq!(
            d.tick(t(32)),
            vec![(id.clone(), DoorSignal::HeldOpen { for_s: 31 })]
        );
        assert!(d.tick(t(40)).is_empty());
        assert_eq!(d.view(&id).unwrap().status, DoorStatus::Held);
        assert_eq!(d.contact(&id, false, t(41)), Some(DoorSignal::Closed));
    }

    #[test]
    fn tailgating_counts_more_people_than_grants() {
        let (mut d, id) = doors();
        d.release(&id, t(0), 3000);
        assert_eq!(d.passage(&id, 1), None);
        assert_eq!(
            d.passage(&id, 1),
            Some(DoorSignal::Tailgate {
                passed: 2,
                granted: 1
            })
        );
    }
}
