//! Device drivers of the estate gateway. A driver owns one device connection,
//! turns protocol traffic into [`DeviceEvent`]s and executes [`DeviceCommand`]s;
//! it reconnects by itself and knows nothing of residents or alarms.
//!
//! The modules, in the order they may import each other (a module imports only
//! modules of the layers above it, never one of its own layer; checked by
//! `tests/layering.rs`):
//!
//! 1. Leaves, importing nothing of this crate:
//!    - [`credential`]: credentials in canonical form (cards, tags, plates...).
//!    - [`backoff`]: reconnect pacing shared by all drivers.
//!    - [`ct`]: constant-time comparison of secrets (OSDP secure channel, plate pushes).
//!    - [`serial`]: the serial transport shared by OSDP and Modbus RTU.
//!    - [`logsafe`]: strangers' text escaped and cut for log lines.
//!    - [`httpserve`]: HTTP listeners with connection caps and read timeouts
//!      (the plate endpoint; the gateway's console uses it too).
//! 2. [`event`]: the vocabulary: `DeviceEvent`, `DeviceCommand`, frames.
//! 3. [`driver`]: the context every driver uses: `DriverContext`, the event and
//!    frame sinks, `BuildError`, `ConfigProblem`.
//! 4. The drivers, one per protocol; none imports another:
//!    - [`osdp`]: card readers and door panels on RS-485 (OSDP with secure channel).
//!    - [`llrp`]: UHF RFID readers (e-bike tags) over LLRP.
//!    - [`lpr_http`]: plate cameras pushing their reads over HTTP.
//!    - [`modbus`]: barrier gates, turnstiles and sensors over Modbus TCP / RTU.
//!    - [`sim`]: the simulated estate (`driver = "sim"`).
//!    - [`camera`]: IP cameras, webcams and video files through FFmpeg (`driver = "camera"`).
//! 5. [`registry`]: `DriverConfig`, the enum tagged by `driver` that lists every
//!    driver's config and builds its task.
//! 6. `testing` (cargo feature `testing`, off in the edge binary): the
//!    conformance test every driver passes, the real peers of the tests, and
//!    the module-layering check.
//!
//! ```text
//! credential, backoff, ct, serial,
//! logsafe, httpserve ◀── event ◀── driver ◀── osdp, llrp, lpr_http,
//!                                             modbus, sim, camera ◀── registry ◀── testing
//! ```
//! (an arrow points from a module to what it may import; any layer may import
//! any layer above it, not only the next one).

pub mod backoff;
pub mod camera;
pub mod credential;
pub mod ct;
pub mod driver;
pub mod event;
pub mod httpserve;
pub mod llrp;
pub mod logsafe;
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
    InputKind, NotDurable, Output, PlateColour, Presence, Receipt, SensorKind,
};
pub use registry::DriverConfig;
