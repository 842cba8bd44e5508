//! What the journal stores: events and alarms, serialised exactly as the
//! platform receives them (the payloads of the outside contract).

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use drivers::{Credential, DeviceId, Direction, InputKind, PlateColour, Presence, SensorKind};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use uuid::Uuid;

use super::alarm::{AlarmState, AlarmType, Severity};
use super::decision::{Group, Reason};
use super::ids::{DoorId, PersonId, ZoneId};

/// The event families of `P/events/{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// Person passes and refusals at doors (card, PIN, QR, remote open).
    Access,
    /// Vehicle passes and refusals at barriers (plates).
    Vehicle,
    /// E-bike tags.
    Tag,
    /// Face passes and refusals.
    Face,
    /// Inputs and sensors changing state.
    Input,
    /// Devices online, offline, tamper, power, errors.
    Device,
    /// The gateway itself: start, stop, roster changes, console actions.
    System,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Access => "access",
            EventKind::Vehicle => "vehicle",
            EventKind::Tag => "tag",
            EventKind::Face => "face",
            EventKind::Input => "input",
            EventKind::Device => "device",
            EventKind::System => "system",
        }
    }

    pub const ALL: [EventKind; 7] = [
        EventKind::Access,
        EventKind::Vehicle,
        EventKind::Tag,
        EventKind::Face,
        EventKind::Input,
        EventKind::Device,
        EventKind::System,
    ];

    pub fn parse(s: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Pass events are kept for `retention.pass_days`, the rest for `device_days`.
    pub fn is_pass(self) -> bool {
        matches!(
            self,
            EventKind::Access | EventKind::Vehicle | EventKind::Tag | EventKind::Face
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventAction {
    /// A credential was presented and access decided (see `decision`).
    Decision,
    /// A door was opened remotely or by an exit request.
    DoorRelease,
    InputChanged,
    SensorChanged,
    TagSeen,
    Passage,
    Online,
    Offline,
    Tamper,
    Power,
    /// A device sent something unusable (broken frame, bad push).
    DeviceError,
    PersonUpserted,
    PersonDeleted,
    GatewayStarted,
    GatewayStopped,
    /// The gateway's own trouble worth a trace (doors released for passes whose
    /// record its disk could not keep).
    GatewayWarning,
    /// A guard or admin did something on the console (logged in, released an e-bike hold).
    ConsoleAction,
}

/// A person as referred to by an event or alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonRef {
    pub id: PersonId,
    pub group: Group,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
}

/// The outcome of an access decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRef {
    pub granted: bool,
    pub reason: Reason,
}

/// A JPEG kept with the record, served at `/api/snapshots/{sha256}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputRef {
    pub input: InputKind,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorRef {
    pub sensor: SensorKind,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagRef {
    pub epc: String,
    pub presence: Presence,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub antenna: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rssi: Option<f32>,
}

/// An event: a pass, a refusal, a device or input change, a system action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub kind: EventKind,
    pub action: EventAction,
    /// The device, or `gateway` for the gateway's own events.
    pub device: DeviceId,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub door: Option<DoorId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub zone: Option<ZoneId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub direction: Option<Direction>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub credential: Option<Credential>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub person: Option<PersonRef>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub decision: Option<DecisionRef>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub similarity: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub confidence: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub colour: Option<PlateColour>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snapshot: Option<SnapshotRef>,
    /// True when decided while the platform link was down.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub offline: Option<bool>,
    /// The read reached the gateway late (see `CredentialRead::late`).
    #[serde(skip_serializing_if = "is_false", default)]
    pub late: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub input: Option<InputRef>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sensor: Option<SensorRef>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tag: Option<TagRef>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub count: Option<u32>,
    /// Who did it, for remote and console actions (`platform:ops1`, `console:guard1`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub by: Option<String>,
    /// A human-readable detail: an error message, an offline reason.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl EventRecord {
    /// An event with only the required fields set.
    pub fn new(kind: EventKind, action: EventAction, device: DeviceId) -> Self {
        Self {
            kind,
            action,
            device,
            door: None,
            zone: None,
            direction: None,
            credential: None,
            person: None,
            decision: None,
            similarity: None,
            confidence: None,
            colour: None,
            snapshot: None,
            offline: None,
            late: false,
            input: None,
            sensor: None,
            tag: None,
            count: None,
            by: None,
            detail: None,
        }
    }
}

/// Who acknowledged an alarm, when, and what they wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub by: String,
    #[serde(serialize_with = "ts_millis")]
    pub ts: DateTime<Utc>,
    pub note: String,
}

