//! The drivers' modules import each other in one direction (the map at the top
//! of `src/lib.rs`): leaves, the vocabulary, the driver context, the drivers
//! (none of which imports another), the registry that lists them, and the test
//! support. Test code (`#[cfg(test)]`, `tests.rs`) is not counted.

use drivers::testing::layering::{Graph, Layer};
use std::path::Path;

/// The allowed order: a module imports only modules of the layers before its own.
const LAYERS: &[Layer<'static>] = &[
    Layer::new(
        "leaves",
        &[
            "credential",
            "backoff",
            "ct",
            "serial",
            "logsafe",
            "httpserve",
        ],
    ),
    Layer::new("vocabulary", &["event"]),
    Layer::new("driver context", &["driver"]),
    Layer::new(
        "drivers",
        &["osdp", "llrp", "lpr_http", "modbus", "sim", "camera"],
    ),
    Layer::new("registry", &["registry"]),
    Layer::new("testing", &["testing"]),
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
        ("event", "credential"),
        ("osdp", "driver"),
        ("osdp", "ct"),
        ("lpr_http", "ct"),
        ("registry", "camera"),
        ("testing", "registry"),
    ] {
        assert!(
            graph.imports(from).contains(to),
            "{from} should import {to}; found {:?}",
            graph.imports(from)
        );
    }
    if let Err(broken) = graph.check_layers(LAYERS) {
        panic!("{broken}");
    }
}
