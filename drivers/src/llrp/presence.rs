//! Per-tag presence: a reader reports a tag dozens of times a second; this
//! turns those reads into one `arrived`, a `moved` when it settles at another
//! antenna, and one `departed` when it has not been read for a while.

use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

use crate::event::Presence;

/// Tuning of the presence state machine.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Not read for this long: departed.
    pub departure: Duration,
    /// Reads weaker than this (dBm) are ignored: a bike passing outside the door.
    pub rssi_min: f32,
    /// Reads needed before an arrival is reported (filters stray reads).
    pub arrive_reads: u32,
    /// A tag must be read at a new antenna for this long before it counts as moved.
    pub move_after: Duration,
}

/// A presence change to report.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub epc: String,
    pub presence: Presence,
    pub antenna: Option<u16>,
    pub rssi: Option<f32>,
}

struct Tag {
    reads: u32,
    arrived: bool,
    antenna: Option<u16>,
    /// Another antenna the tag is being read at, since when.
    candidate: Option<(u16, Instant)>,
    last_seen: Instant,
    best_rssi: Option<f32>,
}

pub struct Tracker {
    tuning: Tuning,
    tags: HashMap<String, Tag>,
}

impl Tracker {
    pub fn new(tuning: Tuning) -> Tracker {
        Tracker {
            tuning,
            tags: HashMap::new(),
        }
    }

    /// Tags currently present (arrived and not departed).
    pub fn present(&self) -> usize {
        self.tags.values().filter(|t| t.arrived).count()
    }

    pub fn read(
        &mut self,
        epc: &str,
        antenna: Option<u16>,
        rssi: Option<f32>,
        now: Instant,
    ) -> Option<Change> {
        if rssi.is_some_and(|r| r < self.tuning.rssi_min) {
            return None;
        }
        let t = self.tags.entry(epc.to_owned()).or_insert(Tag {
            reads: 0,
            arrived: false,
            antenna,
            candidate: None,
            last_seen: now,
            best_rssi: None,
        });
        t.reads = t.reads.saturating_add(1);
        t.last_seen = now;
        if let Some(r) = rssi {
            t.best_rssi = Some(t.best_rssi.map_or(r, |b| b.max(r)));
        }
        if !t.arrived {
            if t.reads >= self.tuning.arrive_reads {
                t.arrived = true;
                t.antenna = antenna.or(t.antenna);
                return Some(Change {
                    epc: epc.to_owned(),
                    presence: Presence::Arrived,
                    antenna: t.antenna,
                    rssi: t.best_rssi,
                });
            }
            return None;
        }
        match (antenna, t.antenna) {
            (Some(a), Some(cur)) if a != cur => {
                match t.candidate {
                    Some((c, since)) if c == a => {
                        if now.duration_since(since) >= self.tuning.move_after {
                            t.antenna = Some(a);
                            t.candidate = None;
                            return Some(Change {
                                epc: epc.to_owned(),
                                presence: Presence::Moved,
                                antenna: Some(a),
                                rssi,
                            });
                        }
                    }
                    _ => t.candidate = Some((a, now)),
                }
                None
            }
            (Some(a), Some(cur)) if a == cur => {
                t.candidate = None;
                None
            }
            _ => None,
        }
    }

    /// Tags not read for the departure time: departed (and forgotten).
    pub fn tick(&mut self, now: Instant) -> Vec<Change> {
        let departure = self.tuning.departure;
        let gone: Vec<String> = self
            .tags
            .iter()
            .filter(|(_, t)| now.duration_since(t.last_seen) >= departure)
            .map(|(epc, _)| epc.clone())
            .collect();
        let mut out = Vec::new();
        for epc in gone {
            if let Some(t) = self.tags.remove(&epc) {
                if t.arrived {
                    out.push(Change {
                        epc,
                        presence: Presence::Departed,
                        antenna: t.antenna,
                        rssi: None,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> Tracker {
        Tracker::new(Tuning {
            departure: Duration::from_secs(2),
            rssi_min: -70.0,
            arrive_reads: 2,
            move_after: Duration::from_millis(500),
        })
    }

    #[test]
    fn hundreds_of_reads_make_one_arrival_and_one_departure() {
        let mut t = tracker();
        let t0 = Instant::now();
        let mut changes = Vec::new();
        for i in 0..300 {
            let now = t0 + Duration::from_millis(10 * i);
            changes.extend(t.read("E200", Some(1), Some(-50.0), now));
            changes.extend(t.tick(now));
        }
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].presence, Presence::Arrived);
        let later = t0 + Duration::from_millis(3000 + 2000);
        let gone = t.tick(later);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].presence, Presence::Departed);
        assert_eq!(t.present(), 0);
    }

    #[test]
    fn weak_and_single_reads_are_ignored() {
        let mut t = tracker();
        let now = Instant::now();
        assert!(t.read("E1", Some(1), Some(-80.0), now).is_none());
        assert!(t.read("E1", Some(1), Some(-80.0), now).is_none());
        assert!(t.read("E2", Some(1), Some(-50.0), now).is_none());
        // A stray single read departs without ever having arrived.
        assert!(t.tick(now + Duration::from_secs(3)).is_empty());
    }

    #[test]
    fn moved_only_after_settling_at_the_new_antenna() {
        let mut t = tracker();
        let t0 = Instant::now();
        t.read("E3", Some(1), Some(-50.0), t0);
        t.read("E3", Some(1), Some(-50.0), t0);
        // A flicker to antenna 2 and back is no move.
        assert!(t
            .read("E3", Some(2), Some(-50.0), t0 + Duration::from_millis(100))
            .is_none());
        assert!(t
            .read("E3", Some(1), Some(-50.0), t0 + Duration::from_millis(200))
            .is_none());
        let mut moved = None;
        for i in 0..10 {
            let now = t0 + Duration::from_millis(300 + 100 * i);
            if let Some(c) = t.read("E3", Some(2), Some(-50.0), now) {
                moved = Some(c);
            }
        }
        let m = moved.expect("moved");
        assert_eq!((m.presence, m.antenna), (Presence::Moved, Some(2)));
    }
}
