//! `gatewayd face embed|compare`: installers check photos with the same
//! pipeline and thresholds the gateway uses.

use serde_json::json;
use std::path::{Path, PathBuf};

use super::FacesSection;
use super::{runtime_options, Vision, VisionError};

/// Loads the pipeline with the `[faces]` of a config file (and the file's
/// folder, for relative paths), or with the defaults.
pub fn load(faces: Option<(FacesSection, &Path)>) -> Result<Vision, String> {
    let (rt, cfg) = match faces {
        Some((f, base_dir)) => (runtime_options(&f, base_dir), f),
        None => {
            let f = FacesSection::default();
            (
                models::RuntimeOptions {
                    threads: f.threads,
                    ..models::RuntimeOptions::default()
                },
                f,
            )
        }
    };
    Vision::load(&rt, &cfg, None, None, std::sync::Arc::default())
        .map_err(|e: VisionError| e.to_string())
}

/// Calibrates the gallery in the store at `db_path` (the gateway must be
/// stopped: sled lets one process open a store).
pub fn calibrate(
    db_path: &Path,
    faces: &FacesSection,
    far: f64,
) -> Result<super::calibrate::Calibration, String> {
    if !(far > 0.0 && far < 0.1) {
        return Err(format!(
            "--far {far}: must be above 0 and below 0.1 (e.g. 1e-4)"
        ));
    }
    if !db_path.exists() {
        return Err(format!(
            "{}: no store yet (start the gateway once and enroll faces)",
            db_path.display()
        ));
    }
    let db = sled::Config::new()
        .path(db_path)
        .cache_capacity(1024 * 1024)
        .open()
        .map_err(|e| {
            format!(
                "cannot open the store {} (stop gatewayd first, e.g. `systemctl stop gatewayd`): {e}",
                db_path.display()
            )
        })?;
    let store = super::store::FaceStore::open(&db).map_err(|e| e.to_string())?;
    let gallery = super::store::read_gallery(&store, super::gallery_options(faces))
        .map_err(|e| e.to_string())?;
    Ok(super::calibrate::calibrate(&gallery, far))
}

/// The largest face of a photo: (faces seen, embedding, issue).
fn largest(
    vision: &Vision,
    file: &Path,
) -> Result<(usize, Vec<f32>, Option<&'static str>), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
    let image = models::image::decode(&bytes).map_err(|e| format!("not_an_image: {e}"))?;
    let mut faces = vision.pipeline.detect(&image).map_err(|e| e.to_string())?;
    faces.sort_by(|a, b| b.area().total_cmp(&a.area()));
    let n = faces.len();
    let Some(face) = faces.into_iter().next() else {
        return Err("no_face: no face found".into());
    };
    let a = vision
        .pipeline
        .analyze(&image, face, true)
        .map_err(|e| e.to_string())?;
    let e = a.embedding.ok_or("the face was not embedded")?;
    Ok((n, e, a.issue.map(|i| i.code())))
}

/// One JSON line per image.
pub fn embed(vision: &Vision, files: &[PathBuf]) -> Vec<serde_json::Value> {
    files
        .iter()
        .map(|f| {
            let file = f.display().to_string();
            match largest(vision, f) {
                Ok((n, e, issue)) => json!({
                    "file": file,
                    "faces": n,
                    "usable": issue.is_none(),
                    "issue": issue,
                    "embedding": e,
                }),
                Err(err) => json!({"file": file, "faces": 0, "error": err}),
            }
        })
        .collect()
}

/// Similarity of the largest faces of two photos, and the verdict at the thresholds.
pub fn compare(vision: &Vision, a: &Path, b: &Path) -> Result<String, String> {
    let (_, ea, ia) = largest(vision, a).map_err(|e| format!("{}: {e}", a.display()))?;
    let (_, eb, ib) = largest(vision, b).map_err(|e| format!("{}: {e}", b.display()))?;
    let s = models::face::cosine(&ea, &eb);
    let c = &vision.cfg;
    let verdict = if s >= c.match_threshold {
        "same person"
    } else if s >= c.unknown_threshold {
        "uncertain"
    } else {
        "different persons"
    };
    let mut line = format!(
        "similarity {s:.3}: {verdict} (match_threshold {}, unknown_threshold {})",
        c.match_threshold, c.unknown_threshold
    );
    for (f, i) in [(a, ia), (b, ib)] {
        if let Some(i) = i {
            line.push_str(&format!(
                "; warning: {} {i}, the gateway would not use it",
                f.display()
            ));
        }
    }
    Ok(line)
}
