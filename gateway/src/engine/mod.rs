//! The engine: the one owner of access state (roster, doors, open alarms). It
//! takes inputs one at a time (device events, commands, clock ticks) and answers
//! with effects: records for the journal and commands for devices. It does no
//! network I/O and reads the time only from its callers, so it is tested by
//! feeding it inputs.
//!
//! - `config`: the engine's config sections (doors, devices' places, access,
//!   schedules, persons, alarms, rules) and their checks.
//! - `site`: the site model: doors and devices, where they are, link state, names.
//! - `roster`: persons and the credential index.
//! - `schedule`, `policy`: who may pass where and when; anti-passback.
//! - `decisions`: credentials decided, doors released; door contacts, exit buttons.
//! - `doors`: door states (open, held, forced) and their signals.
//! - `tags`: e-bike tags at gates and in elevators.
//! - `faces`: face reads against the `[faces]` thresholds; unknown-face alarms.
//! - `welfare`: persons who should be seen and were not.
//! - `health`: the gateway's own condition (data loss, backlog, its store failing).
//! - `alarms`: alarm lifecycle, dedup, escalation (defaults from the contract's catalogue).
//! - `command`: changes asked by the platform and the console.
//! - `query`: reads of the state for the console.
//! - `handle`: how others talk to the engine task: commands, typed reads.
//! - `run`: the task that feeds the engine and carries out its effects.
//!
//! Imports: `contract` and `settings` below it, `journal` (the run task's
//! sink); never `config`, `uplink`, `console`, `control` or `vision`.

pub mod alarms;
pub mod command;
pub mod config;
mod decisions;
pub mod doors;
pub mod faces;
pub mod handle;
pub mod health;
pub mod policy;
pub mod query;
pub mod roster;
pub mod run;
pub mod schedule;
pub mod site;
mod tags;
pub mod welfare;

pub use crate::contract::{CommandError, ErrorCode, Group, Reason};
pub use alarms::{AlarmRules, AlarmSpec, Alarms, OpenAlarm, RuleParams, TypeRule};
pub use command::{Actor, Command, CommandOk, Source};
pub use config::{DoorConfig, DoorKind, EngineConfig};
pub use doors::{DoorSignal, DoorStatus, DoorView, Doors};
pub use faces::FaceRules;
pub use handle::{EngineHandle, Input, Stopped};
pub use health::LossCause;
pub use policy::{AntiPassback, Place, Policy};
pub use query::{Query, QueryResult};
pub use roster::{Person, Roster, RosterError};
pub use schedule::Schedule;
pub use site::{DeviceInfo, DeviceInfoView, DoorInfo, Site};
pub use welfare::LastSeen;

use chrono::{DateTime, Utc};
use drivers::{Action, Credential, DeviceCommand, DeviceEvent, DeviceId, EventBody};

