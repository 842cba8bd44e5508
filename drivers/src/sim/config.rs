//! Keys of a `driver = "sim"` device.

use serde::Deserialize;

use crate::credential::Credential;
use crate::driver::ConfigProblem;
use crate::event::{InputKind, Presence, SensorKind};

/// What kind of device the simulation plays.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// A door panel: reader, lock, door contact, exit button.
    #[default]
    Door,
    /// A vehicle barrier with a plate camera and a loop detector.
    VehicleGate,
    /// A UHF reader watching for e-bike tags (lobby or elevator).
    EbikeReader,
    /// Safety sensors only (smoke, gas, fence, SOS).
    Sensors,
}

/// `driver = "sim"`: a simulated device producing realistic traffic, or a
/// fixed script of events for tests.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    #[serde(default)]
    pub profile: Profile,
    /// Credentials presented at random (`type:value`), e.g. residents' cards and plates.
    #[serde(default)]
    pub credentials: Vec<String>,
    /// Mean seconds between random presentations; 0 or absent: no random traffic.
    #[serde(default)]
    pub mean_interval_s: f64,
    /// Share of random presentations with a credential nobody holds.
    #[serde(default = "default_unknown_rate")]
    pub unknown_rate: f64,
    /// Per presentation, the chance that the door is then held open too long.
    #[serde(default)]
    pub held_rate: f64,
    /// Per presentation, the chance of a forced door (opened with no grant) instead.
    #[serde(default)]
    pub forced_rate: f64,
    /// Per grant, the chance that two people pass (turnstile count 2).
    #[serde(default)]
    pub tailgate_rate: f64,
    /// Seconds the door stays open after a normal pass.
    #[serde(default = "default_pass_s")]
    pub pass_s: f64,
    /// Seconds a held-open door stays open.
    #[serde(default = "default_held_s")]
    pub held_s: f64,
    /// Whether the device reports people counts (turnstile), which makes tailgating observable.
    #[serde(default)]
    pub counts_passages: bool,
    /// Sensors this device carries (profile `sensors`).
    #[serde(default)]
    pub sensors: Vec<SensorKind>,
    /// Mean hours between a sensor's trips; 0: never at random.
    #[serde(default)]
    pub sensor_trip_every_h: f64,
    /// Seconds a tripped sensor stays active.
    #[serde(default = "default_sensor_active_s")]
    pub sensor_active_s: f64,
    /// Seconds an e-bike tag stays at the reader before it departs.
    #[serde(default = "default_dwell_s")]
    pub tag_dwell_s: f64,
    /// Mean minutes between simulated link outages; 0: never.
    #[serde(default)]
    pub outage_every_min: f64,
    /// Seconds a simulated outage lasts.
    #[serde(default = "default_outage_s")]
    pub outage_s: f64,
    /// Random seed, for reproducible traffic.
    pub seed: Option<u64>,
    /// Events at fixed times after start (tests, demos of one scenario).
    #[serde(default)]
    pub script: Vec<ScriptStep>,
}

fn default_unknown_rate() -> f64 {
    0.1
}
fn default_pass_s() -> f64 {
    2.0
}
fn default_held_s() -> f64 {
    45.0
}
fn default_sensor_active_s() -> f64 {
    30.0
}
fn default_dwell_s() -> f64 {
    20.0
}
fn default_outage_s() -> f64 {
    20.0
}

/// One scripted event: `at_ms` after start, exactly one of the action keys.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptStep {
    pub at_ms: u64,
    /// A credential presented (`type:value`).
    pub read: Option<String>,
    /// The read arrives late (buffered through an outage).
    #[serde(default)]
    pub late: bool,
    pub input: Option<InputKind>,
    pub sensor: Option<SensorKind>,
    /// State for `input`, `sensor` or `tamper`.
    pub active: Option<bool>,
    /// An e-bike tag EPC with its `presence`.
    pub tag: Option<String>,
    pub presence: Option<Presence>,
    /// People counted by a turnstile.
    pub passage: Option<u32>,
    pub tamper: Option<bool>,
    /// A device error message.
    pub fault: Option<String>,
    /// Take the simulated link `"down"` or bring it `"up"`.
    pub link: Option<LinkStep>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LinkStep {
    Up,
    Down,
}

impl SimConfig {
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        for (i, c) in self.credentials.iter().enumerate() {
            if let Err(e) = Credential::parse_shorthand(c) {
                problems.push(ConfigProblem::new(
                    format!("credentials[{i}]"),
                    e.to_string(),
                ));
            }
        }
        let rates = [
            ("unknown_rate", self.unknown_rate),
            ("held_rate", self.held_rate),
            ("forced_rate", self.forced_rate),
            ("tailgate_rate", self.tailgate_rate),
        ];
        for (key, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                problems.push(ConfigProblem::new(key, "must be between 0 and 1"));
            }
        }
        let durations = [
            ("mean_interval_s", self.mean_interval_s),
            ("pass_s", self.pass_s),
            ("held_s", self.held_s),
            ("sensor_trip_every_h", self.sensor_trip_every_h),
            ("sensor_active_s", self.sensor_active_s),
            ("tag_dwell_s", self.tag_dwell_s),
            ("outage_every_min", self.outage_every_min),
            ("outage_s", self.outage_s),
        ];
        for (key, d) in durations {
            if !d.is_finite() || d < 0.0 {
                problems.push(ConfigProblem::new(key, "must be a non-negative number"));
            }
        }
        if self.mean_interval_s > 0.0
            && self.credentials.is_empty()
            && matches!(self.profile, Profile::Door | Profile::VehicleGate)
            && self.unknown_rate < 1.0
        {
            problems.push(ConfigProblem::new(
                "credentials",
                "random traffic needs credentials to present (or unknown_rate = 1)",
            ));
        }
        for (i, step) in self.script.iter().enumerate() {
            if let Err(msg) = step.check() {
                problems.push(ConfigProblem::new(format!("script[{i}]"), msg));
            }
        }
        problems
    }
}

impl ScriptStep {
    fn check(&self) -> Result<(), String> {
        let actions = [
            self.read.is_some(),
            self.input.is_some(),
            self.sensor.is_some(),
            self.tag.is_some(),
            self.passage.is_some(),
            self.tamper.is_some(),
            self.fault.is_some(),
            self.link.is_some(),
        ];
        if actions.iter().filter(|a| **a).count() != 1 {
            return Err(
                "needs exactly one of read, input, sensor, tag, passage, tamper, fault, link"
                    .into(),
            );
        }
        if let Some(read) = &self.read {
            Credential::parse_shorthand(read).map_err(|e| e.to_string())?;
        }
        if (self.input.is_some() || self.sensor.is_some()) && self.active.is_none() {
            return Err("input and sensor steps need `active`".into());
        }
        if self.tag.is_some() && self.presence.is_none() {
            return Err("tag steps need `presence`".into());
        }
        Ok(())
    }
}
