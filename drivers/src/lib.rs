//! Device drivers of the estate gateway. A driver owns one device connection,
//! turns protocol traffic into [`DeviceEvent`]s and executes [`DeviceCommand`]s;
//! it reconnects by itself and knows nothing of residents or alarms.
//!
//! - [`event`]: the vocabulary: `DeviceEvent`, `DeviceCommand`, frames.
//! - [`credential`]: credentials in canonical form (cards, tags, plates...).
//! - [`driver`]: the context every driver uses: `DriverContext`, sinks, errors.
//! - [`registry`]: `DriverConfig` (tagged by `driver`), the list of drivers.
//! - [`backoff`]: reconnect pacing shared by all drivers.
//! - [`serial`]: the serial transport shared by OSDP and Modbus RTU.
//! - [`ct`]: constant-time comparison of secrets (OSDP secure channel, plate pushes).
//! - [`osdp`]: card readers and door panels on RS-485 (OSDP with secure channel).
//! - [`llrp`]: UHF RFID readers (e-bike tags) over LLRP.
//! - [`lpr_http`]: plate cameras pushing their reads over HTTP.
//! - [`modbus`]: barrier gates, turnstiles and sensors over Modbus TCP / RTU.
//! - [`sim`]: the simulated estate (`driver = "sim"`).
//! - [`camera`]: IP cameras, webcams and video files through FFmpeg (`driver = "camera"`).
//! - `testing` (cargo feature `testing`, off in the edge binary): the conformance
//!   test every driver passes and the real peers of the tests.

pub mod backoff;
pub mod camera;
pub mod credential;
pub mod ct;
pub mod driver;
pub mod event;
pub mod llrp;
pub mod lpr_http;
pub mod modbus;
pub mod osdp;
pub mod registry;
pub mod serial;
pub mod sim;
#[cfg(feature = "testing")]
pub mod testing;

pub use credential::{Credential, CredentialKind};
pub use driver::{BuildError, ConfigProblem, DriverContext, DriverTask};
pub use event::{
    Action, CredentialRead, DeviceCommand, DeviceEvent, DeviceId, Direction, EventBody, Frame,
    InputKind, Output, PlateColour, Presence, SensorKind,
};
pub use registry::DriverConfig;
