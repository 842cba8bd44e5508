//! The engine's own config sections and their checks: the site (`[[doors]]`,
//! where each `[[devices]]` entry is), who may pass (`[[access]]`,
//! `[[schedules]]`, seeded `[[persons]]`) and the alarms (`[alarms]`,
//! `[[rules]]`). References between sections are checked by `config`.

use drivers::{Credential, DeviceId, Direction, DriverConfig};
use serde::Deserialize;

use crate::contract::{AlarmType, DoorId, Group, RuleParam, Severity, ZoneId};
use crate::settings::Problem;

/// What a door physically is; some rules depend on it (e-bikes in elevators).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorKind {
    #[default]
    Door,
    Gate,
    Turnstile,
    Barrier,
    Elevator,
    Lobby,
}

/// `[[doors]]`: anything that opens, with its zone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoorConfig {
    pub id: DoorId,
    pub name: Option<String>,
    pub zone: ZoneId,
    #[serde(default)]
    pub kind: DoorKind,
    /// How long the lock is released on a grant.
    #[serde(default = "default_open_ms")]
    pub open_ms: u32,
    /// Open longer than this raises `door_held_open`.
    #[serde(default = "default_held_open_s")]
    pub held_open_s: u32,
    /// The device whose lock output opens this door; default: every device bound to it.
    pub lock: Option<DeviceId>,
    /// Refuse a second entry (or exit) into the zone without the matching exit (or entry).
    #[serde(default)]
    pub anti_passback: bool,
    /// Whether the exit button releases the lock.
    #[serde(default = "yes")]
    pub exit_request_opens: bool,
}

fn default_open_ms() -> u32 {
    3000
}
fn default_held_open_s() -> u32 {
    30
}
fn yes() -> bool {
    true
}

impl DoorConfig {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.id.as_str())
    }
}

/// `[[devices]]`: the keys every device has, plus its driver's own.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub id: DeviceId,
    pub name: Option<String>,
    /// The door this device reads for or drives.
    pub door: Option<DoorId>,
    pub direction: Option<Direction>,
    /// The zone of a device that is not at a door (sensors, an elevator's tag reader).
    pub zone: Option<ZoneId>,
    pub driver: DriverConfig,
}

/// `[alarms]`: when unacknowledged alarms escalate, by severity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsSection {
    /// Seconds before an unacknowledged critical alarm escalates; 0: never.
    #[serde(default = "default_escalate_critical")]
    pub escalate_critical_s: u64,
    #[serde(default = "default_escalate_major")]
    pub escalate_major_s: u64,
    #[serde(default)]
    pub escalate_minor_s: u64,
    /// How many escalations at most (each after the same delay again).
    #[serde(default = "default_escalate_repeat")]
    pub escalate_repeat: u32,
}

fn default_escalate_critical() -> u64 {
    120
}
fn default_escalate_major() -> u64 {
    600
}
fn default_escalate_repeat() -> u32 {
    3
}

impl Default for AlarmsSection {
    fn default() -> Self {
        Self {
            escalate_critical_s: default_escalate_critical(),
            escalate_major_s: default_escalate_major(),
            escalate_minor_s: 0,
            escalate_repeat: default_escalate_repeat(),
        }
    }
}

/// `[[rules]]`: changes the behaviour of one alarm type from its defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    #[serde(rename = "type")]
    pub alarm_type: AlarmType,
    pub enabled: Option<bool>,
    pub severity: Option<Severity>,
    /// The condition ending clears the alarm without an acknowledgement.
    pub auto_clear: Option<bool>,
    /// Overrides `[alarms]` for this type; 0: never escalate.
    pub escalate_after_s: Option<u64>,
    pub escalate_repeat: Option<u32>,
    /// welfare_no_activity: hours without a pass before the alarm (default 24).
    pub hours: Option<f64>,
    /// welfare_no_activity: the person tags watched (default ["elderly_alone"]).
    pub tags: Option<Vec<String>>,
    /// unknown_face: this many unknown faces at one door within `window_s` (default 3 in 60 s).
    pub count: Option<u32>,
    pub window_s: Option<u64>,
    /// ebike_in_elevator: hold the elevator (ElevatorHold output) until the e-bike leaves (default true).
    pub hold: Option<bool>,
    /// ebike_in_elevator: the voice prompt played.
    pub prompt: Option<String>,
}

/// `[[access]]`: which group may pass where and when. A person is let through
/// when some rule for their group covers the door (by door or zone) and its
/// schedule is open now.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// `resident`, `staff`, `visitor` (never `watchlist`).
    pub group: Group,
    /// Zones covered; `"*"` for all.
    #[serde(default)]
    pub zones: Vec<String>,
    /// Doors covered, in addition to the zones.
    #[serde(default)]
    pub doors: Vec<DoorId>,
    /// A `[[schedules]] id`; absent: at any time.
    pub schedule: Option<String>,
}

/// `[roster] max_credentials_per_person`: the default.
pub const DEFAULT_MAX_CREDENTIALS: usize = 20;

