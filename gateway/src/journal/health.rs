//! Whether the journal is keeping up: records waiting for the disk are held in
//! memory within a fixed budget, and past it refused and counted (never
//! dropped silently); a disk that fails writes makes the journal `degraded`,
//! with the reason, until a batch is durable again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::watch;

use crate::contract::Draft;

/// Memory for records waiting for the disk.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Pass, device and system records wait up to this many bytes (snapshots
    /// included); past it they are refused.
    pub pending_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            pending_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What `/healthz` and `P/status` say of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ok,
    Degraded(String),
}

impl Health {
    pub fn is_ok(&self) -> bool {
        matches!(self, Health::Ok)
    }

    /// The reason when degraded.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Health::Ok => None,
            Health::Degraded(r) => Some(r),
        }
    }
}

/// The shared counters of the journal's handles and its writer.
pub(crate) struct Gauge {
    limits: Limits,
    pending: AtomicU64,
    refused_total: AtomicU64,
    refused_unreported: AtomicU64,
    /// Refusing since the pending budget ran out; cleared once half is free.
    refusing: AtomicBool,
    /// The writer's last write error, while it lasts.
    disk_error: Mutex<Option<String>>,
    /// The gateway's main store (same disk, other database) failed to write.
    store_error: Mutex<Option<String>>,
    health: watch::Sender<Health>,
}

impl Gauge {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            pending: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
            refused_unreported: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
            disk_error: Mutex::new(None),
            store_error: Mutex::new(None),
            health: watch::channel(Health::Ok).0,
        }
    }

    /// Takes `bytes` of drafts into the pending budget, or refuses and counts
    /// them. Alarms may use the budget twice over: they must not be refused
    /// because pass events filled it.
    pub fn admit(&self, bytes: u64, records: u64, alarm: bool) -> bool {
        let limit = if alarm {
            self.limits.pending_bytes.saturating_mul(2)
        } else {
            self.limits.pending_bytes
        };
        let before = self.pending.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) <= limit {
            return true;
        }
        self.pending.fetch_sub(bytes, Ordering::Relaxed);
        self.refuse(records);
        if !self.refusing.swap(true, Ordering::Relaxed) {
            tracing::error!(
                pending_bytes = before,
                "journal: the disk does not keep up; new records are refused and counted"
            );
            self.publish();
        }
        false
    }

    /// The writer stored (or gave up) drafts of `bytes`.
    pub fn release(&self, bytes: u64) {
        let left = self
            .pending
            .fetch_sub(bytes, Ordering::Relaxed)
            .saturating_sub(bytes);
        if left <= self.limits.pending_bytes / 2 && self.refusing.swap(false, Ordering::Relaxed) {
            self.publish();
        }
    }

    pub fn refuse(&self, records: u64) {
        self.refused_total.fetch_add(records, Ordering::Relaxed);
        self.refused_unreported
            .fetch_add(records, Ordering::Relaxed);
    }

    pub fn refused_total(&self) -> u64 {
        self.refused_total.load(Ordering::Relaxed)
    }

    pub fn take_refused(&self) -> u64 {
        self.refused_unreported.swap(0, Ordering::Relaxed)
    }

    pub fn pending_bytes(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// The writer's view of the disk: `Some(error)` while writes fail.
    pub fn set_disk_error(&self, error: Option<String>) {
        if replace(&self.disk_error, error) {
            self.publish();
        }
    }

    /// The main store's failure, said with the journal's health (one answer
    /// for `/healthz` and `P/status`).
    pub fn set_store_error(&self, error: Option<String>) {
        if replace(&self.store_error, error) {
            self.publish();
        }
    }

    /// Whether the journal's own writes succeed.
    pub fn writes_ok(&self) -> bool {
        read(&self.disk_error).is_none()
    }

    pub fn health(&self) -> Health {
        self.health.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Health> {
        self.health.subscribe()
    }

    fn publish(&self) {
        let refusing = self.refusing.load(Ordering::Relaxed);
        let mut reasons = Vec::new();
        match (read(&self.disk_error), refusing) {
            (None, false) => {}
            (Some(e), false) => reasons.push(format!("journal cannot write: {e}")),
            (None, true) => reasons.push("journal full: records are refused".into()),
            (Some(e), true) => {
                reasons.push(format!("journal cannot write ({e}); records are refused"))
            }
        }
        if let Some(e) = read(&self.store_error) {
            reasons.push(format!("store cannot write: {e}"));
        }
        let health = if reasons.is_empty() {
            Health::Ok
        } else {
            Health::Degraded(reasons.join("; "))
        };
        self.health.send_if_modified(|h| {
            let changed = *h != health;
            *h = health;
            changed
        });
    }
}

fn read(m: &Mutex<Option<String>>) -> Option<String> {
    match m.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// Sets `m`; true when it changed.
fn replace(m: &Mutex<Option<String>>, value: Option<String>) -> bool {
    let mut g = match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let changed = *g != value;
    *g = value;
    changed
}

/// What a draft holds in memory while it waits (an estimate: the JSON body is
/// small next to a snapshot).
pub fn draft_bytes(d: &Draft) -> u64 {
    512 + d.snapshot.as_ref().map_or(0, |s| s.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_budget_and_alarms_have_a_reserve() {
        let g = Gauge::new(Limits {
            pending_bytes: 1000,
        });
        assert!(g.admit(600, 1, false));
        assert!(!g.admit(600, 3, false), "over the budget");
        assert_eq!(g.refused_total(), 3);
        assert!(g.health().reason().is_some_and(|r| r.contains("refused")));
        assert!(g.admit(600, 1, true), "an alarm uses the reserve");
        g.release(1200);
        assert!(g.health().is_ok(), "half free again: no longer refusing");
        assert_eq!(g.take_refused(), 3);
        assert_eq!(g.take_refused(), 0);
        assert_eq!(g.refused_total(), 3);
    }

    #[test]
    fn disk_errors_degrade_until_cleared() {
        let g = Gauge::new(Limits::default());
        g.set_disk_error(Some("No space left on device".into()));
        assert_eq!(
            g.health(),
            Health::Degraded("journal cannot write: No space left on device".into())
        );
        g.set_disk_error(None);
        assert!(g.health().is_ok());
    }
}