use crate::contract::{
    AlarmType, Draft, EventAction, EventKind, EventRecord, InputRef, PersonId, PersonRef, SensorRef,
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

/// Why the engine could not start, or could not keep its state.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    #[error("stored state is not readable: {0}")]
    Corrupt(String),
    #[error("roster: {0}")]
    Roster(#[from] RosterError),
    #[error("config: {0}")]
    Config(String),
}

/// The engine's state.
pub struct Engine {
    site: Site,
    pub roster: Roster,
    policy: Policy,
    apb: AntiPassback,
    pub alarms: Alarms,
    doors: Doors,
    /// The platform link is up: decisions made while it is down are flagged `offline`.
    link_up: bool,
    gateway: DeviceId,
    /// Face thresholds (`[faces]`); without them face reads are taken as matched.
    faces: Option<FaceRules>,
    params: RuleParams,
    welfare: welfare::Welfare,
    unknown_faces: faces::UnknownFaces,
}

impl Engine {
    /// Builds the engine from its config and its state in `db`; seeds `[[persons]]`.
    pub fn new(cfg: &EngineConfig, db: &sled::Db) -> Result<Engine, EngineError> {
        let mut doors = Doors::default();
        for d in &cfg.doors {
            doors.add(d.id.clone(), d.held_open_s);
        }
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
            site: Site::new(&cfg.doors, &cfg.devices),
            roster,
            policy: Policy::from_config(cfg).map_err(EngineError::Config)?,
            apb: AntiPassback::open(db.open_tree("anti_passback")?),
            alarms: Alarms::open(
                db.open_tree("alarms")?,
                AlarmRules::from_config(&cfg.alarms, &cfg.rules),
            ),
            doors,
            link_up: false,
            gateway: DeviceId::new("gateway"),
            faces: cfg.faces,
            params: RuleParams::from_config(&cfg.rules),
            welfare: welfare::Welfare::new(db.open_tree("activity")?),
            unknown_faces: faces::UnknownFaces::default(),
        };
        let ids: Vec<PersonId> = engine.roster.iter().map(|p| p.id.clone()).collect();
        for id in ids {
            engine.watch_if_tagged(&id, Utc::now())?;
        }
        Ok(engine)
    }

    pub fn set_link(&mut self, up: bool) {
        self.link_up = up;
    }

    /// A device reported something.
    pub fn on_device_event(&mut self, ev: DeviceEvent, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        let Some(dev) = self.site.device(&ev.device).cloned() else {
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
                self.site.set_online(&dev.id, true);
                let mut e = base(EventKind::Device, EventAction::Online);
                e.detail = detail;
                fx.event(ts, e);
                self.end(&mut fx, AlarmType::DeviceOffline, dev.id.as_str(), now);
            }
            EventBody::Offline { reason } => {
                self.site.set_online(&dev.id, false);
                let mut e = base(EventKind::Device, EventAction::Offline);
                e.detail = Some(reason.clone());
                let event = fx.event(ts, e);
                let message =
                    AlarmType::DeviceOffline.message(&[("device", &dev.id), ("reason", &reason)]);
                let mut spec =
                    self.spec_for(&dev, AlarmType::DeviceOffline, dev.id.as_str(), message);
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
                if let Some(t) = AlarmType::for_sensor(sensor) {
                    if active {
                        let message = t.message(&[("place", &self.site.place_name(&dev))]);
                        let mut spec = self.spec_for(&dev, t, dev.id.as_str(), message);
                        spec.event = Some(event);
                        spec.lasting = true;
                        self.raise(&mut fx, spec, now);
                    } else {
                        self.end(&mut fx, t, dev.id.as_str(), now);
                    }
                }
            }
            EventBody::Tag {
                epc,
                presence,
                antenna,
                rssi,
            } => {
                let tag = tags::TagSeen {
                    epc,
                    presence,
                    antenna,
                    rssi,
                };
                self.on_tag(&dev, tag, ts, now, &mut fx)
            }
            EventBody::Passage { count, .. } => {
                let mut e = base(EventKind::Input, EventAction::Passage);
                e.count = Some(count);
                let event = fx.event(ts, e);
                if let Some(door) = &dev.door {
                    if let Some(DoorSignal::Tailgate { passed, granted }) =
                        self.doors.passage(door, count)
                    {
                        let message = AlarmType::Tailgating.message(&[
                            ("passed", &passed),
                            ("granted", &granted),
                            ("place", &self.site.place_name(&dev)),
                        ]);
                        let mut spec =
                            self.spec_for(&dev, AlarmType::Tailgating, door.as_str(), message);
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
                    let message =
                        AlarmType::Tamper.message(&[("device", &dev.id), ("detail", &detail)]);
                    let mut spec = self.spec_for(&dev, AlarmType::Tamper, dev.id.as_str(), message);
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

    /// Clock tick: held-open doors, escalations, welfare.
    pub fn on_tick(&mut self, now: DateTime<Utc>) -> Effects {
        let mut fx = Effects::default();
        for (door, signal) in self.doors.tick(now) {
            if let DoorSignal::HeldOpen { for_s } = signal {
                let Some(cfg) = self.site.door(&door).cloned() else {
                    continue;
                };
                let message = AlarmType::DoorHeldOpen
                    .message(&[("place", &cfg.display_name()), ("seconds", &for_s)]);
                let mut spec = AlarmSpec::new(AlarmType::DoorHeldOpen, door.as_str(), message);
                spec.door = Some(door.clone());
                spec.zone = Some(cfg.zone.clone());
                spec.lasting = true;
                self.raise(&mut fx, spec, now);
            }
        }
        fx.records.extend(self.alarms.tick(now));
        self.check_welfare(now, &mut fx);
        fx
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

#[cfg(test)]
mod tests;
