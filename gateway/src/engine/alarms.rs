//! Alarm lifecycle: `raised → acked → cleared`, with `escalated` when nobody
//! acknowledges in time. One alarm per condition (a key such as
//! `door_held_open/north-gate`): a repeat while it is open only bumps its count.
//! Open alarms are written through to sled, so a restart keeps them open.
//!
//! Clearing: where the rule says `auto_clear`, the condition ending (door closed,
//! sensor normal) clears the alarm; otherwise it needs an acknowledgement too.
//! A momentary alarm (door forced) has no lasting condition: acknowledging it clears it.

use chrono::{DateTime, Duration, Utc};
use drivers::DeviceId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

use super::config::{AlarmsSection, RuleConfig};
use crate::contract::{
    Ack, AlarmRecord, AlarmState, AlarmType, DoorId, Draft, PersonRef, Severity, ZoneId,
};

/// How one alarm type behaves (defaults from the contract's alarm catalogue,
/// escalation from `[alarms]`, overridden by `[[rules]]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TypeRule {
    pub enabled: bool,
    pub severity: Severity,
    /// The condition ending clears the alarm without an acknowledgement.
    pub auto_clear: bool,
    /// Escalate when not acknowledged within this long; `None`: never.
    pub escalate_after: Option<Duration>,
    /// How many escalations at most.
    pub escalate_repeat: u32,
}

/// The behaviour of every alarm type.
#[derive(Debug, Clone)]
pub struct AlarmRules {
    types: HashMap<AlarmType, TypeRule>,
}

impl AlarmRules {
    pub fn get(&self, t: AlarmType) -> TypeRule {
        self.types.get(&t).copied().unwrap_or(TypeRule {
            enabled: true,
            severity: Severity::Major,
            auto_clear: false,
            escalate_after: None,
            escalate_repeat: 0,
        })
    }

    pub fn set(&mut self, t: AlarmType, rule: TypeRule) {
        self.types.insert(t, rule);
    }

    /// The escalation delay for a severity from `[alarms]` (0 s: never).
    fn escalation(a: &AlarmsSection, sev: Severity) -> Option<Duration> {
        let s = match sev {
            Severity::Critical => a.escalate_critical_s,
            Severity::Major => a.escalate_major_s,
            Severity::Minor => a.escalate_minor_s,
            Severity::Info => 0,
        };
        (s > 0).then(|| Duration::seconds(s as i64))
    }

    /// The defaults, with `[alarms]` escalation and each `[[rules]]` override.
    pub fn from_config(a: &AlarmsSection, rules: &[RuleConfig]) -> AlarmRules {
        let mut out = Self::with_escalation(a);
        for r in rules {
            let mut t = out.get(r.alarm_type);
            if let Some(sev) = r.severity {
                t.severity = sev;
                t.escalate_after = Self::escalation(a, sev);
            }
            if let Some(e) = r.enabled {
                t.enabled = e;
            }
            if let Some(c) = r.auto_clear {
                t.auto_clear = c;
            }
            if let Some(s) = r.escalate_after_s {
                t.escalate_after = (s > 0).then(|| Duration::seconds(s as i64));
            }
            if let Some(n) = r.escalate_repeat {
                t.escalate_repeat = n;
            }
            out.set(r.alarm_type, t);
        }
        out
    }

    fn with_escalation(a: &AlarmsSection) -> Self {
        let types = AlarmType::ALL
            .iter()
            .map(|&t| {
                let info = t.info();
                let rule = TypeRule {
                    enabled: true,
                    severity: info.severity,
                    auto_clear: info.auto_clear,
                    escalate_after: if info.escalates {
                        Self::escalation(a, info.severity)
                    } else {
                        None
                    },
                    escalate_repeat: a.escalate_repeat,
                };
                (t, rule)
            })
            .collect();
        Self { types }
    }
}

impl Default for AlarmRules {
    /// Critical alarms escalate after 2 min, major after 10 min, 3 times at most.
    fn default() -> Self {
        Self::with_escalation(&AlarmsSection::default())
    }
}

/// The parameters of the rules that have some (`[[rules]]` keys).
#[derive(Debug, Clone)]
pub struct RuleParams {
    /// welfare_no_activity: silence this long raises it.
    pub welfare_after: Duration,
    pub welfare_tags: Vec<String>,
    /// unknown_face: this many unknown faces at one door within `unknown_window`.
    pub unknown_count: u32,
    pub unknown_window: Duration,
    /// ebike_in_elevator: hold the car, and what to say.
    pub ebike_hold: bool,
    pub ebike_prompt: String,
}

