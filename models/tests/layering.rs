//! The models' modules import each other in one direction (the map at the top
//! of `src/lib.rs`): boxes and the runtime at the bottom, image decoding, the
//! gallery (its SIMD dot products), then the face and plate pipelines. Test
//! code is not counted.

use drivers::testing::layering::{Graph, Layer};
use std::path::Path;

const LAYERS: &[Layer<'static>] = &[
    Layer::new("leaves", &["boxes", "runtime"]),
    Layer::new("images", &["image"]),
    Layer::new("gallery", &["gallery"]),
    Layer::new("pipelines", &["face", "plate"]),
];

#[test]
fn the_modules_form_no_cycle_and_import_in_order() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = Graph::of_src(&src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    if let Err(cycle) = graph.check_acyclic() {
        panic!("{cycle}");
    }
    assert!(
        graph.imports("face").contains("gallery"),
        "face should import gallery; found {:?}",
        graph.imports("face")
    );
    if let Err(broken) = graph.check_layers(LAYERS) {
        panic!("{broken}");
    }
}
