//! The wire contract, at the bottom of the gateway: what the platform receives
//! and sends, what the console shows, and the names every component shares.
//! It imports nothing else of the gateway (only the drivers' vocabulary), so
//! every component may use it and it changes only with the outside contract.
//!
//! - `ids`: doors, zones, persons.
//! - `decision`: reason codes and groups of access decisions.
//! - `alarm`: the alarm catalogue (types, severities, states, defaults, labels, messages).
//! - `record`: event and alarm records as published, drafts before numbering.
//! - `command`: command names and reply codes.

pub mod alarm;
pub mod command;
pub mod decision;
pub mod ids;
pub mod record;

pub use alarm::{AlarmInfo, AlarmState, AlarmType, RuleParam, Severity};
pub use command::{CommandError, CommandName, ErrorCode};
pub use decision::{Group, Reason};
pub use ids::{DoorId, PersonId, ZoneId};
pub use record::{
    ts_millis, Ack, AlarmRecord, DecisionRef, DecodeError, Draft, EncodeError, EventAction,
    EventKind, EventRecord, InputRef, PersonRef, Record, RecordBody, SensorRef, SnapshotRef,
    TagRef,
};