/// One lifecycle change of an alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRecord {
    #[serde(rename = "type")]
    pub alarm_type: AlarmType,
    /// The alarm's own id, the same in all its lifecycle records (what `alarm.ack` names).
    pub alarm: Uuid,
    pub state: AlarmState,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub device: Option<DeviceId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub door: Option<DoorId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub zone: Option<ZoneId>,
    /// The id of the event that raised it, where one did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub event: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub person: Option<PersonRef>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ack: Option<Ack>,
    /// How many times the condition occurred while the alarm was open (flapping).
    pub count: u32,
    /// How many times it was escalated for want of an acknowledgement.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub escalations: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snapshot: Option<SnapshotRef>,
    /// What a guard reads: which door, which person, how many records lost.
    pub message: String,
    /// When the alarm was first raised.
    #[serde(serialize_with = "ts_millis")]
    pub raised_at: DateTime<Utc>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The body of a journal record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordBody {
    Event(EventRecord),
    Alarm(AlarmRecord),
}

impl RecordBody {
    pub fn is_alarm(&self) -> bool {
        matches!(self, RecordBody::Alarm(_))
    }

    /// The topic below `P/`: `events/access`, `alarms/door_forced`.
    pub fn topic_suffix(&self) -> String {
        match self {
            RecordBody::Event(e) => format!("events/{}", e.kind),
            RecordBody::Alarm(a) => format!("alarms/{}", a.alarm_type),
        }
    }

    pub fn snapshot_mut(&mut self) -> &mut Option<SnapshotRef> {
        match self {
            RecordBody::Event(e) => &mut e.snapshot,
            RecordBody::Alarm(a) => &mut a.snapshot,
        }
    }
}

/// A record before the journal numbers it. The id is chosen up front so that
/// an alarm can name the event that raised it in the same batch.
#[derive(Debug, Clone)]
pub struct Draft {
    pub id: Uuid,
    pub ts: DateTime<Utc>,
    pub body: RecordBody,
    /// JPEG evidence; the journal stores it and fills `snapshot {sha256, bytes}`.
    pub snapshot: Option<Bytes>,
}

impl Draft {
    pub fn new(ts: DateTime<Utc>, body: RecordBody) -> Self {
        Self {
            id: Uuid::now_v7(),
            ts,
            body,
            snapshot: None,
        }
    }

    pub fn event(ts: DateTime<Utc>, e: EventRecord) -> Self {
        Self::new(ts, RecordBody::Event(e))
    }

    pub fn alarm(ts: DateTime<Utc>, a: AlarmRecord) -> Self {
        Self::new(ts, RecordBody::Alarm(a))
    }
}

/// A journaled record: the payload published and shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: Uuid,
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub estate: String,
    pub gateway: String,
    pub body: RecordBody,
}

/// The common head of every payload.
#[derive(Serialize, Deserialize)]
struct Head<'a> {
    id: Uuid,
    seq: u64,
    #[serde(serialize_with = "ts_millis")]
    ts: DateTime<Utc>,
    #[serde(borrow)]
    estate: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    gateway: std::borrow::Cow<'a, str>,
}

/// `ts` as RFC 3339 UTC with milliseconds, as the contract fixes.
pub fn ts_millis<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ts.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Why a stored record could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("stored record is not readable: {0}")]
pub struct DecodeError(String);

