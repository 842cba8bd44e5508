//! Keys of a `driver = "osdp"` device: one PD (reader or door panel) at an
//! address on a serial port. Devices that name the same `port` share one bus.

use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::sc::Key;
use crate::driver::ConfigProblem;
use crate::event::{InputKind, Output};
use crate::serial::BAUD_RATES;

/// What a PD input is wired to (`inputs`, by input number).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InputUse {
    Unused,
    DoorContact,
    ExitRequest,
    VehicleLoop,
    GateOpen,
}

impl InputUse {
    pub fn kind(self) -> Option<InputKind> {
        match self {
            InputUse::Unused => None,
            InputUse::DoorContact => Some(InputKind::DoorContact),
            InputUse::ExitRequest => Some(InputKind::ExitRequest),
            InputUse::VehicleLoop => Some(InputKind::VehicleLoop),
            InputUse::GateOpen => Some(InputKind::GateOpen),
        }
    }
}

/// `driver = "osdp"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsdpConfig {
    /// The RS-485 serial port, e.g. `/dev/ttyUSB0`.
    pub port: String,
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// The PD's address on the bus, 0..=126.
    pub address: u8,
    /// A file with the secure channel base key (SCBK), 32 hex digits.
    pub scbk_file: Option<PathBuf>,
    /// Accept a PD that still has the default key (SCBK-D) and give it ours
    /// with osdp_KEYSET (the key from `scbk_file`, or a new random one); the
    /// key set is stored in the device's state folder.
    #[serde(default)]
    pub install_mode: bool,
    /// Require the secure channel (default). `false` only for readers that cannot do it.
    #[serde(default = "yes")]
    pub secure_channel: bool,
    /// The reader number on the PD for LED, buzzer and text.
    #[serde(default)]
    pub reader: u8,
    /// PD output numbers of the logical outputs (default `{ lock = 0 }`).
    #[serde(default = "default_outputs")]
    pub outputs: HashMap<Output, u8>,
    /// What each PD input is wired to, by input number.
    #[serde(default)]
    pub inputs: Vec<InputUse>,
    /// Wait for a reply this long before retrying.
    #[serde(default = "default_reply_timeout_ms")]
    pub reply_timeout_ms: u64,
    /// Without a valid reply for this long the PD is reported offline.
    #[serde(default = "default_offline_timeout_ms")]
    pub offline_timeout_ms: u64,
    /// Least time between two polls of the bus's PDs when there is nothing to send.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Card reads buffered by the PD through a link outage longer than this are
    /// marked `late`: journaled, never used to open a door.
    #[serde(default = "default_late_read_s")]
    pub late_read_s: f64,
}

fn default_baud() -> u32 {
    9600
}
fn yes() -> bool {
    true
}
fn default_outputs() -> HashMap<Output, u8> {
    HashMap::from([(Output::Lock, 0)])
}
fn default_reply_timeout_ms() -> u64 {
    200
}
fn default_offline_timeout_ms() -> u64 {
    2000
}
fn default_poll_interval_ms() -> u64 {
    20
}
fn default_late_read_s() -> f64 {
    10.0
}

/// Parses a key file's text: 32 hex digits, whitespace ignored.
pub fn parse_key(text: &str) -> Result<Key, String> {
    let hex: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = hex::decode(&hex).map_err(|e| format!("not hexadecimal: {e}"))?;
    <Key>::try_from(bytes.as_slice())
        .map_err(|_| format!("{} bytes; an SCBK has 16 (32 hex digits)", bytes.len()))
}

impl OsdpConfig {
    pub fn reply_timeout(&self) -> Duration {
        Duration::from_millis(self.reply_timeout_ms)
    }
    pub fn offline_timeout(&self) -> Duration {
        Duration::from_millis(self.offline_timeout_ms)
    }
    pub fn late_after(&self) -> Duration {
        Duration::try_from_secs_f64(self.late_read_s.max(0.0)).unwrap_or(Duration::ZERO)
    }

    /// The configured key file, resolved against the config folder.
    pub fn key_path(&self, config_dir: &Path) -> Option<PathBuf> {
        self.scbk_file.as_ref().map(|p| {
            if p.is_absolute() {
                p.clone()
            } else {
                config_dir.join(p)
            }
        })
    }

    /// Reads the configured key (None when `scbk_file` is absent).
    pub fn read_key(&self, config_dir: &Path) -> Result<Option<Key>, String> {
        match self.key_path(config_dir) {
            None => Ok(None),
            Some(p) => {
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                parse_key(&text)
                    .map(Some)
                    .map_err(|e| format!("{}: {e}", p.display()))
            }
        }
    }

    pub fn validate(&self, config_dir: &Path) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if self.port.trim().is_empty() {
            out.push(ConfigProblem::new("port", "must name a serial port"));
        }
        if !BAUD_RATES.contains(&self.baud) {
            out.push(ConfigProblem::new(
                "baud",
                format!("{} is not one of {BAUD_RATES:?}", self.baud),
            ));
        }
        if self.address > 126 {
            out.push(ConfigProblem::new(
                "address",
                "must be 0..=126 (127 is broadcast)",
            ));
        }
        if let Err(e) = self.read_key(config_dir) {
            out.push(ConfigProblem::new("scbk_file", e));
        }
        if self.secure_channel && self.scbk_file.is_none() && !self.install_mode {
            out.push(ConfigProblem::new(
                "scbk_file",
                "the secure channel needs a key: set scbk_file, or install_mode = true to give a new reader its key",
            ));
        }
        if self.install_mode && !self.secure_channel {
            out.push(ConfigProblem::new(
                "install_mode",
                "install mode sets a secure channel key: it needs secure_channel = true",
            ));
        }
        let limits = [
            ("reply_timeout_ms", self.reply_timeout_ms, 10, 5_000),
            ("offline_timeout_ms", self.offline_timeout_ms, 100, 600_000),
            ("poll_interval_ms", self.poll_interval_ms, 0, 10_000),
        ];
        for (key, v, lo, hi) in limits {
            if !(lo..=hi).contains(&v) {
                out.push(ConfigProblem::new(key, format!("must be {lo}..={hi}")));
            }
        }
        if self.offline_timeout_ms < self.reply_timeout_ms {
            out.push(ConfigProblem::new(
                "offline_timeout_ms",
                "must be at least reply_timeout_ms",
            ));
        }
        if !self.late_read_s.is_finite() || self.late_read_s < 0.0 {
            out.push(ConfigProblem::new(
                "late_read_s",
                "must be a non-negative number",
            ));
        }
        out
    }
}
