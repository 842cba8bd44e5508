//! The engine: the one owner of access state (roster, doors, open alarms). It
//! takes inputs one at a time (device events, commands, clock ticks) and answers
//! with effects: records for the journal and commands for devices. It does no
//! network I/O and reads the time only from its callers, so it is tested by
//! feeding it inputs.
//!
//! - `roster`: persons and the credential index.
//! - `schedule`, `policy`: who may pass where and when; anti-passback.
//! - `doors`: door states (open, held, forced) and their signals.
//! - `alarms`: alarm lifecycle, dedup, escalation.
//! - `faces`: face reads against the `[faces]` thresholds; unknown-face alarms.
//! - `command`: commands and queries from the platform and the console.
//! - `run`: the task that feeds the engine and carries out its effects.

pub mod alarms;
pub mod command;
pub mod doors;
pub mod faces;
pub mod policy;
pub mod roster;
pub mod run;
pub mod schedule;

pub use alarms::{AlarmRules, AlarmSpec, Alarms, OpenAlarm, RuleParams, TypeRule};
pub use command::{Actor, Command, CommandError, CommandOk, ErrorCode, Query, QueryResult, Source};
pub use doors::{DoorSignal, DoorStatus, DoorView, Doors};
pub use policy::{AntiPassback, Place, Policy, Reason};
pub use roster::{Group, Person, Roster, RosterError};
pub use run::{EngineHandle, Input};
pub use schedule::Schedule;

use chrono::{DateTime, Utc};
use drivers::{
    Action, Credential, CredentialKind, CredentialRead, DeviceCommand, DeviceEvent, DeviceId,
    Direction, DoorId, EventBody, InputKind, Output, PersonId, Presence, SensorKind, ZoneId,
};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};

use crate::config::{Config, DoorConfig, DoorKind};
use crate::journal::{
    AlarmRecord, AlarmType, DecisionRef, Draft, EventAction, EventKind, EventRecord, InputRef,
    PersonRef, SensorRef, TagRef,
};

/// What the engine asks to be done after an input.
#[derive(Debug, Default)]
pub struct Effects {
    pub records: Vec<Draft>,
    pub commands: Vec<DeviceCommand>,
}

impl Effects {
    fn event(&mut self, ts: DateTime<Utc>, e: EventRecord) -> uuid::Uuid {
        let d = Draft::event(ts, e);
        let id = d.id;
        self.records.push(d);
        id
    }

    fn command(&mut self, device: &DeviceId, action: Action) {
        self.commands.push(DeviceCommand {
            device: device.clone(),
            action,
        });
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    #[error("roster: {0}")]
    Roster(#[from] RosterError),
    #[error("config: {0}")]
    Config(String),
}

/// A device as the engine sees it: where it is, not how it talks.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub id: DeviceId,
    pub name: Option<String>,
    pub driver: &'static str,
    pub door: Option<DoorId>,
    pub direction: Option<Direction>,
    pub zone: Option<ZoneId>,
    pub online: Option<bool>,
}

/// A device for the console.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfoView {
    pub id: DeviceId,
    pub driver: &'static str,
    pub door: Option<DoorId>,
    pub zone: Option<ZoneId>,
    pub online: Option<bool>,
}

/// A door for the console: config, state, and its devices' link state.
#[derive(Debug, Clone, Serialize)]
pub struct DoorInfo {
    pub id: DoorId,
    pub name: String,
    pub zone: ZoneId,
    pub kind: DoorKind,
    #[serde(flatten)]
    pub view: DoorView,
    /// All devices of the door online (false if any is offline, null if unknown).
    pub online: Option<bool>,
}

/// Where and when a person was last seen (welfare checks).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastSeen {
    pub ts: DateTime<Utc>,
    /// The door or place; None when the person was never seen (watched since `ts`).
    pub place: Option<String>,
}

/// The engine's state.
pub struct Engine {
    doors_cfg: HashMap<DoorId, DoorConfig>,
    door_order: Vec<DoorId>,
    devices: HashMap<DeviceId, DeviceInfo>,
    device_order: Vec<DeviceId>,
    pub roster: Roster,
    policy: Policy,
    apb: AntiPassback,
    pub alarms: Alarms,
    doors: Doors,
    /// The platform link is up: decisions made while it is down are flagged `offline`.
    link_up: bool,
    gateway: DeviceId,
    /// Face thresholds (`[faces]`); without them face reads are taken as matched.
    faces: Option<faces::FaceRules>,
    params: RuleParams,
    /// Persons whose tags ask for welfare checks.
    watched: HashSet<PersonId>,
    /// Last activity per person, persisted.
    activity: sled::Tree,
    last_welfare_check: Option<DateTime<Utc>>,
    /// Recent unknown faces per door.
    unknown_faces: HashMap<DoorId, VecDeque<DateTime<Utc>>>,
}

