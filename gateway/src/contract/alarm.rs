//! The alarm catalogue: every alarm type of the outside contract, described
//! once. The engine's defaults, the config check of `[[rules]]`, the console's
//! labels and the messages guards read are all derived from this table, so
//! adding an alarm type means one entry here and the rule that raises it.

use drivers::SensorKind;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Most severe first, as the console sorts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Major,
    Minor,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::Major,
        Severity::Minor,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Major => "major",
            Severity::Minor => "minor",
            Severity::Info => "info",
        }
    }
}

/// Lifecycle states; one record is journaled and published per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlarmState {
    Raised,
    Acked,
    Cleared,
    Escalated,
}

impl AlarmState {
    pub const ALL: [AlarmState; 4] = [
        AlarmState::Raised,
        AlarmState::Acked,
        AlarmState::Cleared,
        AlarmState::Escalated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Raised => "raised",
            AlarmState::Acked => "acked",
            AlarmState::Cleared => "cleared",
            AlarmState::Escalated => "escalated",
        }
    }
}

/// A `[[rules]]` key that only some alarm types take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleParam {
    Hours,
    Tags,
    Count,
    WindowS,
    Hold,
    Prompt,
}

impl RuleParam {
    pub const ALL: [RuleParam; 6] = [
        RuleParam::Hours,
        RuleParam::Tags,
        RuleParam::Count,
        RuleParam::WindowS,
        RuleParam::Hold,
        RuleParam::Prompt,
    ];

    /// The key in `[[rules]]`.
    pub fn key(self) -> &'static str {
        match self {
            RuleParam::Hours => "hours",
            RuleParam::Tags => "tags",
            RuleParam::Count => "count",
            RuleParam::WindowS => "window_s",
            RuleParam::Hold => "hold",
            RuleParam::Prompt => "prompt",
        }
    }

    /// The alarm types that take this key.
    pub fn types(self) -> Vec<AlarmType> {
        AlarmType::ALL
            .iter()
            .copied()
            .filter(|t| t.info().params.contains(&self))
            .collect()
    }
}

/// How one alarm type behaves by default, and how it is worded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlarmInfo {
    pub severity: Severity,
    /// The condition ending (door closed, sensor normal) clears it without an
    /// acknowledgement; otherwise a guard must acknowledge it.
    pub auto_clear: bool,
    /// Escalates when not acknowledged in time (`[alarms] escalate_*_s` by severity).
    pub escalates: bool,
    /// The sensor whose activation raises it, if a sensor does.
    pub sensor: Option<SensorKind>,
    /// `[[rules]]` keys beyond the common ones (enabled, severity, auto_clear, escalation).
    pub params: &'static [RuleParam],
    /// The console's labels.
    pub zh: &'static str,
    pub en: &'static str,
    /// The message guards and the platform read, with `{name}` placeholders
    /// that the raising rule fills in (see [`AlarmType::message`]).
    pub message: &'static str,
}

/// Declares the alarm types and their catalogue entries in one table.
macro_rules! alarm_catalogue {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal {
        severity: $sev:ident,
        auto_clear: $auto_clear:expr,
        escalates: $escalates:expr,
        sensor: $sensor:expr,
        params: [$($param:ident),*],
        zh: $zh:literal,
        en: $en:literal,
        message: $message:literal $(,)?
    } )*) => {
        /// Alarm types of the outside contract (`P/alarms/{type}`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum AlarmType {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )*
        }

        impl AlarmType {
            pub const ALL: &'static [AlarmType] = &[$(AlarmType::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(AlarmType::$variant => $name,)* }
            }

            /// The catalogue entry.
            pub fn info(self) -> AlarmInfo {
                match self {
                    $(AlarmType::$variant => AlarmInfo {
                        severity: Severity::$sev,
                        auto_clear: $auto_clear,
                        escalates: $escalates,
                        sensor: $sensor,
                        params: &[$(RuleParam::$param),*],
                        zh: $zh,
                        en: $en,
                        message: $message,
                    },)*
                }
            }
        }
    };
}

