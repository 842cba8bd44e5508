//! Local vision beside the engine: camera frames → faces → gallery matches,
//! fed to the engine as face credentials; and enrollment of face photos.
//!
//! - `store`: face templates in sled (tree `faces`), loaded into the gallery at start.
//! - `enroll`: [`FaceEnroller`] for `person.upsert` and the console: one usable
//!   face per photo, duplicates of other persons refused.
//! - `track`: faces followed across frames; votes, one decision per pass, liveness.
//! - `matcher`: the task that turns camera frames into face reads for the engine.
//! - `cli`: `gatewayd face embed|compare`.

pub mod cli;
pub mod enroll;
pub mod matcher;
pub mod store;
pub mod track;

use bytes::Bytes;
use drivers::PersonId;
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use models::face::{DetectOptions, FacePipeline, QualityOptions};
use models::{Gallery, GalleryOptions, Hit, RuntimeOptions};

use crate::config::{Config, FacesSection};
use crate::engine::CommandError;

/// Where the face enroller is plugged in once the face pipeline has started.
pub type FaceSlot = std::sync::Arc<std::sync::RwLock<Option<std::sync::Arc<dyn FaceEnroller>>>>;

/// Face templates computed from checked photos, not stored yet.
pub struct PreparedFaces {
    pub templates: Vec<Vec<f32>>,
    pub photos: Vec<Bytes>,
}

/// Turns enrollment photos into gallery templates. Photos are checked and
/// embedded first (`prepare`), stored only when the whole command is valid
/// (`commit`), so that a bad photo changes nothing.
pub trait FaceEnroller: Send + Sync {
    /// Checks every photo (exactly one usable face each) and embeds it.
    fn prepare<'a>(
        &'a self,
        person: &'a PersonId,
        photos: Vec<Bytes>,
    ) -> BoxFuture<'a, Result<PreparedFaces, CommandError>>;
    /// Adds the templates to the person's; returns how many the person has now.
    fn commit<'a>(
        &'a self,
        person: &'a PersonId,
        faces: PreparedFaces,
    ) -> BoxFuture<'a, Result<u32, CommandError>>;
    /// Forgets every template of a person.
    fn remove<'a>(&'a self, person: &'a PersonId) -> BoxFuture<'a, Result<(), CommandError>>;
}

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
    pub plates: Option<(models::plate::PlateReader, crate::config::PlatesSection)>,
}

/// The gallery's options `[faces]` gives.
pub fn gallery_options(cfg: &FacesSection) -> GalleryOptions {
    GalleryOptions {
        exact_max: cfg.exact_max,
        ..GalleryOptions::default()
    }
}

/// The runtime options `[faces]` gives.
pub fn runtime_options(config: &Config, cfg: &FacesSection) -> RuntimeOptions {
    RuntimeOptions {
        models_dir: cfg
            .models_dir
            .as_ref()
            .map(|d| config.resolve(d))
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

    /// The best two persons for an embedding.
    pub fn identify(&self, embedding: &[f32]) -> Vec<Hit> {
        match self.gallery.read() {
            Ok(g) => g.search(embedding, 2),
            Err(_) => Vec::new(),
        }
    }
}

/// Whether the config asks for the vision: faces, or plates read from video.
pub fn wanted(config: &Config) -> bool {
    config.faces.is_some() || config.plates.is_some()
}

/// Starts face matching for a running gateway when `[faces]` is configured:
/// loads the models and gallery, plugs enrollment into the controller, and
/// runs the matcher on the cameras' frames.
pub fn start(
    gw: &mut crate::daemon::Gateway,
    preloaded: Option<Gallery>,
) -> Result<Option<Arc<Vision>>, VisionError> {
    if !wanted(&gw.config) {
        return Ok(None);
    }
    let cfg = gw.config.faces.clone().unwrap_or_default();
    let rt = runtime_options(&gw.config, &cfg);
    let mut vision = Vision::load(&rt, &cfg, Some(&gw.db), preloaded, gw.vision_stats.clone())?;
    if let Some(p) = &gw.config.plates {
        vision.plates = Some((models::plate::PlateReader::load(&rt)?, p.clone()));
        models::runtime::release_freed_memory();
    }
    let vision = Arc::new(vision);
    if gw.config.faces.is_some() {
        if let Ok(mut slot) = gw.controller.faces.write() {
            *slot = Some(Arc::new(enroll::Enroller::new(vision.clone())));
        }
    }
    if let Some(frames) = gw.frames.take() {
        let task = matcher::run(
            vision.clone(),
            gw.config.faces.is_some(),
            gw.config.clone(),
            frames,
            gw.events.clone(),
            gw.shutdown_token(),
        );
        gw.spawn(task);
    }
    Ok(Some(vision))
}
