//! The estate gateway: reads the estate's devices, decides who may pass, journals
//! every pass and alarm, forwards them to the platform and shows them to guards.
//!
//! Data flows drivers → engine → journal → uplink / console. The modules, from
//! the bottom up; a module imports only modules above it in this list (arrows
//! point down the list), never one below (`tests/layering.rs` checks it):
//!
//! - [`contract`]: the wire contract, a leaf: records and payloads, ids,
//!   reasons, groups, command names, reply codes, and the alarm catalogue.
//! - [`settings`]: what every config section shares (problems, paths); a leaf.
//! - [`memory`], [`shutdown`], [`broker`]: allocator settings, signals, a
//!   mosquitto for the demo and benches; leaves.
//! - [`journal`] → contract: every record numbered and durable, in sled; searches.
//! - [`engine`] → journal, contract: access decisions, door states, alarms
//!   (device events come from the `drivers` crate).
//! - [`control`] → engine: platform and console commands, parsed and run the
//!   same way; defines the `FaceEnroller` the vision implements.
//! - [`vision`] → control: face matching on camera frames, face enrollment.
//! - [`uplink`] → control, journal: MQTT store-and-forward, and the platform's commands.
//! - [`console`] → uplink, vision, control, engine, journal: the guards' web console.
//! - [`config`] → every component's section: the config file, parsed, located
//!   line by line, cross-referenced.
//! - [`daemon`] → all of the above: builds the components in this order and
//!   wires them for `gatewayd run` and `gatewayd demo`.
//! - [`demo`], `bench` (feature `bench`): the demo estate and `gatewayd bench`.

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
