//! The two vocabularies between drivers and the engine: what a device saw
//! ([`DeviceEvent`]) and what it is told to do ([`DeviceCommand`]).
//!
//! Drivers know nothing of residents, schedules or alarms: they report facts
//! and execute actions. Everything here serialises to stable snake_case JSON,
//! because events end up in the journal and on the platform's topics.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::credential::Credential;

/// Declares a small string newtype: an identifier that must not be confused with another.
/// Exported so that the gateway declares its own ids (doors, zones, persons) the same way.
#[macro_export]
macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize, Default)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl ::std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A device as named in `[[devices]] id`.
    DeviceId
);

/// Which way a reader or camera faces: into the zone of its door or out of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::In => "in",
            Direction::Out => "out",
        })
    }
}

/// One thing a device saw, stamped with the device and the time it was received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceEvent {
    pub device: DeviceId,
    pub at: DateTime<Utc>,
    pub body: EventBody,
    /// Told when what the event led to is durable: for a driver that must not
    /// acknowledge a device before (an HTTP push answered 200). Not serialised.
    #[serde(skip)]
    pub receipt: Receipt,
}

/// Why an event's records are not durable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotDurable(pub String);

type ReceiptTx = tokio::sync::oneshot::Sender<Result<(), NotDurable>>;

/// The gateway's answer to "is it stored?" for one event; empty for events
/// nobody waits on. Clones share the one answer; the first settle wins.
#[derive(Clone, Default)]
pub struct Receipt(Option<std::sync::Arc<std::sync::Mutex<Option<ReceiptTx>>>>);

impl Receipt {
    /// A receipt, and where its answer arrives (closed without one when the
    /// event is dropped unanswered, e.g. at shutdown).
    pub fn new() -> (
        Receipt,
        tokio::sync::oneshot::Receiver<Result<(), NotDurable>>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (
            Receipt(Some(std::sync::Arc::new(std::sync::Mutex::new(Some(tx))))),
            rx,
        )
    }

    /// Whether someone waits for the answer.
    pub fn is_wanted(&self) -> bool {
        self.0.is_some()
    }

    /// Answers once; later answers are ignored.
    pub fn settle(&self, result: Result<(), NotDurable>) {
        if let Some(slot) = &self.0 {
            let tx = match slot.lock() {
                Ok(mut g) => g.take(),
                Err(p) => p.into_inner().take(),
            };
            if let Some(tx) = tx {
                let _ = tx.send(result);
            }
        }
    }
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_wanted() {
            "Receipt(wanted)"
        } else {
            "Receipt"
        })
    }
}

/// Receipts do not make events different.
impl PartialEq for Receipt {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// What happened at the device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// The link to the device is up (first contact, or back after an outage).
    Online { detail: Option<String> },
    /// The link to the device is down; the driver keeps retrying by itself.
    Offline { reason: String },
    /// A card, tag, plate, face, PIN or QR code was presented.
    Credential(CredentialRead),
    /// A digital input changed: door contact, exit button, vehicle loop, barrier position.
    Input { input: InputKind, active: bool },
    /// A safety sensor changed state (smoke, gas, fence, SOS button, e-bike detector).
    Sensor {
        sensor: SensorKind,
        active: bool,
        /// The measured value where the sensor reports one (gas ppm, smoke obscuration).
        value: Option<f64>,
    },
    /// A UHF tag (an e-bike's chip) arrived at, moved near, or left a reader.
    Tag {
        epc: String,
        presence: Presence,
        antenna: Option<u16>,
        rssi: Option<f32>,
    },
    /// A turnstile or camera counted people (or vehicles) passing.
    Passage {
        count: u32,
        direction: Option<Direction>,
    },
    /// The device's enclosure was opened, or its link was tampered with (wrong key).
    Tamper { active: bool, detail: String },
    /// Mains power lost or back (the device runs on battery meanwhile).
    Power { ok: bool, detail: String },
    /// The device sent something the driver could not use: journaled as a device error.
    Fault { error: String },
}

