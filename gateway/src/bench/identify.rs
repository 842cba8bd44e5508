//! 1:N identification on LFW (`--only identify`): a roster of about 1,100
//! persons (one photo each enrolled), strangers' photos searched against it,
//! at the fixed default `match_threshold` and at the threshold calibrated from
//! `false_accept_rate` on the roster's own impostor pairs. Nothing is tuned on
//! the strangers or the probes: the roster/stranger split is by identity
//! (every third identity in name order is a stranger), the target is the
//! config's default, and the threshold comes from the roster alone.

use anyhow::Result;
use models::{Gallery, GalleryOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::accuracy::embed_all;
use crate::vision::calibrate;

pub fn run(data: &Path, far: f64) -> Result<()> {
    println!("\n== identify: 1:N on LFW, fixed against calibrated threshold");
    let images = data.join("faces/lfw/images");
    let Ok(dirs) = std::fs::read_dir(&images) else {
        println!(
            "skipped: {} not found (shared test data absent)",
            images.display()
        );
        return Ok(());
    };
    let mut by_person: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for d in dirs.flatten() {
        let name = d.file_name().to_string_lossy().into_owned();
        let mut photos: Vec<PathBuf> = std::fs::read_dir(d.path())?
            .flatten()
            .map(|f| f.path())
            .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
            .collect();
        photos.sort();
        if !photos.is_empty() {
            by_person.insert(name, photos);
        }
    }
    let files: Vec<PathBuf> = by_person.values().flatten().cloned().collect();
    let t = std::time::Instant::now();
    let emb = embed_all(&files)?;
    println!(
        "{} photos embedded in {:.0} s",
        files.len(),
        t.elapsed().as_secs_f64()
    );
    let mut at = 0;
    let mut gallery = Gallery::new(models::face::DIM, GalleryOptions::default());
    let mut genuine: Vec<(String, Vec<f32>)> = Vec::new();
    let mut strangers: Vec<Vec<f32>> = Vec::new();
    for (i, (name, photos)) in by_person.iter().enumerate() {
        let mine = &emb[at..at + photos.len()];
        at += photos.len();
        let mut faces = mine.iter().filter_map(|e| e.embedding.clone());
        if i % 3 == 2 {
            strangers.extend(faces);
        } else if let Some(first) = faces.next() {
            gallery.insert(name, &first);
            genuine.extend(faces.map(|f| (name.clone(), f)));
        }
    }
    let fixed = crate::vision::FacesSection::default().match_threshold;
    let c = calibrate::calibrate(&gallery, far);
    let calibrated = calibrate::match_threshold(&c, 0.30, fixed);
    println!("{c}");
    println!(
        "roster {} persons; {} strangers' photos; {} genuine probes (a second photo of a roster person)",
        gallery.persons(),
        strangers.len(),
        genuine.len()
    );
    for (label, t) in [("fixed", fixed), ("calibrated", calibrated)] {
        let false_matches = strangers
            .iter()
            .filter(|s| {
                gallery
                    .search(s, 1)
                    .first()
                    .is_some_and(|h| h.similarity >= t)
            })
            .count();
        let accepted = genuine
            .iter()
            .filter(|(who, f)| {
                gallery
                    .search(f, 1)
                    .first()
                    .is_some_and(|h| &*h.person == who && h.similarity >= t)
            })
            .count();
        println!(
            "{label:>10} threshold {t:.3}: strangers matched to someone {false_matches} of {} ({:.2}%); genuine probes accepted {accepted} of {} ({:.1}%)",
            strangers.len(),
            100.0 * false_matches as f64 / strangers.len().max(1) as f64,
            genuine.len(),
            100.0 * accepted as f64 / genuine.len().max(1) as f64,
        );
    }
    Ok(())
}
