//! The platform's commands (`P/cmd/{name}`) by name, and the codes of their
//! replies (`P/reply/{name}`, also the console's HTTP error bodies).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every command the gateway knows. `[mqtt] commands` picks from these, the
/// uplink subscribes to them, `control` parses them: this list is the one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CommandName {
    #[serde(rename = "person.upsert")]
    PersonUpsert,
    #[serde(rename = "person.delete")]
    PersonDelete,
    #[serde(rename = "door.open")]
    DoorOpen,
    #[serde(rename = "alarm.ack")]
    AlarmAck,
    #[serde(rename = "door.release_hold")]
    DoorReleaseHold,
}

impl CommandName {
    pub const ALL: [CommandName; 5] = [
        CommandName::PersonUpsert,
        CommandName::PersonDelete,
        CommandName::DoorOpen,
        CommandName::AlarmAck,
        CommandName::DoorReleaseHold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandName::PersonUpsert => "person.upsert",
            CommandName::PersonDelete => "person.delete",
            CommandName::DoorOpen => "door.open",
            CommandName::AlarmAck => "alarm.ack",
            CommandName::DoorReleaseHold => "door.release_hold",
        }
    }

    pub fn parse(s: &str) -> Option<CommandName> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The names, comma-separated, for error messages.
    pub fn list() -> String {
        Self::ALL.map(CommandName::as_str).join(", ")
    }
}

impl fmt::Display for CommandName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for CommandError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in CommandName::ALL {
            assert_eq!(CommandName::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!(CommandName::parse("self.destruct"), None);
    }
}