impl EventBody {
    /// A short name of the event's type, as serialised in `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::Online { .. } => "online",
            EventBody::Offline { .. } => "offline",
            EventBody::Credential(_) => "credential",
            EventBody::Input { .. } => "input",
            EventBody::Sensor { .. } => "sensor",
            EventBody::Tag { .. } => "tag",
            EventBody::Passage { .. } => "passage",
            EventBody::Tamper { .. } => "tamper",
            EventBody::Power { .. } => "power",
            EventBody::Fault { .. } => "fault",
        }
    }
}

/// A credential as read, with what the reader knows about the read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct CredentialRead {
    pub credential: Credential,
    /// How it was read (`wiegand26`, `wiegand34`, `raw`, `keypad`, `lpr`, `face`).
    pub format: Option<String>,
    /// Wiegand facility code, where the format has one.
    pub facility: Option<u32>,
    /// Plate colour reported by a plate camera or read from the plate.
    pub colour: Option<PlateColour>,
    /// Recogniser confidence (plate reading), 0..1.
    pub confidence: Option<f32>,
    /// Cosine similarity of a face match.
    pub similarity: Option<f32>,
    /// The read reached the gateway late (buffered through a link outage):
    /// journal it, but never open a door on it.
    pub late: bool,
    /// JPEG evidence: the camera's picture of the plate, the face crop or frame.
    #[serde(skip)]
    pub snapshot: Option<Bytes>,
}

impl CredentialRead {
    pub fn new(credential: Credential) -> Self {
        Self {
            credential,
            ..Self::default()
        }
    }
}

/// Licence-plate colour; in China it tells the vehicle class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateColour {
    /// Ordinary passenger cars.
    Blue,
    /// Large vehicles, coaches, learner cars.
    Yellow,
    /// New-energy vehicles (8 characters).
    Green,
    /// Police, military, embassy.
    White,
    /// Foreign-owned, Hong Kong / Macau cross-border.
    Black,
}

/// The meaning of a digital input, as mapped in the device's config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// Door contact: active = the door is open.
    DoorContact,
    /// Request-to-exit button: active = pressed.
    ExitRequest,
    /// Vehicle loop detector: active = a vehicle stands on the loop.
    VehicleLoop,
    /// Barrier arm or turnstile position: active = open.
    GateOpen,
}

/// The kind of a safety sensor, as mapped in the device's config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorKind {
    Smoke,
    Gas,
    FenceIntrusion,
    /// One-key SOS call button (elderly residents living alone).
    Sos,
    /// An elevator's e-bike detector (camera or blocker) saw an e-bike in the car.
    EbikeDetected,
}

/// Presence of a tag at a reader, after debouncing hundreds of raw reads into one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Arrived,
    Moved,
    Departed,
}

/// An action for one device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceCommand {
    pub device: DeviceId,
    pub action: Action,
}

/// What a driver is asked to do. A driver that cannot do an action logs it and goes on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Energise an output for a while: release a lock, lift a barrier, turn a turnstile.
    Pulse { output: Output, ms: u32 },
    /// Hold an output on or off until told otherwise (elevator hold, siren).
    Hold { output: Output, on: bool },
    /// Reader feedback after a decision: green and a beep on grant, red on refusal.
    Feedback { granted: bool },
    /// Text on the reader's or gate's display.
    Display { text: String },
    /// A voice prompt on the device's speaker.
    Voice { prompt: String },
}

/// A logical output; each driver maps these to its coils or output numbers in config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// The door strike, barrier or turnstile release.
    Lock,
    /// Keeps an elevator's doors open / the car from leaving.
    ElevatorHold,
    /// Local siren or strobe.
    Siren,
}

/// A video frame from a camera, 8-bit BGR, rows packed (`data.len() == width * height * 3`).
#[derive(Clone, Debug)]
pub struct Frame {
    pub device: DeviceId,
    pub captured_at: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    pub bgr: Bytes,
}
