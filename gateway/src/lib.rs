//! The estate gateway: reads the estate's devices, decides who may pass, journals
//! every pass and alarm, forwards them to the platform and shows them to guards.
//!
//! Data flows one way, and so do the modules:
//!
//! - [`config`]: the config file, checked key by key.
//! - drivers (crate `drivers`) → [`engine`]: access decisions, door states, alarms.
//! - [`engine`] → [`journal`]: every record numbered and durable, in sled.
//! - [`journal`] → [`uplink`]: MQTT store-and-forward to the platform, and its commands.
//! - [`control`]: platform and console commands, parsed and run the same way.
//! - [`console`]: the guards' web console (HTTP, live alarms over SSE).
//! - [`vision`]: face matching on camera frames, face enrollment.
//! - [`daemon`]: wires it all for `gatewayd run` and `gatewayd demo`.
//! - [`memory`]: allocator settings for a small box.

#[cfg(feature = "bench")]
pub mod bench;
pub mod broker;
pub mod config;
pub mod console;
pub mod contract;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod journal;
pub mod memory;
pub mod settings;
pub mod shutdown;
pub mod uplink;
pub mod vision;
