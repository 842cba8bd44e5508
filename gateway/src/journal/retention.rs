//! Retention: records leave the journal by age (per kind) and when the disk
//! budget is exceeded, oldest first. A record the platform never received may
//! only go when the budget forces it, and then it is counted, so that a
//! `data_loss` alarm says how many: never silently.

use chrono::{DateTime, Duration, Utc};

use super::config::RetentionSection;
use super::store::Stored;
use super::{Evicted, Journal, JournalError};

/// At most this many records are evicted per run, to keep each run short.
const MAX_PER_RUN: usize = 50_000;

/// How long each kind is kept, and the disk budget.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub pass: Duration,
    pub device: Duration,
    pub alarm: Duration,
    pub max_bytes: u64,
}

impl From<&RetentionSection> for Policy {
    fn from(r: &RetentionSection) -> Self {
        Self {
            pass: Duration::days(r.pass_days as i64),
            device: Duration::days(r.device_days as i64),
            alarm: Duration::days(r.alarm_days as i64),
            max_bytes: r.max_disk_mb.saturating_mul(1024 * 1024),
        }
    }
}

/// Where the platform has got to, per lane (see the uplink); `None` without an uplink.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded {
    pub events: u64,
    pub alarms: u64,
}

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub evicted: Evicted,
    /// Evicted records the platform had not acknowledged.
    pub unforwarded: u64,
}

impl Policy {
    fn keep_for(&self, s: &Stored) -> Duration {
        if s.alarm {
            self.alarm
        } else if s.event_kind().is_some_and(|k| k.is_pass()) {
            self.pass
        } else {
            self.device
        }
    }
}

/// One retention pass.
pub async fn run_once(
    journal: &Journal,
    policy: &Policy,
    now: DateTime<Utc>,
    forwarded: Option<Forwarded>,
) -> Result<Outcome, JournalError> {
    let shortest = policy.pass.min(policy.device).min(policy.alarm);
    let mut victims = Vec::new();
    let mut unforwarded = 0u64;
    let is_unforwarded = |seq: u64, alarm: bool| match forwarded {
        Some(f) => seq > if alarm { f.alarms } else { f.events },
        None => false,
    };

    // By age: never an unforwarded record (the platform still needs it).
    for (seq, raw) in journal.range(0, u64::MAX, false) {
        let Some(s) = Stored::decode(&raw) else {
            continue;
        };
        if s.ts > now - shortest || victims.len() >= MAX_PER_RUN {
            break;
        }
        if s.ts < now - policy.keep_for(&s) && !is_unforwarded(seq, s.alarm) {
            victims.push(seq);
        }
    }

    // By budget: oldest first, down to 90 % of the budget, whatever they are.
    let stored = journal.stored_bytes();
    if stored > policy.max_bytes {
        let target = stored - policy.max_bytes + policy.max_bytes / 10;
        let mut freed = 0u64;
        let already: std::collections::HashSet<u64> = victims.iter().copied().collect();
        for (seq, raw) in journal.range(0, u64::MAX, false) {
            if freed >= target || victims.len() >= MAX_PER_RUN {
                break;
            }
            freed += raw.len() as u64 + snapshot_bytes(&raw);
            if already.contains(&seq) {
                continue;
            }
            if let Some(s) = Stored::decode(&raw) {
                if is_unforwarded(seq, s.alarm) {
                    unforwarded += 1;
                }
            }
            victims.push(seq);
        }
    }
    if victims.is_empty() {
        return Ok(Outcome::default());
    }
    victims.sort_unstable();
    let evicted = journal.evict(victims).await?;
    Ok(Outcome {
        evicted,
        unforwarded,
    })
}

/// The snapshot size a stored record refers to (an estimate of what its eviction frees).
fn snapshot_bytes(raw: &[u8]) -> u64 {
    #[derive(serde::Deserialize)]
    struct Snap {
        bytes: u64,
    }
    #[derive(serde::Deserialize)]
    struct WithSnap {
        snapshot: Option<Snap>,
    }
    Stored::decode(raw)
        .and_then(|s| serde_json::from_slice::<WithSnap>(s.json).ok())
        .and_then(|w| w.snapshot)
        .map(|s| s.bytes)
        .unwrap_or(0)
}
