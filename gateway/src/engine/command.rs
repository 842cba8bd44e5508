//! What the platform (MQTT) and the console (HTTP) ask of the engine, and its
//! answers. Both sides use the same commands, so an action means the same
//! whichever way it came, and is journaled the same, with who asked.

use drivers::{DoorId, PersonId};
use serde::Serialize;
use std::fmt;
use uuid::Uuid;

use super::roster::Person;
use crate::journal::AlarmRecord;

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
    pub fn name(&self) -> &'static str {
        match self {
            Command::PersonUpsert { .. } => "person.upsert",
            Command::PersonDelete { .. } => "person.delete",
            Command::DoorOpen { .. } => "door.open",
            Command::AlarmAck { .. } => "alarm.ack",
            Command::ReleaseHold { .. } => "door.release_hold",
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

/// Error codes of replies (`P/reply/{name}` `error.code`, HTTP bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed JSON, wrong types, missing or bad fields.
    Invalid,
    NotFound,
    /// Conflicts with the current state (credential of another person, alarm already acked).
    Conflict,
    /// This command is not allowed from there.
    Unauthorized,
    UnknownCommand,
    TooLarge,
    /// The gateway failed (storage); the command may be retried.
    Internal,
}

/// A refused command: a code for programs, a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
}

impl CommandError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for CommandError {}

/// A read of the engine's state (console pages).
#[derive(Debug, Clone)]
pub enum Query {
    Doors,
    OpenAlarms,
    Person(PersonId),
    /// Persons sorted by id, from `after` (exclusive), at most `limit`.
    Persons {
        after: Option<PersonId>,
        limit: usize,
    },
    Devices,
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum QueryResult {
    Doors(Vec<super::DoorInfo>),
    Alarms(Vec<AlarmRecord>),
    Person(Option<Box<Person>>),
    Persons(Vec<Person>),
    Devices(Vec<super::DeviceInfoView>),
}
