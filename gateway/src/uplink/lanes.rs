//! The outbox's bookkeeping, with no I/O: two lanes over the journal (alarms,
//! and everything else), each sent in `seq` order from its acknowledged cursor.
//! Alarms have their own lane so that they never wait behind a backlog of pass
//! events; each lane on its own is in order and gap-free.
//!
//! MQTT packet ids are known only when rumqttc writes a publish, in the order
//! publishes were queued; `Tracker` maps them back to journal seqs, and moves
//! each lane's cursor to the highest seq below which everything is acknowledged.

use std::collections::{BTreeSet, HashMap, VecDeque};

/// The two lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Alarms,
    Events,
}

impl Lane {
    pub fn cursor_name(self) -> &'static str {
        match self {
            Lane::Alarms => "uplink.alarms",
            Lane::Events => "uplink.events",
        }
    }
}

/// One lane's position.
#[derive(Debug, Clone, Default)]
pub struct LaneState {
    /// Everything at or below is acknowledged by the broker.
    pub acked: u64,
    /// The highest seq handed to the client.
    pub sent: u64,
    /// Sent and not yet acknowledged.
    in_flight: BTreeSet<u64>,
}

impl LaneState {
    pub fn new(acked: u64) -> Self {
        Self {
            acked,
            sent: acked,
            in_flight: BTreeSet::new(),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

/// What a queued publish was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Record(Lane, u64),
    /// Status, replies: nobody tracks their acknowledgement.
    Other,
}

/// Maps packet ids back to lanes and seqs.
#[derive(Debug, Default)]
pub struct Tracker {
    pub alarms: LaneState,
    pub events: LaneState,
    /// Publishes queued to the client, not yet written (no packet id yet).
    queued: VecDeque<Tag>,
    /// Written publishes awaiting PUBACK, by packet id.
    by_pkid: HashMap<u16, Tag>,
}

/// What a PUBACK meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acked {
    /// A lane's cursor moved.
    Moved(Lane),
    /// A record was acknowledged, but an earlier one of its lane is still out.
    Record,
    /// A status or reply was acknowledged.
    Other,
    /// Not ours (a duplicate, or from before a reconnect).
    Unknown,
}

impl Tracker {
    pub fn new(alarms_acked: u64, events_acked: u64) -> Self {
        Self {
            alarms: LaneState::new(alarms_acked),
            events: LaneState::new(events_acked),
            queued: VecDeque::new(),
            by_pkid: HashMap::new(),
        }
    }

    pub fn lane(&mut self, lane: Lane) -> &mut LaneState {
        match lane {
            Lane::Alarms => &mut self.alarms,
            Lane::Events => &mut self.events,
        }
    }

    /// Publishes handed to the client that it has not written yet.
    pub fn unwritten(&self) -> usize {
        self.queued.len()
    }

    /// Publishes handed to the client and not yet acknowledged (or written, for others).
    pub fn outstanding(&self) -> usize {
        self.alarms.in_flight.len()
            + self.events.in_flight.len()
            + self
                .by_pkid
                .values()
                .filter(|t| matches!(t, Tag::Other))
                .count()
            + self
                .queued
                .iter()
                .filter(|t| matches!(t, Tag::Other))
                .count()
    }

    /// A publish was handed to the client.
    pub fn queued(&mut self, tag: Tag) {
        if let Tag::Record(lane, seq) = tag {
            let l = self.lane(lane);
            l.in_flight.insert(seq);
            l.sent = l.sent.max(seq);
        }
        self.queued.push_back(tag);
    }

    /// The lane passed over `seq` without sending it (an alarm, seen by the
    /// event lane); returns the lane if its cursor moved.
    pub fn skipped(&mut self, lane: Lane, seq: u64) -> Option<Lane> {
        let l = self.lane(lane);
        l.sent = l.sent.max(seq);
        if l.in_flight.is_empty() && l.acked < l.sent {
            l.acked = l.sent;
            return Some(lane);
        }
        None
    }

    /// rumqttc wrote the next queued publish with this packet id.
    pub fn written(&mut self, pkid: u16) {
        // QoS 1 publishes always have a packet id; 0 would be QoS 0.
        if let Some(tag) = self.queued.pop_front() {
            if pkid != 0 {
                self.by_pkid.insert(pkid, tag);
            }
        }
    }

    /// A PUBACK arrived.
    pub fn acked(&mut self, pkid: u16) -> Acked {
        let (lane, seq) = match self.by_pkid.remove(&pkid) {
            Some(Tag::Record(lane, seq)) => (lane, seq),
            Some(Tag::Other) => return Acked::Other,
            None => return Acked::Unknown,
        };
        let l = self.lane(lane);
        l.in_flight.remove(&seq);
        let new_acked = match l.in_flight.first() {
            Some(first) => first - 1,
            None => l.sent,
        };
        if new_acked > l.acked {
            l.acked = new_acked;
            Acked::Moved(lane)
        } else {
            Acked::Record
        }
    }

    /// The connection dropped: whatever was not acknowledged is sent again from
    /// each lane's cursor after reconnecting (at least once).
    pub fn reset(&mut self) {
        for lane in [Lane::Alarms, Lane::Events] {
            let l = self.lane(lane);
            l.in_flight.clear();
            l.sent = l.acked;
        }
        self.queued.clear();
        self.by_pkid.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_moves_only_over_contiguous_acks() {
        let mut t = Tracker::new(0, 10);
        for seq in [11, 12, 13] {
            t.queued(Tag::Record(Lane::Events, seq));
        }
        t.queued(Tag::Other);
        t.queued(Tag::Record(Lane::Alarms, 14));
        for pkid in 1..=5 {
            t.written(pkid);
        }
        assert_eq!(
            t.acked(2),
            Acked::Record,
            "12 acked before 11: cursor stays"
        );
        assert_eq!(t.events.acked, 10);
        assert_eq!(t.acked(1), Acked::Moved(Lane::Events));
        assert_eq!(t.events.acked, 12);
        assert_eq!(t.acked(4), Acked::Other);
        assert_eq!(t.acked(5), Acked::Moved(Lane::Alarms));
        assert_eq!(t.alarms.acked, 14);
        assert_eq!(t.acked(3), Acked::Moved(Lane::Events));
        assert_eq!(t.events.acked, 13);
        assert_eq!(
            t.acked(3),
            Acked::Unknown,
            "a duplicate PUBACK changes nothing"
        );
    }

    #[test]
    fn reset_resends_from_cursor() {
        let mut t = Tracker::new(5, 5);
        t.queued(Tag::Record(Lane::Events, 6));
        t.queued(Tag::Record(Lane::Events, 7));
        t.written(1);
        t.acked(1);
        t.reset();
        assert_eq!(t.events.acked, 6);
        assert_eq!(t.events.sent, 6);
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn skipped_records_move_an_idle_cursor() {
        let mut t = Tracker::new(0, 3);
        assert_eq!(t.skipped(Lane::Events, 4), Some(Lane::Events));
        assert_eq!(t.events.acked, 4);
        t.queued(Tag::Record(Lane::Events, 5));
        assert_eq!(t.skipped(Lane::Events, 6), None);
        t.written(9);
        assert_eq!(t.acked(9), Acked::Moved(Lane::Events));
        assert_eq!(t.events.acked, 6);
    }
}
