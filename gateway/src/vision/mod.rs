//! Local vision beside the engine: camera frames → faces → gallery matches,
//! fed to the engine as face credentials; and enrollment of face photos.
//!
//! - `config`: the `[faces]` and `[plates]` sections and their checks.
//! - `calibrate`: the 1:N match threshold from `false_accept_rate`.
//! - `store`: face templates in sled (tree `faces`), loaded into the gallery at start.
//! - `enroll`: the [`FaceEnroller`](crate::control::FaceEnroller) for
//!   `person.upsert` and the console: one usable face per photo, duplicates of
//!   other persons refused.
//! - `track`: faces followed across frames; votes, one decision per pass, liveness.
//! - `matcher`: the task that turns camera frames into face reads for the engine.
//! - `cli`: `gatewayd face embed|compare`.

pub mod calibrate;
pub mod cli;
pub mod config;
pub mod enroll;
pub mod matcher;
pub mod store;
pub mod track;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use models::face::{DetectOptions, FacePipeline, QualityOptions};
use models::{Gallery, GalleryOptions, Hit, RuntimeOptions};

pub use config::{FacesSection, LivenessMode, PlatesSection};

/// Why the vision could not start.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("face models: {0}")]
    Model(#[from] models::ModelError),
    #[error("{0}")]
    Store(#[from] store::StoreError),
}

/// The vision's figures, for `/metrics` and the benches.
#[derive(Debug, Default)]
pub struct Stats {
    /// Camera frames the matcher has processed.
    pub frames: AtomicU64,
    /// Camera frames dropped because the matcher was busy (shared with the cameras' sink).
    pub dropped: Arc<AtomicU64>,
    /// Face templates in the gallery.
    pub templates: AtomicU64,
}

impl Stats {
    pub fn new(dropped: Arc<AtomicU64>) -> Self {
        Self {
            dropped,
            ..Self::default()
        }
    }

    pub fn set_templates(&self, n: usize) {
        self.templates.store(n as u64, Ordering::Relaxed);
    }
}

/// The face pipeline, the gallery and its store: one per gateway, shared by
/// the matcher task and enrollment.
pub struct Vision {
    pub cfg: FacesSection,
    pub pipeline: FacePipeline,
    pub gallery: RwLock<Gallery>,
    store: Option<store::FaceStore>,
    /// Frames processed, frames dropped, templates (also on /metrics).
    pub stats: Arc<Stats>,
    /// The plate reader, when `[plates]` names cameras.
    pub plates: Option<(models::plate::PlateReader, PlatesSection)>,
}

/// The gallery's options `[faces]` gives.
pub fn gallery_options(cfg: &FacesSection) -> GalleryOptions {
    GalleryOptions {
        exact_max: cfg.exact_max,
        ..GalleryOptions::default()
    }
}

/// The runtime options `[faces]` gives; `base_dir` is the config file's folder.
pub fn runtime_options(cfg: &FacesSection, base_dir: &Path) -> RuntimeOptions {
    RuntimeOptions {
        models_dir: cfg
            .models_dir
            .as_ref()
            .map(|d| crate::settings::resolve(base_dir, d))
            .unwrap_or_else(models::runtime::default_models_dir),
        threads: cfg.threads,
        ..RuntimeOptions::default()
    }
}

impl Vision {
    /// Loads the models; takes the gallery the daemon read from the store
    /// before opening it for good (see `Gateway::start`), or starts an empty
    /// one. With a store, enrollments are kept there.
    pub fn load(
        rt: &RuntimeOptions,
        cfg: &FacesSection,
        db: Option<&sled::Db>,
        preloaded: Option<Gallery>,
        stats: Arc<Stats>,
    ) -> Result<Vision, VisionError> {
        let pipeline = FacePipeline::load(
            rt,
            DetectOptions {
                score_threshold: cfg.detect_score,
                min_face_px: cfg.min_face_px,
                ..DetectOptions::default()
            },
            QualityOptions {
                min_face_px: cfg.min_face_px,
                min_sharpness: cfg.min_sharpness,
                max_yaw: cfg.max_yaw,
                ..QualityOptions::default()
            },
        )?;
        let store = db.map(store::FaceStore::open).transpose()?;
        let gallery =
            preloaded.unwrap_or_else(|| Gallery::new(models::face::DIM, gallery_options(cfg)));
        models::runtime::release_freed_memory();
        stats.set_templates(gallery.len());
        tracing::info!(
            templates = gallery.len(),
            persons = gallery.persons(),
            "face gallery loaded"
        );
        Ok(Vision {
            cfg: cfg.clone(),
            pipeline,
            gallery: RwLock::new(gallery),
            store,
            stats,
            plates: None,
        })
    }

    /// The match threshold `false_accept_rate` gives for the gallery as it is
    /// now; `None` without a target (the configured `match_threshold` holds).
    pub fn calibrated_threshold(&self) -> Option<f32> {
        let far = self.cfg.false_accept_rate?;
        let c = calibrate::calibrate(&*self.gallery.read().ok()?, far);
        let t =
            calibrate::match_threshold(&c, self.cfg.unknown_threshold, self.cfg.match_threshold);
        tracing::info!(
            persons = c.persons,
            impostor_pairs = c.impostor_pairs,
            calibrated = c.threshold.is_some(),
            threshold = t,
            "face match threshold for false_accept_rate {far:e}"
        );
        Some(t)
    }

    /// The best two persons for an embedding.
    pub fn identify(&self, embedding: &[f32]) -> Vec<Hit> {
        match self.gallery.read() {
            Ok(g) => g.search(embedding, 2),
            Err(_) => Vec::new(),
        }
    }
}

/// Loads what the config asks for: the face pipeline and gallery with
/// `[faces]` (enrollment needs them even without a camera), the plate reader
/// with `[plates]`. `None` when neither is configured: no model is loaded.
pub fn load(
    faces: Option<&FacesSection>,
    plates: Option<&PlatesSection>,
    base_dir: &Path,
    db: &sled::Db,
    preloaded: Option<Gallery>,
    stats: Arc<Stats>,
) -> Result<Option<Vision>, VisionError> {
    if faces.is_none() && plates.is_none() {
        return Ok(None);
    }
    let cfg = faces.cloned().unwrap_or_default();
    let rt = runtime_options(&cfg, base_dir);
    let mut vision = Vision::load(&rt, &cfg, Some(db), preloaded, stats)?;
    if let Some(p) = plates {
        vision.plates = Some((models::plate::PlateReader::load(&rt)?, p.clone()));
        models::runtime::release_freed_memory();
    }
    Ok(Some(vision))
}
