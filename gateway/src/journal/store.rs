//! The journal's layout in sled. One tree holds everything that must change
//! together, so a single atomic batch keeps records, the alarm index, snapshots
//! and counters consistent through a crash:
//!
//! | key                  | value                                         |
//! |----------------------|-----------------------------------------------|
//! | `r` + seq (u64 BE)   | stored record: header + JSON payload          |
//! | `a` + seq (u64 BE)   | empty: the record at seq is an alarm          |
//! | `s` + sha256 (hex)   | JPEG snapshot                                 |
//! | `c` + sha256 (hex)   | how many records refer to the snapshot (u32)  |
//! | `m` + name           | counters and cursors (u64 BE)                 |

use chrono::{DateTime, TimeZone, Utc};

pub const RECORD: u8 = b'r';
pub const ALARM: u8 = b'a';
pub const SNAPSHOT: u8 = b's';
pub const SNAP_REFS: u8 = b'c';
pub const META: u8 = b'm';

/// Counter of payload and snapshot bytes stored, for the disk budget.
pub const META_BYTES: &str = "bytes";
/// The highest seq ever evicted, so numbering goes on after an empty journal.
pub const META_EVICTED_UPTO: &str = "evicted_upto";

pub fn key(prefix: u8, seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub fn seq_of(key: &[u8]) -> Option<u64> {
    let b: [u8; 8] = key.get(1..9)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

pub fn named(prefix: u8, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(prefix);
    k.extend_from_slice(name.as_bytes());
    k
}

pub fn u64_value(v: Option<&[u8]>) -> u64 {
    v.and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// A record as stored: enough in a fixed header to route and age it without
/// parsing JSON (`ts` in ms, lane, topic suffix), then the payload.
///
/// `[ts_ms: i64 BE][alarm: u8][suffix_len: u8][suffix][json]`
pub struct Stored<'a> {
    pub ts: DateTime<Utc>,
    pub alarm: bool,
    /// Topic below `P/`: `events/access`, `alarms/smoke`.
    pub topic_suffix: &'a str,
    pub json: &'a [u8],
}

impl<'a> Stored<'a> {
    pub fn encode(ts: DateTime<Utc>, alarm: bool, suffix: &str, json: &[u8]) -> Vec<u8> {
        let suffix = &suffix.as_bytes()[..suffix.len().min(255)];
        let mut v = Vec::with_capacity(10 + suffix.len() + json.len());
        v.extend_from_slice(&ts.timestamp_millis().to_be_bytes());
        v.push(alarm as u8);
        v.push(suffix.len() as u8);
        v.extend_from_slice(suffix);
        v.extend_from_slice(json);
        v
    }

    pub fn decode(raw: &'a [u8]) -> Option<Stored<'a>> {
        let ts_ms = i64::from_be_bytes(raw.get(0..8)?.try_into().ok()?);
        let alarm = *raw.get(8)? != 0;
        let len = *raw.get(9)? as usize;
        let topic_suffix = std::str::from_utf8(raw.get(10..10 + len)?).ok()?;
        let json = raw.get(10 + len..)?;
        Some(Stored {
            ts: Utc.timestamp_millis_opt(ts_ms).single()?,
            alarm,
            topic_suffix,
            json,
        })
    }

    /// The event kind from the topic suffix (`events/access` → `access`).
    pub fn event_kind(&self) -> Option<super::EventKind> {
        self.topic_suffix
            .strip_prefix("events/")
            .and_then(super::EventKind::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_round_trip_and_garbage() {
        let ts = Utc.timestamp_millis_opt(1_700_000_000_123).unwrap();
        let raw = Stored::encode(ts, true, "alarms/smoke", b"{\"a\":1}");
        let s = Stored::decode(&raw).unwrap();
        assert_eq!(s.ts, ts);
        assert!(s.alarm);
        assert_eq!(s.topic_suffix, "alarms/smoke");
        assert_eq!(s.json, b"{\"a\":1}");
        assert!(Stored::decode(&raw[..9]).is_none());
        assert!(Stored::decode(b"").is_none());
        assert_eq!(seq_of(&key(RECORD, 42)), Some(42));
        assert!(key(RECORD, 1) < key(RECORD, 256));
    }
}