impl Engine {
    /// Builds the engine from config and its state in `db`; seeds `[[persons]]`.
    pub fn new(cfg: &Config, db: &sled::Db) -> Result<Engine, EngineError> {
        let rules = AlarmRules::from_config(&cfg.alarms, &cfg.rules);
        let mut doors = Doors::default();
        for d in &cfg.doors {
            doors.add(d.id.clone(), d.held_open_s);
        }
        let devices: HashMap<DeviceId, DeviceInfo> = cfg
            .devices
            .iter()
            .map(|d| {
                let zone = d.zone.clone().or_else(|| {
                    d.door
                        .as_ref()
                        .and_then(|door| cfg.door(door))
                        .map(|door| door.zone.clone())
                });
                (
                    d.id.clone(),
                    DeviceInfo {
                        id: d.id.clone(),
                        name: d.name.clone(),
                        driver: d.driver.name(),
                        door: d.door.clone(),
                        direction: d.direction,
                        zone,
                        online: None,
                    },
                )
            })
            .collect();
        let mut roster = Roster::open(db.open_tree("persons")?)?;
        for seed in &cfg.persons {
            let id = PersonId::new(seed.id.as_str());
            if roster.get(&id).is_some() {
                continue; // the platform or console may have changed it since
            }
            let credentials = seed
                .credentials
                .iter()
                .map(|c| Credential::parse_shorthand(c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| EngineError::Config(format!("persons `{}`: {e}", seed.id)))?;
            roster.upsert(Person {
                id,
                name: seed.name.clone(),
                group: seed.group,
                tags: seed.tags.clone(),
                valid_from: seed.valid_from,
                valid_until: seed.valid_until,
                credentials,
                faces: 0,
            })?;
        }
        let mut engine = Engine {
            doors_cfg: cfg
                .doors
                .iter()
                .map(|d| (d.id.clone(), d.clone()))
                .collect(),
            door_order: cfg.doors.iter().map(|d| d.id.clone()).collect(),
            device_order: cfg.devices.iter().map(|d| d.id.clone()).collect(),
            devices,
            roster,
            policy: Policy::from_config(cfg).map_err(EngineError::Config)?,
            apb: AntiPassback::open(db.open_tree("anti_passback")?),
            alarms: Alarms::open(db.open_tree("alarms")?, rules),
            doors,
            link_up: false,
            gateway: DeviceId::new("gateway"),
            faces: cfg.faces.as_ref().map(faces::FaceRules::new),
            params: RuleParams::from_config(&cfg.rules),
            watched: HashSet::new(),
            activity: db.open_tree("activity")?,
            last_welfare_check: None,
            unknown_faces: HashMap::new(),
        };
        let ids: Vec<PersonId> = engine.roster.iter().map(|p| p.id.clone()).collect();
        for id in ids {
            engine.watch_if_tagged(&id, Utc::now());
        }
        Ok(engine)
    }

    pub fn set_link(&mut self, up: bool) {
        self.link_up = up;
    }

    /// A device reported something.
    pub fn on_device_event(&mut self, ev: DeviceEvent, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        let Some(dev) = self.devices.get(&ev.device).cloned() else {
            tracing::warn!(device = %ev.device, "event from a device not in the config");
            return fx;
        };
        let ts = ev.at;
        let base = |kind: EventKind, action: EventAction| {
            let mut e = EventRecord::new(kind, action, dev.id.clone());
            e.door = dev.door.clone();
            e.zone = dev.zone.clone();
            e
        };
        match ev.body {
            EventBody::Credential(read) => self.on_credential(&dev, read, ts, now, &mut fx),
            EventBody::Online { detail } => {
                self.set_online(&dev.id, true);
                let mut e = base(EventKind::Device, EventAction::Online);
                e.detail = detail;
                fx.event(ts, e);
                self.end(&mut fx, AlarmType::DeviceOffline, dev.id.as_str(), now);
            }
            EventBody::Offline { reason } => {
                self.set_online(&dev.id, false);
                let mut e = base(EventKind::Device, EventAction::Offline);
                e.detail = Some(reason.clone());
                let event = fx.event(ts, e);
                let mut spec = self.spec_for(
                    &dev,
                    AlarmType::DeviceOffline,
                    dev.id.as_str(),
                    format!("device {} offline: {reason}", dev.id),
                );
                spec.event = Some(event);
                spec.lasting = true;
                self.raise(&mut fx, spec, now);
            }
            EventBody::Input { input, active } => {
                let mut e = base(EventKind::Input, EventAction::InputChanged);
                e.input = Some(InputRef { input, active });
                let event = fx.event(ts, e);
                self.on_input(&dev, input, active, event, now, &mut fx);
            }
            EventBody::Sensor {
                sensor,
                active,
                value,
            } => {
                let mut e = base(EventKind::Input, EventAction::SensorChanged);
                e.sensor = Some(SensorRef {
                    sensor,
                    active,
                    value,
                });
                let event = fx.event(ts, e);
                let t = sensor_alarm(sensor);
                if active {
                    let mut spec = self.spec_for(
                        &dev,
                        t,
                        dev.id.as_str(),
                        format!("{} at {}", t, self.place_name(&dev)),
                    );
                    spec.event = Some(event);
                    spec.lasting = true;
                    self.raise(&mut fx, spec, now);
                } else {
                    self.end(&mut fx, t, dev.id.as_str(), now);
                }
            }
            EventBody::Tag {
                epc,
                presence,
                antenna,
                rssi,
            } => self.on_tag(&dev, epc, presence, antenna, rssi, ts, now, &mut fx),
            EventBody::Passage { count, .. } => {
                let mut e = base(EventKind::Input, EventAction::Passage);
                e.count = Some(count);
                let event = fx.event(ts, e);
                if let Some(door) = &dev.door {
                    if let Some(DoorSignal::Tailgate { passed, granted }) =
                        self.doors.passage(door, count)
                    {
                        let mut spec = self.spec_for(
                            &dev,
                            AlarmType::Tailgating,
                            door.as_str(),
                            format!(
                                "{passed} passed on {granted} grant(s) at {}",
                                self.place_name(&dev)
                            ),
                        );
                        spec.event = Some(event);
                        self.raise(&mut fx, spec, now);
                    }
                }
            }
            EventBody::Tamper { active, detail } => {
                let mut e = base(EventKind::Device, EventAction::Tamper);
                e.detail = Some(detail.clone());
                let event = fx.event(ts, e);
                if active {
                    let mut spec = self.spec_for(
                        &dev,
                        AlarmType::Tamper,
                        dev.id.as_str(),
                        format!("tamper at device {}: {detail}", dev.id),
                    );
                    spec.event = Some(event);
                    spec.lasting = true;
                    self.raise(&mut fx, spec, now);
                } else {
                    self.end(&mut fx, AlarmType::Tamper, dev.id.as_str(), now);
                }
            }
            EventBody::Power { ok, detail } => {
                let mut e = base(EventKind::Device, EventAction::Power);
                e.detail = Some(format!(
                    "{}: {detail}",
                    if ok { "mains ok" } else { "on battery" }
                ));
                fx.event(ts, e);
            }
            EventBody::Fault { error } => {
                let mut e = base(EventKind::Device, EventAction::DeviceError);
                e.detail = Some(error);
                fx.event(ts, e);
            }
        }
        fx
    }

    fn on_credential(
        &mut self,
        dev: &DeviceInfo,
        read: CredentialRead,
        ts: DateTime<Utc>,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let kind = match read.credential.kind {
            CredentialKind::Plate => EventKind::Vehicle,
            CredentialKind::Tag => EventKind::Tag,
            CredentialKind::Face => EventKind::Face,
            _ => EventKind::Access,
        };
        // Re-normalise: a driver may have passed the value as the device spelled it.
        let credential = Credential::parse(read.credential.kind, &read.credential.value)
            .unwrap_or(read.credential);
        let face = match (&self.faces, kind) {
            (Some(rules), EventKind::Face) => rules.verdict(&credential.value, read.similarity),
            _ => faces::FaceVerdict::Candidate,
        };
        let person = match credential.kind {
            CredentialKind::Face => self.roster.get(&PersonId::new(credential.value.as_str())),
            _ => self.roster.by_credential(&credential),
        }
        .filter(|_| {
            !matches!(
                face,
                faces::FaceVerdict::Refuse {
                    keep_person: false,
                    ..
                }
            )
        })
        .cloned();
        let mut e = EventRecord::new(kind, EventAction::Decision, dev.id.clone());
        e.door = dev.door.clone();
        e.zone = dev.zone.clone();
        e.direction = dev.direction;
        e.similarity = read.similarity;
        e.confidence = read.confidence;
        e.colour = read.colour;
        e.late = read.late;
        e.offline = Some(!self.link_up);
        e.person = person.as_ref().map(person_ref);
        e.credential = Some(credential);
        let door = dev
            .door
            .as_ref()
            .and_then(|d| self.doors_cfg.get(d))
            .cloned();
        let reason = match (&person, &door) {
            _ if matches!(face, faces::FaceVerdict::Refuse { .. }) => match face {
                faces::FaceVerdict::Refuse { reason, .. } => reason,
                faces::FaceVerdict::Candidate => Reason::UnknownCredential,
            },
            (None, _) => Reason::UnknownCredential,
            (Some(_), None) => Reason::NotAllowedHere,
            (Some(p), Some(door)) => {
                let place = Place {
                    door: &door.id,
                    zone: &door.zone,
                    direction: dev.direction,
                    anti_passback: door.anti_passback,
                };
                self.policy.decide(p, &place, now, &self.apb, read.late)
            }
        };
        e.decision = Some(DecisionRef {
            granted: reason.granted(),
            reason,
        });
        let mut draft = Draft::event(ts, e);
        draft.snapshot = read.snapshot.clone();
        let event_id = draft.id;
        fx.records.push(draft);
        // Reader feedback first: the resident waits for the beep.
        fx.command(
            &dev.id,
            Action::Feedback {
                granted: reason.granted(),
            },
        );
        if let Some(p) = &person {
            self.seen(p, dev, now, fx);
        }
        // A face that failed a gate (`no_usable_face`) is not an unknown face.
        if kind == EventKind::Face && person.is_none() && reason == Reason::UnknownCredential {
            if let Some(door) = &dev.door {
                self.unknown_face(dev, door, event_id, now, fx);
            }
        }
        if let (Some(door), true) = (&door, reason.granted()) {
            self.open_door(door, now, fx);
            if let (Some(p), Some(dir), true) = (&person, dev.direction, door.anti_passback) {
                self.apb.record(&p.id, &door.zone, dir);
            }
        }
        if reason == Reason::Watchlist && kind == EventKind::Face {
            if let Some(p) = &person {
                let mut spec = self.spec_for(
                    dev,
                    AlarmType::WatchlistFace,
                    p.id.as_str(),
                    format!(
                        "watchlist person {} seen at {}",
                        p.name,
                        self.place_name(dev)
                    ),
                );
                spec.person = Some(person_ref(p));
                spec.event = Some(event_id);
                spec.snapshot = read.snapshot;
                self.raise(fx, spec, now);
            }
        }
    }

    fn on_input(
        &mut self,
        dev: &DeviceInfo,
        input: InputKind,
        active: bool,
        event: uuid::Uuid,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let Some(door) = dev
            .door
            .as_ref()
            .and_then(|d| self.doors_cfg.get(d))
            .cloned()
        else {
            return;
        };
        match input {
            InputKind::DoorContact => match self.doors.contact(&door.id, active, now) {
                Some(DoorSignal::Forced) => {
                    let mut spec = self.spec_for(
                        dev,
                        AlarmType::DoorForced,
                        door.id.as_str(),
                        format!("{} opened without a grant", door.display_name()),
                    );
                    spec.event = Some(event);
                    self.raise(fx, spec, now);
                }
                _ if !active => {
                    // Also after a restart, when the door's opening was not seen.
                    self.end(fx, AlarmType::DoorHeldOpen, door.id.as_str(), now);
                }
                _ => {}
            },
            InputKind::ExitRequest if active && door.exit_request_opens => {
                let mut e =
                    EventRecord::new(EventKind::Access, EventAction::DoorRelease, dev.id.clone());
                e.door = Some(door.id.clone());
                e.zone = Some(door.zone.clone());
                e.detail = Some("exit request".into());
                fx.event(now, e);
                self.open_door(&door, now, fx);
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_tag(
        &mut self,
        dev: &DeviceInfo,
        epc: String,
        presence: Presence,
        antenna: Option<u16>,
        rssi: Option<f32>,
        ts: DateTime<Utc>,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let credential = Credential::parse(CredentialKind::Tag, &epc).unwrap_or(Credential {
            kind: CredentialKind::Tag,
            value: epc.clone(),
        });
        let door = dev
            .door
            .as_ref()
            .and_then(|d| self.doors_cfg.get(d))
            .cloned();
        let elevator = door
            .as_ref()
            .is_some_and(|d| matches!(d.kind, DoorKind::Elevator | DoorKind::Lobby));
        if presence == Presence::Arrived && !elevator && door.is_some() {
            // An e-bike at a gate (bike shed, car park): an access decision like a card.
            let mut read = CredentialRead::new(credential);
            read.format = Some("uhf".into());
            self.on_credential(dev, read, ts, now, fx);
            return;
        }
        let person = self.roster.by_credential(&credential).map(person_ref);
        let mut e = EventRecord::new(EventKind::Tag, EventAction::TagSeen, dev.id.clone());
        e.door = dev.door.clone();
        e.zone = dev.zone.clone();
        e.credential = Some(credential.clone());
        e.person = person.clone();
        e.tag = Some(TagRef {
            epc: credential.value.clone(),
            presence,
            antenna,
            rssi,
        });
        let event = fx.event(ts, e);
        if !elevator {
            return;
        }
        let subject = format!(
            "{}/{}",
            dev.door.as_ref().map(|d| d.as_str()).unwrap_or(""),
            credential.value
        );
        match presence {
            Presence::Arrived => {
                let mut spec = self.spec_for(
                    dev,
                    AlarmType::EbikeInElevator,
                    &subject,
                    format!(
                        "e-bike {} at {}{}",
                        credential.value,
                        self.place_name(dev),
                        person
                            .as_ref()
                            .map(|p| format!(" (owner {})", p.id))
                            .unwrap_or_default()
                    ),
                );
                spec.person = person;
                spec.event = Some(event);
                spec.lasting = true;
                self.raise(fx, spec, now);
                if let (Some(door), true) = (&door, self.params.ebike_hold) {
                    for lock in self.lock_devices(door) {
                        fx.command(
                            &lock,
                            Action::Hold {
                                output: Output::ElevatorHold,
                                on: true,
                            },
                        );
                        fx.command(
                            &lock,
                            Action::Voice {
                                prompt: self.params.ebike_prompt.clone(),
                            },
                        );
                    }
                }
            }
            Presence::Departed => {
                self.end(fx, AlarmType::EbikeInElevator, &subject, now);
                if let (Some(door), true) = (&door, self.params.ebike_hold) {
                    for lock in self.lock_devices(door) {
                        fx.command(
                            &lock,
                            Action::Hold {
                                output: Output::ElevatorHold,
                                on: false,
                            },
                        );
                    }
                }
            }
            Presence::Moved => {}
        }
    }

    /// Clock tick: held-open doors, escalations.
    pub fn on_tick(&mut self, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        for (door, signal) in self.doors.tick(now) {
            if let DoorSignal::HeldOpen { for_s } = signal {
                let Some(cfg) = self.doors_cfg.get(&door).cloned() else {
                    continue;
                };
                let mut spec = AlarmSpec::new(
                    AlarmType::DoorHeldOpen,
                    door.as_str(),
                    format!("{} held open for {for_s} s", cfg.display_name()),
                );
                spec.door = Some(door.clone());
                spec.zone = Some(cfg.zone.clone());
                spec.lasting = true;
                self.raise(&mut fx, spec, now);
            }
        }
        fx.records.extend(self.alarms.tick(now));
        let due = self
            .last_welfare_check
            .is_none_or(|t| now - t >= chrono::Duration::seconds(60));
        if due {
            self.last_welfare_check = Some(now);
            self.check_welfare(now, &mut fx);
        }
        fx
    }

    /// Persons with a watched tag and no activity for too long.
    fn check_welfare(&mut self, now: DateTime<Utc>, fx: &mut Effects) {
        let mut ids: Vec<PersonId> = self.watched.iter().cloned().collect();
        ids.sort();
        for id in ids {
            let Some(p) = self.roster.get(&id).cloned() else {
                continue;
            };
            let Some(last) = self.last_seen(&id) else {
                continue;
            };
            if now - last.ts < self.params.welfare_after {
                continue;
            }
            let hours = (now - last.ts).num_minutes() as f64 / 60.0;
            let local = last
                .ts
                .with_timezone(&self.policy.offset())
                .format("%Y-%m-%d %H:%M");
            let message = match &last.place {
                Some(place) => format!(
                    "no activity from {} ({}) for {hours:.1} h; last seen at {place} at {local}",
                    p.name, p.id
                ),
                None => format!(
                    "no activity from {} ({}) for {hours:.1} h; never seen since watched from {local}",
                    p.name, p.id
                ),
            };
            let mut spec = AlarmSpec::new(AlarmType::WelfareNoActivity, id.as_str(), message);
            spec.person = Some(person_ref(&p));
            spec.lasting = true;
            self.raise(fx, spec, now);
        }
    }

    /// Notes where a person was seen; ends a welfare alarm.
    fn seen(&mut self, p: &Person, dev: &DeviceInfo, now: DateTime<Utc>, fx: &mut Effects) {
        if !self.watched.contains(&p.id) {
            return;
        }
        let last = LastSeen {
            ts: now,
            place: Some(self.place_name(dev)),
        };
        self.save_seen(&p.id, &last);
        self.end(fx, AlarmType::WelfareNoActivity, p.id.as_str(), now);
    }

    /// Where and when a watched person was last seen.
    pub fn last_seen(&self, id: &PersonId) -> Option<LastSeen> {
        let v = self.activity.get(id.as_str()).ok().flatten()?;
        serde_json::from_slice(&v).ok()
    }

    fn save_seen(&self, id: &PersonId, last: &LastSeen) {
        let saved = serde_json::to_vec(last)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                self.activity
                    .insert(id.as_str(), v)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = saved {
            tracing::error!(person = %id, "last activity not saved: {e}");
        }
    }

    /// Starts (or stops) watching a person according to their tags; a person
    /// never seen is watched from now.
    fn watch_if_tagged(&mut self, id: &PersonId, now: DateTime<Utc>) {
        let tagged = self
            .roster
            .get(id)
            .is_some_and(|p| p.tags.iter().any(|t| self.params.welfare_tags.contains(t)));
        if tagged {
            if self.watched.insert(id.clone()) && self.last_seen(id).is_none() {
                self.save_seen(
                    id,
                    &LastSeen {
                        ts: now,
                        place: None,
                    },
                );
            }
        } else if self.watched.remove(id) {
            let _ = self.activity.remove(id.as_str());
        }
    }

    /// Counts unknown faces at a door; enough of them in the window raise `unknown_face`.
    fn unknown_face(
        &mut self,
        dev: &DeviceInfo,
        door: &DoorId,
        event: uuid::Uuid,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let window = self.params.unknown_window;
        let count = self.params.unknown_count as usize;
        let seen = self.unknown_faces.entry(door.clone()).or_default();
        seen.push_back(now);
        while seen.front().is_some_and(|t| now - *t > window) {
            seen.pop_front();
        }
        if seen.len() >= count {
            seen.clear();
            let mut spec = self.spec_for(
                dev,
                AlarmType::UnknownFace,
                door.as_str(),
                format!(
                    "{count} unknown faces at {} within {} s",
                    self.place_name(dev),
                    window.num_seconds()
                ),
            );
            spec.event = Some(event);
            self.raise(fx, spec, now);
        }
    }

    /// Records the platform never received were evicted (disk budget): say how many.
    pub fn on_data_loss(&mut self, count: u64, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        let mut spec = AlarmSpec::new(
            AlarmType::DataLoss,
            format!("{}", now.timestamp_millis()),
            format!("{count} records never forwarded to the platform were evicted (disk budget)"),
        );
        spec.device = Some(self.gateway.clone());
        self.raise(&mut fx, spec, now);
        fx
    }

    /// The unforwarded backlog changed: raise or end `buffer_high`.
    pub fn on_backlog(&mut self, unforwarded: u64, threshold: u64, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        let open = self.alarms.find(AlarmType::BufferHigh, "uplink").is_some();
        if unforwarded > threshold && !open {
            let mut spec = AlarmSpec::new(
                AlarmType::BufferHigh,
                "uplink",
                format!("{unforwarded} records wait to be forwarded to the platform"),
            );
            spec.device = Some(self.gateway.clone());
            spec.lasting = true;
            self.raise(&mut fx, spec, now);
        } else if unforwarded <= threshold / 2 && open {
            self.end(&mut fx, AlarmType::BufferHigh, "uplink", now);
        }
        fx
    }

    /// A command from the platform or the console.
    pub fn on_command(
        &mut self,
        cmd: Command,
        now: DateTime<Utc>,
    ) -> (Effects, Result<CommandOk, CommandError>) {
        let mut fx = Effects::default();
        let result = match cmd {
            Command::PersonUpsert { person, by } => {
                let id = person.id.clone();
                let existing_faces = self.roster.get(&id).map(|p| p.faces).unwrap_or(0);
                let person = Person {
                    faces: existing_faces.max(person.faces),
                    ..person
                };
                match self.roster.upsert(person.clone()) {
                    Ok(()) => {
                        self.watch_if_tagged(&id, now);
                        let mut e = self.system_event(EventAction::PersonUpserted, &by);
                        e.person = Some(person_ref(&person));
                        fx.event(now, e);
                        Ok(CommandOk::Person(Box::new(person)))
                    }
                    Err(e) => Err(roster_error(e)),
                }
            }
            Command::PersonDelete { id, by } => match self.roster.delete(&id) {
                Ok(p) => {
                    self.apb.forget(&id);
                    self.watch_if_tagged(&id, now);
                    self.end(&mut fx, AlarmType::WelfareNoActivity, id.as_str(), now);
                    let mut e = self.system_event(EventAction::PersonDeleted, &by);
                    e.person = Some(person_ref(&p));
                    fx.event(now, e);
                    Ok(CommandOk::Done)
                }
                Err(e) => Err(roster_error(e)),
            },
            Command::DoorOpen { door, by } => match self.doors_cfg.get(&door).cloned() {
                Some(cfg) => {
                    let mut e = EventRecord::new(
                        EventKind::Access,
                        EventAction::DoorRelease,
                        self.gateway.clone(),
                    );
                    e.door = Some(door.clone());
                    e.zone = Some(cfg.zone.clone());
                    e.credential = Some(Credential {
                        kind: CredentialKind::Remote,
                        value: by.to_string(),
                    });
                    e.by = Some(by.to_string());
                    e.offline = Some(!self.link_up);
                    fx.event(now, e);
                    self.open_door(&cfg, now, &mut fx);
                    Ok(CommandOk::Done)
                }
                None => Err(CommandError::new(
                    ErrorCode::NotFound,
                    format!("no door `{door}`"),
                )),
            },
            Command::AlarmAck { alarm, by, note } => {
                match self.alarms.ack(alarm, &by.to_string(), &note, now) {
                    Ok(drafts) => {
                        fx.records.extend(drafts);
                        Ok(CommandOk::Done)
                    }
                    Err(e @ alarms::AckError::NotOpen(_)) => {
                        Err(CommandError::new(ErrorCode::NotFound, e.to_string()))
                    }
                    Err(e @ alarms::AckError::AlreadyAcked(_)) => {
                        Err(CommandError::new(ErrorCode::Conflict, e.to_string()))
                    }
                    Err(e) => Err(CommandError::new(ErrorCode::Invalid, e.to_string())),
                }
            }
            Command::ReleaseHold { door, by } => match self.doors_cfg.get(&door).cloned() {
                Some(cfg) => {
                    for lock in self.lock_devices(&cfg) {
                        fx.command(
                            &lock,
                            Action::Hold {
                                output: Output::ElevatorHold,
                                on: false,
                            },
                        );
                    }
                    let mut e = self.system_event(EventAction::ConsoleAction, &by);
                    e.door = Some(door.clone());
                    e.detail = Some("e-bike hold released".into());
                    fx.event(now, e);
                    Ok(CommandOk::Done)
                }
                None => Err(CommandError::new(
                    ErrorCode::NotFound,
                    format!("no door `{door}`"),
                )),
            },
        };
        (fx, result)
    }

    /// Answers a read of the state.
    pub fn query(&self, q: Query) -> QueryResult {
        match q {
            Query::Doors => QueryResult::Doors(
                self.door_order
                    .iter()
                    .filter_map(|id| {
                        let cfg = self.doors_cfg.get(id)?;
                        let devs: Vec<Option<bool>> = self
                            .devices
                            .values()
                            .filter(|d| d.door.as_ref() == Some(id))
                            .map(|d| d.online)
                            .collect();
                        let online = if devs.contains(&Some(false)) {
                            Some(false)
                        } else if !devs.is_empty() && devs.iter().all(|o| *o == Some(true)) {
                            Some(true)
                        } else {
                            None
                        };
                        Some(DoorInfo {
                            id: id.clone(),
                            name: cfg.display_name().to_owned(),
                            zone: cfg.zone.clone(),
                            kind: cfg.kind,
                            view: self.doors.view(id)?,
                            online,
                        })
                    })
                    .collect(),
            ),
            Query::OpenAlarms => QueryResult::Alarms(self.open_alarms()),
            Query::Person(id) => QueryResult::Person(self.roster.get(&id).cloned().map(Box::new)),
            Query::Persons { after, limit } => {
                let mut all: Vec<&Person> = self
                    .roster
                    .iter()
                    .filter(|p| after.as_ref().is_none_or(|a| &p.id > a))
                    .collect();
                all.sort_by(|a, b| a.id.cmp(&b.id));
                QueryResult::Persons(all.into_iter().take(limit).cloned().collect())
            }
            Query::Devices => QueryResult::Devices(
                self.device_order
                    .iter()
                    .filter_map(|id| self.devices.get(id))
                    .map(|d| DeviceInfoView {
                        id: d.id.clone(),
                        driver: d.driver,
                        door: d.door.clone(),
                        zone: d.zone.clone(),
                        online: d.online,
                    })
                    .collect(),
            ),
        }
    }

    /// Open alarms, most severe first, then oldest first.
    pub fn open_alarms(&self) -> Vec<AlarmRecord> {
        let mut v: Vec<AlarmRecord> = self.alarms.iter().map(|o| o.record.clone()).collect();
        v.sort_by(|a, b| {
            a.severity
                .cmp(&b.severity)
                .then(a.raised_at.cmp(&b.raised_at))
        });
        v
    }

    /// A gateway record, e.g. at start and stop.
    pub fn gateway_event(&self, action: EventAction, detail: &str, now: DateTime<Utc>) -> Draft {
        let mut e = EventRecord::new(EventKind::System, action, self.gateway.clone());
        e.detail = Some(detail.to_owned());
        Draft::event(now, e)
    }

    fn system_event(&self, action: EventAction, by: &Actor) -> EventRecord {
        let mut e = EventRecord::new(EventKind::System, action, self.gateway.clone());
        e.by = Some(by.to_string());
        e
    }

    /// Releases a door's lock and notes the release for forced-door detection.
    fn open_door(&mut self, door: &DoorConfig, now: DateTime<Utc>, fx: &mut Effects) {
        self.doors.release(&door.id, now, door.open_ms);
        for lock in self.lock_devices(door) {
            fx.command(
                &lock,
                Action::Pulse {
                    output: Output::Lock,
                    ms: door.open_ms,
                },
            );
        }
    }

    /// The device named by the door's `lock`, or every device bound to the door.
    fn lock_devices(&self, door: &DoorConfig) -> Vec<DeviceId> {
        match &door.lock {
            Some(lock) => vec![lock.clone()],
            None => self
                .device_order
                .iter()
                .filter(|id| {
                    self.devices
                        .get(*id)
                        .is_some_and(|d| d.door.as_ref() == Some(&door.id))
                })
                .cloned()
                .collect(),
        }
    }

    fn set_online(&mut self, id: &DeviceId, up: bool) {
        if let Some(d) = self.devices.get_mut(id) {
            d.online = Some(up);
        }
    }

    fn place_name(&self, dev: &DeviceInfo) -> String {
        match dev.door.as_ref().and_then(|d| self.doors_cfg.get(d)) {
            Some(door) => door.display_name().to_owned(),
            None => match (&dev.name, &dev.zone) {
                (Some(name), _) => name.clone(),
                (None, Some(z)) => format!("zone {z}"),
                (None, None) => format!("device {}", dev.id),
            },
        }
    }

    fn spec_for(
        &self,
        dev: &DeviceInfo,
        t: AlarmType,
        subject: &str,
        message: String,
    ) -> AlarmSpec {
        let mut spec = AlarmSpec::new(t, subject, message);
        spec.device = Some(dev.id.clone());
        spec.door = dev.door.clone();
        spec.zone = dev.zone.clone();
        spec
    }

    fn raise(&mut self, fx: &mut Effects, spec: AlarmSpec, now: DateTime<Utc>) {
        if let Some(d) = self.alarms.raise(spec, now) {
            fx.records.push(d);
        }
    }

    fn end(&mut self, fx: &mut Effects, t: AlarmType, subject: &str, now: DateTime<Utc>) {
        if let Some(d) = self.alarms.condition_ended(t, subject, now) {
            fx.records.push(d);
        }
    }
}

fn person_ref(p: &Person) -> PersonRef {
    PersonRef {
        id: p.id.clone(),
        group: p.group,
        name: Some(p.name.clone()),
    }
}

fn sensor_alarm(s: SensorKind) -> AlarmType {
    match s {
        SensorKind::Smoke => AlarmType::Smoke,
        SensorKind::Gas => AlarmType::Gas,
        SensorKind::FenceIntrusion => AlarmType::FenceIntrusion,
        SensorKind::Sos => AlarmType::SosCall,
        SensorKind::EbikeDetected => AlarmType::EbikeInElevator,
    }
}

fn roster_error(e: RosterError) -> CommandError {
    let code = match &e {
        RosterError::NotFound(_) => ErrorCode::NotFound,
        RosterError::CredentialInUse { .. } => ErrorCode::Conflict,
        RosterError::Storage(_) => ErrorCode::Internal,
        _ => ErrorCode::Invalid,
    };
    CommandError::new(code, e.to_string())
}

#[cfg(test)]
mod tests;