alarm_catalogue! {
    /// A door contact opened without a grant (momentary: acknowledging clears it).
    DoorForced = "door_forced" {
        severity: Critical, auto_clear: false, escalates: true, sensor: None, params: [],
        zh: "门被强行打开", en: "Door forced",
        message: "{place} opened without a grant",
    }
    DoorHeldOpen = "door_held_open" {
        severity: Major, auto_clear: true, escalates: true, sensor: None, params: [],
        zh: "门长时间未关", en: "Door held open",
        message: "{place} held open for {seconds} s",
    }
    Tailgating = "tailgating" {
        severity: Major, auto_clear: false, escalates: true, sensor: None, params: [],
        zh: "尾随进入", en: "Tailgating",
        message: "{passed} passed on {granted} grant(s) at {place}",
    }
    EbikeInElevator = "ebike_in_elevator" {
        severity: Major, auto_clear: true, escalates: true,
        sensor: Some(SensorKind::EbikeDetected), params: [Hold, Prompt],
        zh: "电动车进电梯", en: "E-bike in elevator",
        message: "e-bike {tag} at {place}{owner}",
    }
    WatchlistFace = "watchlist_face" {
        severity: Critical, auto_clear: false, escalates: true, sensor: None, params: [],
        zh: "黑名单人员", en: "Watchlist person",
        message: "watchlist person {name} seen at {place}",
    }
    UnknownFace = "unknown_face" {
        severity: Minor, auto_clear: false, escalates: true, sensor: None,
        params: [Count, WindowS],
        zh: "陌生人", en: "Unknown face",
        message: "{count} unknown faces at {place} within {window} s",
    }
    DeviceOffline = "device_offline" {
        severity: Major, auto_clear: true, escalates: true, sensor: None, params: [],
        zh: "设备离线", en: "Device offline",
        message: "device {device} offline: {reason}",
    }
    Tamper = "tamper" {
        severity: Critical, auto_clear: false, escalates: true, sensor: None, params: [],
        zh: "设备防拆", en: "Tamper",
        message: "tamper at device {device}: {detail}",
    }
    Smoke = "smoke" {
        severity: Critical, auto_clear: false, escalates: true,
        sensor: Some(SensorKind::Smoke), params: [],
        zh: "烟雾报警", en: "Smoke",
        message: "smoke at {place}",
    }
    Gas = "gas" {
        severity: Critical, auto_clear: false, escalates: true,
        sensor: Some(SensorKind::Gas), params: [],
        zh: "燃气报警", en: "Gas",
        message: "gas at {place}",
    }
    FenceIntrusion = "fence_intrusion" {
        severity: Critical, auto_clear: false, escalates: true,
        sensor: Some(SensorKind::FenceIntrusion), params: [],
        zh: "周界入侵", en: "Fence intrusion",
        message: "fence_intrusion at {place}",
    }
    SosCall = "sos_call" {
        severity: Critical, auto_clear: false, escalates: true,
        sensor: Some(SensorKind::Sos), params: [],
        zh: "一键求助", en: "SOS call",
        message: "sos_call at {place}",
    }
    WelfareNoActivity = "welfare_no_activity" {
        severity: Major, auto_clear: true, escalates: true, sensor: None,
        params: [Hours, Tags],
        zh: "独居老人无活动", en: "No activity (welfare)",
        message: "no activity from {name} ({person}) for {hours} h; {last}",
    }
    /// Records the platform never received were evicted (disk budget), or
    /// skipped by the uplink as too large to send.
    DataLoss = "data_loss" {
        severity: Major, auto_clear: false, escalates: true, sensor: None, params: [],
        zh: "数据丢失", en: "Data loss",
        message: "{count} records never forwarded to the platform were lost (evicted by the disk budget, or too large to send)",
    }
    BufferHigh = "buffer_high" {
        severity: Minor, auto_clear: true, escalates: true, sensor: None, params: [],
        zh: "上传积压", en: "Upload backlog",
        message: "{count} records wait to be forwarded to the platform",
    }
}

impl AlarmType {
    pub fn parse(s: &str) -> Option<AlarmType> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }

    /// The alarm type a sensor's activation raises.
    pub fn for_sensor(sensor: SensorKind) -> Option<AlarmType> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.info().sensor == Some(sensor))
    }

    /// The catalogue's message with its placeholders filled in; a placeholder
    /// without a value stays as it is (a test checks every rule fills its own).
    pub fn message(self, vars: &[(&str, &dyn fmt::Display)]) -> String {
        let template = self.info().message;
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            match after.find('}') {
                Some(end) => {
                    let name = &after[..end];
                    match vars.iter().find(|(k, _)| *k == name) {
                        Some((_, v)) => out.push_str(&v.to_string()),
                        None => out.push_str(&rest[start..start + end + 2]),
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The placeholders of the message (for the test that rules fill them all).
    pub fn placeholders(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut rest = self.info().message;
        while let Some(start) = rest.find('{') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('}') else { break };
            out.push(&after[..end]);
            rest = &after[end + 1..];
        }
        out
    }
}

impl fmt::Display for AlarmType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_described() {
        for &t in AlarmType::ALL {
            let info = t.info();
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
            assert_eq!(AlarmType::parse(t.as_str()), Some(t));
            assert!(
                !info.zh.trim().is_empty() && !info.en.trim().is_empty(),
                "{t}"
            );
            assert!(!info.message.trim().is_empty(), "{t}");
        }
        let mut names: Vec<&str> = AlarmType::ALL.iter().map(|t| t.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), AlarmType::ALL.len());
    }

    #[test]
    fn messages_fill_placeholders() {
        let m = AlarmType::DoorHeldOpen.message(&[("place", &"Lobby"), ("seconds", &31)]);
        assert_eq!(m, "Lobby held open for 31 s");
        assert_eq!(
            AlarmType::DoorHeldOpen.placeholders(),
            vec!["place", "seconds"]
        );
        // A missing value stays visible instead of vanishing.
        assert_eq!(
            AlarmType::Smoke.message(&[]),
            "smoke at {place}".to_string()
        );
    }

    #[test]
    fn sensors_and_params_map_back() {
        assert_eq!(
            AlarmType::for_sensor(SensorKind::Sos),
            Some(AlarmType::SosCall)
        );
        assert_eq!(RuleParam::Hours.types(), vec![AlarmType::WelfareNoActivity]);
        for p in RuleParam::ALL {
            assert!(
                !p.types().is_empty(),
                "{} applies to no alarm type",
                p.key()
            );
        }
    }
}
