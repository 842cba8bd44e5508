//! `[retention]`: the journal's own config section and its checks.

use serde::Deserialize;

use crate::settings::Problem;

/// `[retention]`: how long records are kept, and the disk they may use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Days to keep pass events (access, vehicle, tag, face).
    #[serde(default = "default_pass_days")]
    pub pass_days: u32,
    /// Days to keep input, device and system events.
    #[serde(default = "default_device_days")]
    pub device_days: u32,
    /// Days to keep alarms.
    #[serde(default = "default_alarm_days")]
    pub alarm_days: u32,
    /// Disk the journal may use, snapshots included; the oldest records go first.
    #[serde(default = "default_max_disk_mb")]
    pub max_disk_mb: u64,
    /// Unforwarded records above this count raise `buffer_high`.
    #[serde(default = "default_buffer_high")]
    pub buffer_high: u64,
    /// Seconds between retention runs (and backlog checks).
    #[serde(default = "default_check_every")]
    pub check_every_s: u64,
    /// Memory for records waiting while the disk does not take writes; past
    /// it new pass and device records are refused, counted and alarmed
    /// (`data_loss`); alarms have as much again.
    #[serde(default = "default_max_pending_mb")]
    pub max_pending_mb: u64,
}

fn default_max_pending_mb() -> u64 {
    64
}

fn default_check_every() -> u64 {
    60
}

fn default_pass_days() -> u32 {
    90
}
fn default_device_days() -> u32 {
    30
}
fn default_alarm_days() -> u32 {
    365
}
fn default_max_disk_mb() -> u64 {
    4096
}
fn default_buffer_high() -> u64 {
    100_000
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            pass_days: default_pass_days(),
            device_days: default_device_days(),
            alarm_days: default_alarm_days(),
            max_disk_mb: default_max_disk_mb(),
            buffer_high: default_buffer_high(),
            check_every_s: default_check_every(),
            max_pending_mb: default_max_pending_mb(),
        }
    }
}

impl RetentionSection {
    /// Checks what serde cannot; keys are relative to `[retention]`.
    pub fn check(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.check_every_s == 0 {
            out.push(Problem::new("check_every_s", "must be at least 1"));
        }
        if self.max_disk_mb == 0 {
            out.push(Problem::new("max_disk_mb", "must be at least 1"));
        }
        if self.max_pending_mb == 0 {
            out.push(Problem::new("max_pending_mb", "must be at least 1"));
        }
        out
    }
}

impl RetentionSection {
    /// The journal's memory limits.
    pub fn limits(&self) -> super::Limits {
        super::Limits {
            pending_bytes: self.max_pending_mb.saturating_mul(1024 * 1024),
        }
    }
}
