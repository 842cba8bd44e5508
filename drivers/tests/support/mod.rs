//! The real peers of the tests (see `drivers::testing::peers`), with the
//! shorthands the tests use.
#![allow(dead_code, unused_imports)]

pub use drivers::testing::peers::{JsonPeer, LlrpPeer, ModbusPeer, OsdpBus, PtyPair};

pub fn free_port() -> u16 {
    drivers::testing::peers::free_port().expect("a free port")
}