/// `[roster]`: bounds on what the platform and the console may store per person.
/// (`[[access]]` is a list of rules, so the roster's own keys live here.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterSection {
    /// Credentials (cards, tags, plates, PINs) one person may hold; an upsert
    /// with more is refused (code `invalid`).
    #[serde(default = "default_max_credentials")]
    pub max_credentials_per_person: usize,
}

fn default_max_credentials() -> usize {
    DEFAULT_MAX_CREDENTIALS
}

impl Default for RosterSection {
    fn default() -> Self {
        Self {
            max_credentials_per_person: DEFAULT_MAX_CREDENTIALS,
        }
    }
}

impl RosterSection {
    pub fn check(&self) -> Vec<Problem> {
        if (1..=10_000).contains(&self.max_credentials_per_person) {
            Vec::new()
        } else {
            vec![Problem::new(
                "max_credentials_per_person",
                "must be between 1 and 10000",
            )]
        }
    }
}

/// `[[schedules]]`: named weekly time windows in the estate's local time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub id: String,
    /// `"mon-fri 07:00-22:00"`, `"sat,sun 08:00-20:00"`, `"daily 00:00-24:00"`.
    pub windows: Vec<String>,
}

/// `[[persons]]`: persons seeded into the roster at start (the platform's
/// `person.upsert` and the console change them later).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonSeed {
    pub id: String,
    pub name: String,
    pub group: Group,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `type:value`, e.g. `card:10001`, `plate:京A12345`.
    #[serde(default)]
    pub credentials: Vec<String>,
    pub valid_from: Option<chrono::DateTime<chrono::Utc>>,
    pub valid_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Everything the engine is built from, gathered by `config` from the file.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub doors: Vec<DoorConfig>,
    pub devices: Vec<DeviceConfig>,
    pub access: Vec<AccessRule>,
    pub schedules: Vec<ScheduleConfig>,
    pub persons: Vec<PersonSeed>,
    pub alarms: AlarmsSection,
    pub rules: Vec<RuleConfig>,
    /// The estate's local time offset, for schedules and messages.
    pub utc_offset: chrono::FixedOffset,
    /// Face thresholds (`[faces]`); without them face reads are taken as matched.
    pub faces: Option<super::faces::FaceRules>,
}

impl DoorConfig {
    /// Checks what serde cannot; keys are relative to the door's table.
    pub fn check(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.open_ms == 0 || self.open_ms > 60_000 {
            out.push(Problem::new("open_ms", "must be between 1 and 60000"));
        }
        if self.held_open_s == 0 {
            out.push(Problem::new("held_open_s", "must be at least 1"));
        }
        out
    }
}

impl ScheduleConfig {
    /// Checks the windows; keys are relative to the schedule's table.
    pub fn check(&self) -> Vec<Problem> {
        match super::Schedule::parse(&self.windows) {
            Ok(_) => Vec::new(),
            Err(e) => vec![Problem::new("windows", e)],
        }
    }
}

impl AccessRule {
    /// Checks what needs no other section; keys are relative to the rule's table.
    pub fn check(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.group == Group::Watchlist {
            out.push(Problem::new(
                "group",
                "watchlist persons are never let through",
            ));
        }
        if self.zones.is_empty() && self.doors.is_empty() {
            out.push(Problem::new("", "needs `zones` or `doors`"));
        }
        out
    }
}

impl PersonSeed {
    /// Checks the credentials; keys are relative to the person's table.
    pub fn check(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (j, cred) in self.credentials.iter().enumerate() {
            if let Err(e) = Credential::parse_shorthand(cred) {
                out.push(Problem::new(format!("credentials[{j}]"), e.to_string()));
            }
        }
        out
    }
}

impl RuleConfig {
    /// The type-specific keys set in this rule.
    fn params(&self) -> Vec<RuleParam> {
        let set = [
            (RuleParam::Hours, self.hours.is_some()),
            (RuleParam::Tags, self.tags.is_some()),
            (RuleParam::Count, self.count.is_some()),
            (RuleParam::WindowS, self.window_s.is_some()),
            (RuleParam::Hold, self.hold.is_some()),
            (RuleParam::Prompt, self.prompt.is_some()),
        ];
        set.into_iter()
            .filter(|(_, s)| *s)
            .map(|(p, _)| p)
            .collect()
    }

    /// Checks the rule against the alarm catalogue; keys are relative to the rule's table.
    pub fn check(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let info = self.alarm_type.info();
        for p in self.params() {
            if !info.params.contains(&p) {
                let names: Vec<&str> = p.types().iter().map(|t| t.as_str()).collect();
                out.push(Problem::new(
                    p.key(),
                    format!("only applies to type {}", names.join(", ")),
                ));
            }
        }
        if self.hours.is_some_and(|h| !(h > 0.0 && h.is_finite())) {
            out.push(Problem::new("hours", "must be a positive number of hours"));
        }
        if self.count == Some(0) {
            out.push(Problem::new("count", "must be at least 1"));
        }
        if self.window_s == Some(0) {
            out.push(Problem::new("window_s", "must be at least 1"));
        }
        out
    }
}
