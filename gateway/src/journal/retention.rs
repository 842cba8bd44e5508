//! Retention: records leave the journal by age (per kind) and when the disk
//! budget is exceeded, oldest first. A record the platform never received may
//! only go when the budget forces it, and then it is counted, so that a
//! `data_loss` alarm says how many: never silently.
//!
//! The budget is for the journal's files on disk. sled's files take about
//! twice the bytes of the records they hold (log segments, page rewrites), so
//! records are kept to half the budget, and when the files still outgrow it
//! more goes, in proportion. Pass and device records go before any alarm; an
//! alarm goes only when nothing else is left, and a `data_loss` alarm the
//! platform has not received never does.

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
    let mut unforwarded_count = 0u64;
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

    // By budget: pass and device records first, oldest first; alarms only when
    // nothing else is left; an unforwarded `data_loss` alarm never.
    let target = budget_excess(
        journal.stored_bytes(),
        journal.disk_bytes(),
        policy.max_bytes,
    );
    if target > 0 {
        let mut freed = 0u64;
        let mut already: std::collections::HashSet<u64> = victims.iter().copied().collect();
        for alarms in [false, true] {
            for (seq, raw) in journal.range(0, u64::MAX, false) {
                if freed >= target || victims.len() >= MAX_PER_RUN {
                    break;
                }
                let Some(s) = Stored::decode(&raw) else {
                    continue;
                };
                if s.alarm != alarms || already.contains(&seq) {
                    continue;
                }
                let unforwarded = is_unforwarded(seq, s.alarm);
                if unforwarded && s.topic_suffix == DATA_LOSS_TOPIC {
                    continue;
                }
                freed += raw.len() as u64 + snapshot_bytes(&raw);
                if unforwarded {
                    unforwarded_count += 1;
                }
                already.insert(seq);
                victims.push(seq);
            }
        }
    }
    if victims.is_empty() {
        return Ok(Outcome::default());
    }
    victims.sort_unstable();
    let evicted = journal.evict(victims).await?;
    Ok(Outcome {
        evicted,
        unforwarded: unforwarded_count,
    })
}

/// Where `data_loss` alarms are published: the one record kind the budget keeps
/// until the platform has it.
const DATA_LOSS_TOPIC: &str = "alarms/data_loss";

/// Record bytes to free for a budget of `max` bytes of files on disk: records
/// are kept to half the budget (sled's files take about twice their bytes)
/// down to 45 %; if the files outgrow the budget anyway, in proportion to
/// what they take per record byte, though never below an eighth of the budget
/// in records (sled reuses freed space rather than shrinking its files).
pub fn budget_excess(stored: u64, disk: u64, max: u64) -> u64 {
    let half = max / 2;
    let mut excess = if stored > half {
        stored - half + half / 10
    } else {
        0
    };
    if disk > max && stored > max / 8 {
        let per_record_byte = disk as f64 / stored.max(1) as f64;
        let want = ((disk - max + max / 10) as f64 / per_record_byte) as u64;
        excess = excess.max(want.min(stored - max / 8));
    }
    excess
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

#[cfg(test)]
mod tests {
    use super::budget_excess;

    const MB: u64 = 1024 * 1024;

    #[test]
    fn records_are_kept_to_half_the_budget() {
        assert_eq!(budget_excess(40 * MB, 60 * MB, 100 * MB), 0);
        // Over half: down to 45 % of the budget.
        assert_eq!(budget_excess(60 * MB, 90 * MB, 100 * MB), 15 * MB);
    }

    #[test]
    fn files_over_the_budget_free_in_proportion() {
        // 40 MB of records take 120 MB of files (3 bytes per record byte):
        // down to 90 % of the budget in files needs (120 - 90) / 3 = 10 MB.
        assert_eq!(budget_excess(40 * MB, 120 * MB, 100 * MB), 10 * MB);
        // Never below an eighth of the budget in records: sled reuses space
        // rather than shrink its files.
        assert_eq!(
            budget_excess(13 * MB, 400 * MB, 100 * MB),
            13 * MB - 100 * MB / 8
        );
        assert_eq!(budget_excess(12 * MB, 400 * MB, 100 * MB), 0);
    }
}