impl Default for RuleParams {
    fn default() -> Self {
        Self {
            welfare_after: Duration::hours(24),
            welfare_tags: vec!["elderly_alone".into()],
            unknown_count: 3,
            unknown_window: Duration::seconds(60),
            ebike_hold: true,
            ebike_prompt:
                "电动车禁止进入电梯，请退出。E-bikes are not allowed in the elevator, please leave."
                    .into(),
        }
    }
}

impl RuleParams {
    pub fn from_config(rules: &[RuleConfig]) -> RuleParams {
        let mut p = RuleParams::default();
        for r in rules {
            if let Some(h) = r.hours {
                p.welfare_after = Duration::milliseconds((h * 3_600_000.0) as i64);
            }
            if let Some(t) = &r.tags {
                p.welfare_tags = t.clone();
            }
            if let Some(c) = r.count {
                p.unknown_count = c;
            }
            if let Some(w) = r.window_s {
                p.unknown_window = Duration::seconds(w as i64);
            }
            if let Some(h) = r.hold {
                p.ebike_hold = h;
            }
            if let Some(pr) = &r.prompt {
                p.ebike_prompt = pr.clone();
            }
        }
        p
    }
}

/// What a rule asks to raise.
#[derive(Debug, Clone)]
pub struct AlarmSpec {
    pub alarm_type: AlarmType,
    /// What the alarm is about, for deduplication: a door, device, person, zone.
    pub subject: String,
    pub device: Option<DeviceId>,
    pub door: Option<DoorId>,
    pub zone: Option<ZoneId>,
    pub person: Option<PersonRef>,
    /// The event that raised it.
    pub event: Option<Uuid>,
    pub message: String,
    /// Whether a lasting condition stands behind it (door still open, sensor active).
    pub lasting: bool,
    /// JPEG evidence (a face crop).
    pub snapshot: Option<bytes::Bytes>,
}

impl AlarmSpec {
    pub fn new(
        alarm_type: AlarmType,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            alarm_type,
            subject: subject.into(),
            device: None,
            door: None,
            zone: None,
            person: None,
            event: None,
            message: message.into(),
            lasting: false,
            snapshot: None,
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.alarm_type, self.subject)
    }
}

/// An alarm that is not cleared yet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OpenAlarm {
    /// The latest lifecycle record (its state, count, ack...).
    pub record: AlarmRecord,
    pub key: String,
    /// The condition behind it still holds.
    pub condition: bool,
    pub auto_clear: bool,
    /// When it was raised or last escalated: the escalation clock.
    pub since: DateTime<Utc>,
}

/// Why an acknowledgement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("no open alarm {0} (unknown, or already cleared)")]
    NotOpen(Uuid),
    #[error("alarm {0} is already acknowledged")]
    AlreadyAcked(Uuid),
    #[error("`by` must name who acknowledges (1-100 characters)")]
    NoActor,
    #[error("note is longer than 1000 characters")]
    NoteTooLong,
}

/// The open alarms.
pub struct Alarms {
    open: BTreeMap<Uuid, OpenAlarm>,
    by_key: HashMap<String, Uuid>,
    tree: sled::Tree,
    pub rules: AlarmRules,
}

impl Alarms {
    /// Loads the open alarms left by the last run.
    pub fn open(tree: sled::Tree, rules: AlarmRules) -> Alarms {
        let mut a = Alarms {
            open: BTreeMap::new(),
            by_key: HashMap::new(),
            tree,
            rules,
        };
        for (_, v) in a.tree.iter().flatten() {
            match serde_json::from_slice::<OpenAlarm>(&v) {
                Ok(o) => {
                    a.by_key.insert(o.key.clone(), o.record.alarm);
                    a.open.insert(o.record.alarm, o);
                }
                Err(e) => tracing::error!("alarms: unreadable open alarm skipped: {e}"),
            }
        }
        a
    }

    pub fn iter(&self) -> impl Iterator<Item = &OpenAlarm> {
        self.open.values()
    }

    pub fn get(&self, id: &Uuid) -> Option<&OpenAlarm> {
        self.open.get(id)
    }