/// Why a record could not be written as JSON (never expected for these plain
/// types; reported rather than publishing an empty payload).
#[derive(Debug, thiserror::Error)]
#[error("record cannot be encoded as JSON: {0}")]
pub struct EncodeError(#[from] serde_json::Error);

impl Record {
    /// The JSON payload of the outside contract.
    pub fn to_json(&self) -> Result<Vec<u8>, EncodeError> {
        #[derive(Serialize)]
        struct Out<'a, B: Serialize> {
            #[serde(flatten)]
            head: Head<'a>,
            #[serde(flatten)]
            body: &'a B,
        }
        let head = Head {
            id: self.id,
            seq: self.seq,
            ts: self.ts,
            estate: self.estate.as_str().into(),
            gateway: self.gateway.as_str().into(),
        };
        let out = match &self.body {
            RecordBody::Event(e) => serde_json::to_vec(&Out { head, body: e }),
            RecordBody::Alarm(a) => {
                #[derive(Serialize)]
                struct Tagged<'a> {
                    kind: &'static str,
                    #[serde(flatten)]
                    alarm: &'a AlarmRecord,
                }
                serde_json::to_vec(&Out {
                    head,
                    body: &Tagged {
                        kind: "alarm",
                        alarm: a,
                    },
                })
            }
        };
        Ok(out?)
    }

    /// Reads a payload back (console queries, tests).
    pub fn from_json(bytes: &[u8]) -> Result<Record, DecodeError> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| DecodeError(e.to_string()))?;
        let head: Head = Head::deserialize(&v).map_err(|e| DecodeError(e.to_string()))?;
        let body = if v.get("kind").and_then(|k| k.as_str()) == Some("alarm") {
            RecordBody::Alarm(AlarmRecord::deserialize(&v).map_err(|e| DecodeError(e.to_string()))?)
        } else {
            RecordBody::Event(EventRecord::deserialize(&v).map_err(|e| DecodeError(e.to_string()))?)
        };
        Ok(Record {
            id: head.id,
            seq: head.seq,
            ts: head.ts,
            estate: head.estate.into_owned(),
            gateway: head.gateway.into_owned(),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drivers::CredentialKind;

    #[test]
    fn event_payload_has_contract_fields_and_round_trips() {
        let mut e = EventRecord::new(
            EventKind::Access,
            EventAction::Decision,
            DeviceId::new("r1"),
        );
        e.door = Some(DoorId::new("north"));
        e.direction = Some(Direction::In);
        e.credential = Some(Credential {
            kind: CredentialKind::Card,
            value: "10001".into(),
        });
        e.decision = Some(DecisionRef {
            granted: true,
            reason: Reason::Granted,
        });
        e.offline = Some(false);
        let r = Record {
            id: Uuid::now_v7(),
            seq: 7,
            ts: DateTime::parse_from_rfc3339("2026-11-23T08:00:00.123Z")
                .unwrap()
                .with_timezone(&Utc),
            estate: "e1".into(),
            gateway: "g1".into(),
            body: RecordBody::Event(e),
        };
        let json = r.to_json().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["ts"], "2026-11-23T08:00:00.123Z");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["kind"], "access");
        assert_eq!(v["credential"]["type"], "card");
        assert_eq!(v["decision"]["reason"], "granted");
        assert_eq!(v["direction"], "in");
        assert!(v.get("similarity").is_none());
        assert_eq!(Record::from_json(&json).unwrap(), r);
    }

    #[test]
    fn alarm_payload_round_trips() {
        let now = Utc::now();
        let a = AlarmRecord {
            alarm_type: AlarmType::DoorForced,
            alarm: Uuid::now_v7(),
            state: AlarmState::Raised,
            severity: Severity::Critical,
            device: Some(DeviceId::new("p1")),
            door: Some(DoorId::new("d1")),
            zone: None,
            event: Some(Uuid::now_v7()),
            person: None,
            ack: None,
            count: 1,
            escalations: 0,
            snapshot: None,
            message: "forced".into(),
            raised_at: now,
        };
        let r = Record {
            id: Uuid::now_v7(),
            seq: 1,
            ts: DateTime::parse_from_rfc3339("2026-11-23T08:00:00.5Z")
                .unwrap()
                .with_timezone(&Utc),
            estate: "e".into(),
            gateway: "g".into(),
            body: RecordBody::Alarm(AlarmRecord {
                raised_at: DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
                ..a
            }),
        };
        let json = r.to_json().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["type"], "door_forced");
        assert_eq!(v["state"], "raised");
        assert_eq!(v["kind"], "alarm");
        assert_eq!(Record::from_json(&json).unwrap(), r);
    }
}
