//! `[faces]` and `[plates]`: the vision's own config sections and their checks.

use drivers::DeviceId;
use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::settings::{resolve, Problem};

/// `[faces]`: local face matching (camera frames → gallery) and enrollment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacesSection {
    /// Folder of the model files (from models/fetch.py); default: the checkout's
    /// `models/files`, or `$GATEWAYD_MODELS`.
    pub models_dir: Option<PathBuf>,
    /// ONNX Runtime threads per model.
    #[serde(default = "one")]
    pub threads: usize,
    /// Cosine similarity at or above which a face opens (grant).
    #[serde(default = "default_match_threshold")]
    pub match_threshold: f32,
    /// The target false-accept rate per identification (a stranger matched to
    /// anyone of the roster). When set, the threshold that opens is computed
    /// from it, the roster's size and this estate's own impostor scores, and
    /// recomputed at every enrollment (`gatewayd face calibrate` shows it);
    /// `match_threshold` then applies only while the roster is too small to
    /// calibrate (fewer than ~50 persons).
    #[serde(default)]
    pub false_accept_rate: Option<f64>,
    /// Below this the face is unknown; between the two it is `uncertain` and does not open.
    #[serde(default = "default_unknown_threshold")]
    pub unknown_threshold: f32,
    /// Detector score (0..1) a face needs.
    #[serde(default = "default_detect_score")]
    pub detect_score: f32,
    /// Smallest usable face: the shorter side of its box, in pixels.
    #[serde(default = "default_min_face_px")]
    pub min_face_px: f32,
    /// Least sharpness (variance of the Laplacian of the aligned face) accepted.
    #[serde(default = "default_min_sharpness")]
    pub min_sharpness: f32,
    /// Largest head turn accepted (nose offset / eye distance; ~0.5 at 45 degrees).
    #[serde(default = "default_max_yaw")]
    pub max_yaw: f32,
    /// Usable frames of one track that vote before a decision.
    #[serde(default = "default_votes")]
    pub votes: u32,
    /// After a decision for a person at a camera, the same person is not decided
    /// again there for this long (one decision per pass).
    #[serde(default = "default_repeat_s")]
    pub repeat_s: u32,
    /// Liveness gate: `off`, or `motion` (the face must move naturally across
    /// the voting frames; stops still photos; see README).
    #[serde(default)]
    pub liveness: LivenessMode,
    /// Up to this many templates the gallery is searched exactly; above it
    /// through a binary sketch index (exact ranking of the closest candidates).
    #[serde(default = "default_exact_max")]
    pub exact_max: usize,
    /// JPEG quality of the snapshots (1-100).
    #[serde(default = "default_snapshot_quality")]
    pub snapshot_quality: i32,
}

/// `[plates]`: plates read from the video of gate cameras that do not read
/// plates themselves; each read is a `plate` credential of the camera.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatesSection {
    /// Camera devices (`driver = "camera"`) whose frames are read for plates
    /// (instead of faces).
    pub cameras: Vec<DeviceId>,
    /// Least recogniser confidence (0..1) of a read.
    #[serde(default = "default_plate_confidence")]
    pub min_confidence: f32,
    /// The same plate at the same camera is not decided again for this long.
    #[serde(default = "default_plate_repeat_s")]
    pub repeat_s: u32,
}

fn default_plate_confidence() -> f32 {
    0.3
}
fn default_plate_repeat_s() -> u32 {
    30
}

/// `[faces] liveness`
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LivenessMode {
    Off,
    #[default]
    Motion,
}

fn one() -> usize {
    1
}
fn default_match_threshold() -> f32 {
    0.45
}
fn default_unknown_threshold() -> f32 {
    0.30
}
fn default_detect_score() -> f32 {
    0.6
}
fn default_min_face_px() -> f32 {
    60.0
}
fn default_min_sharpness() -> f32 {
    50.0
}
fn default_max_yaw() -> f32 {
    0.45
}
fn default_votes() -> u32 {
    3
}
fn default_repeat_s() -> u32 {
    10
}
fn default_exact_max() -> usize {
    50_000
}
fn default_snapshot_quality() -> i32 {
    85
}

impl Default for FacesSection {
    fn default() -> Self {
        Self {
            models_dir: None,
            threads: one(),
            match_threshold: default_match_threshold(),
            false_accept_rate: None,
            unknown_threshold: default_unknown_threshold(),
            detect_score: default_detect_score(),
            min_face_px: default_min_face_px(),
            min_sharpness: default_min_sharpness(),
            max_yaw: default_max_yaw(),
            votes: default_votes(),
            repeat_s: default_repeat_s(),
            liveness: LivenessMode::default(),
            exact_max: default_exact_max(),
            snapshot_quality: default_snapshot_quality(),
        }
    }
}

impl FacesSection {
    /// Checks what serde cannot; keys are relative to `[faces]`.
    pub fn check(&self, base_dir: &Path) -> Vec<Problem> {
        let mut out = Vec::new();
        for (key, v) in [
            ("match_threshold", self.match_threshold),
            ("unknown_threshold", self.unknown_threshold),
            ("detect_score", self.detect_score),
        ] {
            if !(0.0..=1.0).contains(&v) {
                out.push(Problem::new(key, format!("{v} must be between 0 and 1")));
            }
        }
        if self.unknown_threshold > self.match_threshold {
            out.push(Problem::new(
                "unknown_threshold",
                format!(
                    "{} is above match_threshold {}",
                    self.unknown_threshold, self.match_threshold
                ),
            ));
        }
        if let Some(far) = self.false_accept_rate {
            if !(far > 0.0 && far < 0.1) {
                out.push(Problem::new(
                    "false_accept_rate",
                    format!("{far} must be above 0 and below 0.1 (e.g. 1e-4)"),
                ));
            }
        }
        if self.votes == 0 {
            out.push(Problem::new("votes", "must be at least 1"));
        }
        if !(1..=100).contains(&self.snapshot_quality) {
            out.push(Problem::new("snapshot_quality", "must be 1-100"));
        }
        if !(1..=16).contains(&self.threads) {
            out.push(Problem::new("threads", "must be 1-16"));
        }
        if let Some(dir) = &self.models_dir {
            let dir = resolve(base_dir, dir);
            if !dir.is_dir() {
                out.push(Problem::new(
                    "models_dir",
                    format!("{} is not a folder", dir.display()),
                ));
            }
        }
        out
    }
}

impl PlatesSection {
    /// Checks what serde cannot; keys are relative to `[plates]` (that the
    /// cameras exist is checked with the devices, in `config`).
    pub fn check(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if !(0.0..=1.0).contains(&self.min_confidence) {
            out.push(Problem::new("min_confidence", "must be between 0 and 1"));
        }
        out
    }
}
