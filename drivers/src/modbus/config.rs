//! Keys of a `driver = "modbus"` device: a barrier, turnstile controller or
//! sensor panel reached over Modbus TCP or RTU, with its coils and inputs mapped.

use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

use super::pdu::Table;
use crate::driver::ConfigProblem;
use crate::event::{InputKind, Output, SensorKind};
use crate::serial::{LineParity, SerialSettings, BAUD_RATES};

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Rtu,
}

/// One mapped input or sensor: where it is read and what it means.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// A door contact, loop detector, gate position (exactly one of input / sensor).
    pub input: Option<InputKind>,
    /// A safety sensor (smoke, gas, fence_intrusion, sos, ebike_detected).
    pub sensor: Option<SensorKind>,
    /// `coil`, `discrete`, `holding` or `input` (register).
    pub table: Table,
    /// Protocol address (0-based).
    pub address: u16,
    /// Bits: active when 0 instead of 1 (normally-closed contacts).
    #[serde(default)]
    pub invert: bool,
    /// Registers: the value is `raw * scale` (e.g. 0.1 for tenths of ppm).
    #[serde(default = "one")]
    pub scale: f64,
    /// Registers: active at or above this (scaled) value, the sensor's alarm level.
    pub alarm_above: Option<f64>,
}

fn one() -> f64 {
    1.0
}

/// `driver = "modbus"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModbusConfig {
    pub transport: Transport,
    /// TCP: `host:port` (port 502 when omitted).
    pub host: Option<String>,
    /// RTU: the serial port.
    pub port: Option<String>,
    #[serde(default = "default_baud")]
    pub baud: u32,
    #[serde(default)]
    pub parity: LineParity,
    #[serde(default = "one_u8")]
    pub stop_bits: u8,
    /// The unit (slave) id.
    #[serde(default = "one_u8")]
    pub unit: u8,
    /// Coils driven by the logical outputs, e.g. `{ lock = 0, elevator_hold = 1 }`.
    #[serde(default)]
    pub outputs: HashMap<Output, u16>,
    /// Inputs and sensors read on every poll.
    #[serde(default)]
    pub points: Vec<Point>,
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// How long to wait for a response.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Failed polls in a row before the device is reported offline.
    #[serde(default = "default_offline_after")]
    pub offline_after: u32,
}

fn default_baud() -> u32 {
    9600
}
fn one_u8() -> u8 {
    1
}
fn default_poll_ms() -> u64 {
    200
}
fn default_timeout_ms() -> u64 {
    500
}
fn default_offline_after() -> u32 {
    3
}

impl ModbusConfig {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn tcp_address(&self) -> String {
        let h = self.host.clone().unwrap_or_default();
        if h.rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            h
        } else {
            format!("{h}:502")
        }
    }

    pub fn serial(&self) -> SerialSettings {
        SerialSettings {
            port: self.port.clone().unwrap_or_default(),
            baud: self.baud,
            parity: self.parity,
            stop_bits: self.stop_bits,
        }
    }

    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        match self.transport {
            Transport::Tcp => {
                if self.host.as_deref().is_none_or(|h| h.trim().is_empty()) {
                    out.push(ConfigProblem::new(
                        "host",
                        "transport \"tcp\" needs host = \"ip:port\"",
                    ));
                }
                if self.port.is_some() {
                    out.push(ConfigProblem::new("port", "only for transport \"rtu\""));
                }
            }
            Transport::Rtu => {
                if self.port.as_deref().is_none_or(|p| p.trim().is_empty()) {
                    out.push(ConfigProblem::new(
                        "port",
                        "transport \"rtu\" needs a serial port",
                    ));
                }
                if self.host.is_some() {
                    out.push(ConfigProblem::new("host", "only for transport \"tcp\""));
                }
                if !BAUD_RATES.contains(&self.baud) {
                    out.push(ConfigProblem::new(
                        "baud",
                        format!("{} is not one of {BAUD_RATES:?}", self.baud),
                    ));
                }
                if !(1..=2).contains(&self.stop_bits) {
                    out.push(ConfigProblem::new("stop_bits", "must be 1 or 2"));
                }
            }
        }
        if !(1..=247).contains(&self.unit) {
            out.push(ConfigProblem::new("unit", "must be 1..=247"));
        }
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            out.push(ConfigProblem::new("poll_interval_ms", "must be 10..=60000"));
        }
        if !(10..=10_000).contains(&self.timeout_ms) {
            out.push(ConfigProblem::new("timeout_ms", "must be 10..=10000"));
        }
        if self.offline_after == 0 {
            out.push(ConfigProblem::new("offline_after", "must be at least 1"));
        }
        for (i, p) in self.points.iter().enumerate() {
            let key = |k: &str| format!("points[{i}].{k}");
            if p.input.is_some() == p.sensor.is_some() {
                out.push(ConfigProblem::new(
                    format!("points[{i}]"),
                    "needs exactly one of `input` or `sensor`",
                ));
            }
            if p.table.is_bits() && p.alarm_above.is_some() {
                out.push(ConfigProblem::new(key("alarm_above"), "only for registers"));
            }
            if !p.table.is_bits() && p.alarm_above.is_none() {
                out.push(ConfigProblem::new(
                    key("alarm_above"),
                    "a register point needs its alarm level",
                ));
            }
            if !p.scale.is_finite() || p.scale == 0.0 {
                out.push(ConfigProblem::new(
                    key("scale"),
                    "must be a non-zero number",
                ));
            }
        }
        out
    }
}

impl Point {
    /// Whether the point is active for a raw reading.
    pub fn active(&self, raw: PointValue) -> bool {
        match raw {
            PointValue::Bit(b) => b != self.invert,
            PointValue::Register(r) => self
                .alarm_above
                .is_some_and(|level| f64::from(r) * self.scale >= level),
        }
    }
}

/// A raw reading of one point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PointValue {
    Bit(bool),
    Register(u16),
}
