//! What the platform (MQTT) and the console (HTTP) ask the engine to change,
//! and how it carries it out. Both sides use the same commands, so an action
//! means the same whichever way it came, and is journaled the same, with who
//! asked. (Reads of the state are in `query`.)

use chrono::{DateTime, Utc};
use drivers::{Action, Credential, CredentialKind, Output};
use serde::Serialize;
use std::fmt;
use uuid::Uuid;

use super::alarms::AckError;
use super::roster::{Person, RosterError};
use super::{person_ref, Effects, Engine};
use crate::contract::{
    AlarmType, CommandError, CommandName, DoorId, ErrorCode, EventAction, EventKind, EventRecord,
    PersonId,
};

/// Where a command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Platform,
    Console,
    Gateway,
}

/// Who asked: journaled as `by`, e.g. `console/guard1`, `platform/ops-center`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub source: Source,
    pub name: String,
}

impl Actor {
    pub fn platform(name: &str) -> Self {
        Self {
            source: Source::Platform,
            name: name.to_owned(),
        }
    }
    pub fn console(name: &str) -> Self {
        Self {
            source: Source::Console,
            name: name.to_owned(),
        }
    }
    pub fn gateway() -> Self {
        Self {
            source: Source::Gateway,
            name: "gatewayd".into(),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let src = match self.source {
            Source::Platform => "platform",
            Source::Console => "console",
            Source::Gateway => "gateway",
        };
        write!(f, "{src}/{}", self.name)
    }
}

/// A change asked of the engine.
#[derive(Debug, Clone)]
pub enum Command {
    PersonUpsert {
        person: Person,
        by: Actor,
    },
    PersonDelete {
        id: PersonId,
        by: Actor,
    },
    DoorOpen {
        door: DoorId,
        by: Actor,
    },
    AlarmAck {
        alarm: Uuid,
        by: Actor,
        note: String,
    },
    /// Ends an e-bike hold on an elevator before the tag departs (a guard's call).
    ReleaseHold {
        door: DoorId,
        by: Actor,
    },
}

impl Command {
    pub fn name(&self) -> CommandName {
        match self {
            Command::PersonUpsert { .. } => CommandName::PersonUpsert,
            Command::PersonDelete { .. } => CommandName::PersonDelete,
            Command::DoorOpen { .. } => CommandName::DoorOpen,
            Command::AlarmAck { .. } => CommandName::AlarmAck,
            Command::ReleaseHold { .. } => CommandName::DoorReleaseHold,
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum CommandOk {
    Done,
    Person(Box<Person>),
}

impl Engine {
    /// A command from the platform or the console.
    pub fn on_command(
        &mut self,
        cmd: Command,
        now: DateTime<Utc>,
    ) -> (Effects, Result<CommandOk, CommandError>) {
        let mut fx = Effects::default();
        let result = match cmd {
            Command::PersonUpsert { person, by } => self.upsert(person, &by, now, &mut fx),
            Command::PersonDelete { id, by } => self.delete(&id, &by, now, &mut fx),
            Command::DoorOpen { door, by } => self.remote_open(&door, &by, now, &mut fx),
            Command::AlarmAck { alarm, by, note } => {
                match self.alarms.ack(alarm, &by.to_string(), &note, now) {
                    Ok(drafts) => {
                        fx.records.extend(drafts);
                        Ok(CommandOk::Done)
                    }
                    Err(e @ AckError::NotOpen(_)) => {
                        Err(CommandError::new(ErrorCode::NotFound, e.to_string()))
                    }
                    Err(e @ AckError::AlreadyAcked(_)) => {
                        Err(CommandError::new(ErrorCode::Conflict, e.to_string()))
                    }
                    Err(e) => Err(CommandError::invalid(e.to_string())),
                }
            }
            Command::ReleaseHold { door, by } => self.release_hold(&door, &by, now, &mut fx),
        };
        (fx, result)
    }

    /// Whether `person.upsert` would take the person; changes nothing (the
    /// controller asks before it stores face photos).
    pub fn check_upsert(&self, person: &Person) -> Result<(), CommandError> {
        self.roster.check(person).map_err(roster_error)
    }

    fn upsert(
        &mut self,
        person: Person,
        by: &Actor,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Result<CommandOk, CommandError> {
        let id = person.id.clone();
        let existing_faces = self.roster.get(&id).map(|p| p.faces).unwrap_or(0);
        let person = Person {
            faces: existing_faces.max(person.faces),
            ..person
        };
        self.roster.upsert(person.clone()).map_err(roster_error)?;
        self.watch_if_tagged(&id, now)
            .map_err(|e| CommandError::internal(format!("person saved, welfare watch not: {e}")))?;
        let mut e = self.system_event(EventAction::PersonUpserted, by);
        e.person = Some(person_ref(&person));
        fx.event(now, e);
        Ok(CommandOk::Person(Box::new(person)))
    }

    fn delete(
        &mut self,
        id: &PersonId,
        by: &Actor,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Result<CommandOk, CommandError> {
        let p = self.roster.delete(id).map_err(roster_error)?;
        self.apb.forget(id);
        self.watch_if_tagged(id, now).map_err(|e| {
            CommandError::internal(format!("person deleted, welfare watch not: {e}"))
        })?;
        self.end(fx, AlarmType::WelfareNoActivity, id.as_str(), now);
        let mut e = self.system_event(EventAction::PersonDeleted, by);
        e.person = Some(person_ref(&p));
        fx.event(now, e);
        Ok(CommandOk::Done)
    }

    fn remote_open(
        &mut self,
        door: &DoorId,
        by: &Actor,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Result<CommandOk, CommandError> {
        let cfg = self.site.door(door).cloned().ok_or_else(|| no_door(door))?;
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
        self.open_door(&cfg, now, fx);
        Ok(CommandOk::Done)
    }

    /// Ends an e-bike hold on an elevator before the tag departs.
    fn release_hold(
        &mut self,
        door: &DoorId,
        by: &Actor,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Result<CommandOk, CommandError> {
        let cfg = self.site.door(door).cloned().ok_or_else(|| no_door(door))?;
        for lock in self.site.lock_devices(&cfg) {
            fx.command(
                &lock,
                Action::Hold {
                    output: Output::ElevatorHold,
                    on: false,
                },
            );
        }
        let mut e = self.system_event(EventAction::ConsoleAction, by);
        e.door = Some(door.clone());
        e.detail = Some("e-bike hold released".into());
        fx.event(now, e);
        Ok(CommandOk::Done)
    }

    fn system_event(&self, action: EventAction, by: &Actor) -> EventRecord {
        let mut e = EventRecord::new(EventKind::System, action, self.gateway.clone());
        e.by = Some(by.to_string());
        e
    }
}

fn no_door(door: &DoorId) -> CommandError {
    CommandError::new(ErrorCode::NotFound, format!("no door `{door}`"))
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
