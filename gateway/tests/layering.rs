//! The gateway's modules import each other in one direction (the map at the
//! top of `src/lib.rs`): the wire contract and shared settings at the bottom,
//! then journal, engine, control, vision, uplink, console, the config file
//! that gathers every component's section, and the daemon that wires them.
//! Test code (`#[cfg(test)]`, `tests.rs`) is not counted.

use drivers::testing::layering::{Graph, Layer};
use std::path::Path;

/// The allowed order: a module imports only modules of the layers before its own.
const LAYERS: &[Layer<'static>] = &[
    Layer::new(
        "leaves",
        &["contract", "settings", "memory", "shutdown", "broker"],
    ),
    Layer::new("journal", &["journal"]),
    Layer::new("engine", &["engine"]),
    Layer::new("control", &["control"]),
    Layer::new("vision", &["vision"]),
    Layer::new("uplink", &["uplink"]),
    Layer::new("console", &["console"]),
    Layer::new("config file", &["config"]),
    Layer::new("daemon", &["daemon"]),
    Layer::new("entry points", &["demo", "bench"]),
];

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    Graph::of_src(&src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()))
}

#[test]
fn the_modules_form_no_cycle() {
    if let Err(cycle) = graph().check_acyclic() {
        panic!("{cycle}");
    }
}

#[test]
fn the_modules_import_in_the_allowed_order() {
    let graph = graph();
    // The check sees the imports there are (it would pass vacuously on a parser that found none).
    for (from, to) in [
        ("journal", "contract"),
        ("engine", "journal"),
        ("control", "engine"),
        ("vision", "control"),
        ("uplink", "control"),
        ("console", "engine"),
        ("config", "engine"),
        ("daemon", "config"),
    ] {
        assert!(
            graph.imports(from).contains(to),
            "{from} should import {to}; found {:?}",
            graph.imports(from)
        );
    }
    assert!(
        graph.imports("contract").is_empty(),
        "the contract is a leaf; it imports {:?}",
        graph.imports("contract")
    );
    if let Err(broken) = graph.check_layers(LAYERS) {
        panic!("{broken}");
    }
}