    pub fn find(&self, t: AlarmType, subject: &str) -> Option<&OpenAlarm> {
        self.by_key
            .get(&format!("{t}/{subject}"))
            .and_then(|id| self.open.get(id))
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Raises an alarm, or counts a repeat of an open one (no new record then).
    pub fn raise(&mut self, spec: AlarmSpec, now: DateTime<Utc>) -> Option<Draft> {
        let rule = self.rules.get(spec.alarm_type);
        if !rule.enabled {
            return None;
        }
        let key = spec.key();
        if let Some(id) = self.by_key.get(&key).copied() {
            if let Some(o) = self.open.get_mut(&id) {
                o.record.count += 1;
                o.condition = o.condition || spec.lasting;
                let o = o.clone();
                self.save(&o);
                return None;
            }
        }
        let record = AlarmRecord {
            alarm_type: spec.alarm_type,
            alarm: Uuid::now_v7(),
            state: AlarmState::Raised,
            severity: rule.severity,
            device: spec.device,
            door: spec.door,
            zone: spec.zone,
            event: spec.event,
            person: spec.person,
            ack: None,
            count: 1,
            escalations: 0,
            snapshot: None,
            message: spec.message,
            raised_at: now,
        };
        let o = OpenAlarm {
            record: record.clone(),
            key: key.clone(),
            condition: spec.lasting,
            auto_clear: rule.auto_clear,
            since: now,
        };
        self.by_key.insert(key, record.alarm);
        self.open.insert(record.alarm, o.clone());
        self.save(&o);
        let mut d = Draft::alarm(now, record);
        d.snapshot = spec.snapshot;
        Some(d)
    }

    /// The condition behind an alarm ended (door closed, sensor normal, device back).
    pub fn condition_ended(
        &mut self,
        t: AlarmType,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Option<Draft> {
        let id = *self.by_key.get(&format!("{t}/{subject}"))?;
        let o = self.open.get_mut(&id)?;
        o.condition = false;
        if o.auto_clear || o.record.state == AlarmState::Acked {
            return self.clear(id, now);
        }
        let o = o.clone();
        self.save(&o);
        None
    }

    /// Acknowledges an alarm: an `acked` record, and `cleared` too when nothing holds it open.
    pub fn ack(
        &mut self,
        id: Uuid,
        by: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Draft>, AckError> {
        let by = by.trim();
        if by.is_empty() || by.chars().count() > 100 {
            return Err(AckError::NoActor);
        }
        if note.chars().count() > 1000 {
            return Err(AckError::NoteTooLong);
        }
        let o = self.open.get_mut(&id).ok_or(AckError::NotOpen(id))?;
        if o.record.state == AlarmState::Acked {
            return Err(AckError::AlreadyAcked(id));
        }
        o.record.state = AlarmState::Acked;
        o.record.ack = Some(Ack {
            by: by.to_owned(),
            ts: now,
            note: note.to_owned(),
        });
        let mut out = vec![Draft::alarm(now, o.record.clone())];
        if !o.condition {
            out.extend(self.clear(id, now));
        } else {
            let o = o.clone();
            self.save(&o);
        }
        Ok(out)
    }

    /// Escalates alarms left unacknowledged past their rule's delay.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Draft> {
        let mut out = Vec::new();
        let ids: Vec<Uuid> = self.open.keys().copied().collect();
        for id in ids {
            let Some(o) = self.open.get_mut(&id) else {
                continue;
            };
            if o.record.state == AlarmState::Acked {
                continue;
            }
            let rule = self.rules.get(o.record.alarm_type);
            let Some(after) = rule.escalate_after else {
                continue;
            };
            if o.record.escalations >= rule.escalate_repeat || now - o.since < after {
                continue;
            }
            o.record.escalations += 1;
            o.record.state = AlarmState::Escalated;
            o.since = now;
            out.push(Draft::alarm(now, o.record.clone()));
            let o = o.clone();
            self.save(&o);
        }
        out
    }

    fn clear(&mut self, id: Uuid, now: DateTime<Utc>) -> Option<Draft> {
        let mut o = self.open.remove(&id)?;
        self.by_key.remove(&o.key);
        if let Err(e) = self.tree.remove(id.as_bytes()) {
            tracing::error!(alarm = %id, "alarms: cleared alarm not removed from storage: {e}");
        }
        o.record.state = AlarmState::Cleared;
        Some(Draft::alarm(now, o.record))
    }

    fn save(&self, o: &OpenAlarm) {
        let saved = serde_json::to_vec(o)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                self.tree
                    .insert(o.record.alarm.as_bytes(), v)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = saved {
            tracing::error!(alarm = %o.record.alarm, "alarms: open alarm not saved: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::RecordBody;

    fn alarms() -> Alarms {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Alarms::open(db.open_tree("alarms").unwrap(), AlarmRules::default())
    }

    fn state(d: &Draft) -> AlarmState {
        match &d.body {
            RecordBody::Alarm(a) => a.state,
            _ => panic!("not an alarm"),
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn repeat_is_counted_not_raised_again() {
        let mut a = alarms();
        let mut spec = AlarmSpec::new(AlarmType::Smoke, "s1", "smoke");
        spec.lasting = true;
        assert!(a.raise(spec.clone(), t0()).is_some());
        assert!(a.raise(spec.clone(), t0()).is_none());
        assert!(a.raise(spec, t0()).is_none());
        assert_eq!(a.find(AlarmType::Smoke, "s1").unwrap().record.count, 3);
    }

    #[test]
    fn auto_clear_on_condition_end() {
        let mut a = alarms();
        let mut spec = AlarmSpec::new(AlarmType::DoorHeldOpen, "d1", "held");
        spec.lasting = true;
        a.raise(spec, t0()).unwrap();
        let d = a
            .condition_ended(AlarmType::DoorHeldOpen, "d1", t0())
            .unwrap();
        assert_eq!(state(&d), AlarmState::Cleared);
        assert!(a.is_empty());
    }

    #[test]
    fn needs_ack_when_not_auto_clear() {
        let mut a = alarms();
        let mut spec = AlarmSpec::new(AlarmType::Smoke, "s1", "smoke");
        spec.lasting = true;
        let raised = a.raise(spec, t0()).unwrap();
        let id = match &raised.body {
            RecordBody::Alarm(r) => r.alarm,
            _ => unreachable!(),
        };
        assert!(a.condition_ended(AlarmType::Smoke, "s1", t0()).is_none());
        let out = a.ack(id, "guard1", "checked, burnt toast", t0()).unwrap();
        assert_eq!(
            out.iter().map(state).collect::<Vec<_>>(),
            vec![AlarmState::Acked, AlarmState::Cleared]
        );
        assert_eq!(
            a.ack(id, "guard1", "", t0()).unwrap_err(),
            AckError::NotOpen(id)
        );
    }

    #[test]
    fn acked_alarm_clears_when_condition_ends() {
        let mut a = alarms();
        let mut spec = AlarmSpec::new(AlarmType::Gas, "g1", "gas");
        spec.lasting = true;
        let id = match a.raise(spec, t0()).unwrap().body {
            RecordBody::Alarm(r) => r.alarm,
            _ => unreachable!(),
        };
        let out = a.ack(id, "guard1", "on my way", t0()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            a.ack(id, "guard2", "", t0()).unwrap_err(),
            AckError::AlreadyAcked(id)
        );
        let d = a.condition_ended(AlarmType::Gas, "g1", t0()).unwrap();
        assert_eq!(state(&d), AlarmState::Cleared);
    }

    #[test]
    fn escalates_up_to_repeat_and_survives_reload() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("alarms").unwrap();
        let mut a = Alarms::open(tree.clone(), AlarmRules::default());
        a.raise(AlarmSpec::new(AlarmType::DoorForced, "d1", "forced"), t0())
            .unwrap();
        assert!(a.tick(t0() + Duration::seconds(60)).is_empty());
        let mut n = 0;
        for i in 1..10 {
            n += a.tick(t0() + Duration::seconds(121 * i)).len();
        }
        assert_eq!(n, 3);
        let reloaded = Alarms::open(tree, AlarmRules::default());
        let o = reloaded.find(AlarmType::DoorForced, "d1").unwrap();
        assert_eq!(o.record.state, AlarmState::Escalated);
        assert_eq!(o.record.escalations, 3);
    }

    #[test]
    fn bad_acks() {
        let mut a = alarms();
        assert!(matches!(
            a.ack(Uuid::now_v7(), "g", "", t0()),
            Err(AckError::NotOpen(_))
        ));
        let id = match a
            .raise(AlarmSpec::new(AlarmType::Tamper, "x", "t"), t0())
            .unwrap()
            .body
        {
            RecordBody::Alarm(r) => r.alarm,
            _ => unreachable!(),
        };
        assert_eq!(a.ack(id, " ", "", t0()).unwrap_err(), AckError::NoActor);
        assert_eq!(
            a.ack(id, "g", &"x".repeat(1001), t0()).unwrap_err(),
            AckError::NoteTooLong
        );
        assert_eq!(a.len(), 1);
    }
}
