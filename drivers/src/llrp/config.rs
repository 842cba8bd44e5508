//! Keys of a `driver = "llrp"` device: a UHF RFID reader watching for e-bike tags.

use serde::Deserialize;
use std::time::Duration;

use super::presence::Tuning;
use crate::driver::ConfigProblem;

/// `driver = "llrp"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlrpConfig {
    /// The reader, `host:port` (port 5084 when omitted).
    pub host: String,
    /// Antennas to use; empty: all.
    #[serde(default)]
    pub antennas: Vec<u16>,
    /// The id of the ROSpec the gateway installs on the reader.
    #[serde(default = "default_rospec_id")]
    pub rospec_id: u32,
    /// The reader's keepalive period; three missed keepalives mean the link is dead.
    #[serde(default = "default_keepalive_ms")]
    pub keepalive_ms: u32,
    /// A tag not read for this long has departed.
    #[serde(default = "default_departure_s")]
    pub departure_s: f64,
    /// Reads weaker than this (dBm) are ignored.
    #[serde(default = "default_rssi_min")]
    pub rssi_min: f32,
    /// Reads before an arrival counts.
    #[serde(default = "default_arrive_reads")]
    pub arrive_reads: u32,
    /// Seconds a tag must be read at another antenna to count as moved.
    #[serde(default = "default_move_after_s")]
    pub move_after_s: f64,
    /// How long connecting and each setup step may take.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_rospec_id() -> u32 {
    4711
}
fn default_keepalive_ms() -> u32 {
    2000
}
fn default_departure_s() -> f64 {
    5.0
}
fn default_rssi_min() -> f32 {
    -70.0
}
fn default_arrive_reads() -> u32 {
    2
}
fn default_move_after_s() -> f64 {
    1.0
}
fn default_timeout_ms() -> u64 {
    3000
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::ZERO)
}

impl LlrpConfig {
    pub fn address(&self) -> String {
        if self
            .host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            self.host.clone()
        } else {
            format!("{}:5084", self.host)
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn tuning(&self) -> Tuning {
        Tuning {
            departure: secs(self.departure_s),
            rssi_min: self.rssi_min,
            arrive_reads: self.arrive_reads.max(1),
            move_after: secs(self.move_after_s),
        }
    }

    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if self.host.trim().is_empty() {
            out.push(ConfigProblem::new(
                "host",
                "must name the reader (host or host:port)",
            ));
        }
        if self.rospec_id == 0 {
            out.push(ConfigProblem::new(
                "rospec_id",
                "0 is reserved (all ROSpecs)",
            ));
        }
        if !(200..=60_000).contains(&self.keepalive_ms) {
            out.push(ConfigProblem::new("keepalive_ms", "must be 200..=60000"));
        }
        for (key, v) in [
            ("departure_s", self.departure_s),
            ("move_after_s", self.move_after_s),
        ] {
            if !v.is_finite() || v <= 0.0 {
                out.push(ConfigProblem::new(key, "must be a positive number"));
            }
        }
        if !(-120.0..=0.0).contains(&self.rssi_min) {
            out.push(ConfigProblem::new("rssi_min", "must be -120..=0 dBm"));
        }
        if self.arrive_reads == 0 {
            out.push(ConfigProblem::new("arrive_reads", "must be at least 1"));
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            out.push(ConfigProblem::new("timeout_ms", "must be 100..=60000"));
        }
        if self.antennas.contains(&0) {
            out.push(ConfigProblem::new(
                "antennas",
                "antenna ids start at 1 (leave empty for all)",
            ));
        }
        out
    }
}
