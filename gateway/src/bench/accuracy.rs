//! Face verification accuracy on the labelled photos of `../shared/data/faces`
//! (skipped with a message when absent): LFW's folds in LFW's pairs format,
//! reported the standard way (accuracy with the threshold chosen on the other
//! folds, 10-fold style over the folds given; TAR at FAR 1e-3 and 1e-4), and
//! the deepface high-resolution pairs.

use anyhow::{Context, Result};
use models::face::{DetectOptions, FacePipeline, QualityOptions};
use models::RuntimeOptions;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What the pipeline made of one photo.
#[derive(Default, Clone)]
pub(super) struct Embedded {
    pub(super) embedding: Option<Vec<f32>>,
    gated: bool,
}

/// Embeds photos on two threads (one pipeline each) as the gateway does
/// (landmarks refined, see `Detector::refine`); the face nearest the centre is
/// taken (LFW photos are centred on their subject; a bystander is sometimes
/// larger).
pub(super) fn embed_all(files: &[PathBuf]) -> Result<Vec<Embedded>> {
    let workers = 2;
    let chunks: Vec<&[PathBuf]> = files.chunks(files.len().div_ceil(workers).max(1)).collect();
    let results: Vec<Result<Vec<Embedded>>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || -> Result<Vec<Embedded>> {
                    let p = FacePipeline::load(
                        &RuntimeOptions::default(),
                        DetectOptions::default(),
                        QualityOptions::default(),
                    )?;
                    chunk.iter().map(|f| embed_one(&p, f)).collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("worker panicked")))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(files.len());
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

fn embed_one(p: &FacePipeline, file: &Path) -> Result<Embedded> {
    use models::opencv::prelude::*;
    let bytes = std::fs::read(file).with_context(|| file.display().to_string())?;
    let img = models::image::decode(&bytes)?;
    let (cx, cy) = (img.cols() as f32 / 2.0, img.rows() as f32 / 2.0);
    let faces = p.detect(&img)?;
    let Some(face) = faces.into_iter().min_by(|a, b| {
        let d = |f: &models::face::Face| {
            let c = f.center();
            (c.x - cx).powi(2) + (c.y - cy).powi(2)
        };
        d(a).total_cmp(&d(b))
    }) else {
        return Ok(Embedded::default());
    };
    let a = p.analyze(&img, face, true)?;
    Ok(Embedded {
        gated: a.issue.is_some(),
        embedding: a.embedding,
    })
}

fn sim(a: &Embedded, b: &Embedded) -> f32 {
    match (&a.embedding, &b.embedding) {
        (Some(x), Some(y)) => models::face::cosine(x, y),
        _ => -1.0, // a missed face never matches
    }
}

/// (TAR, threshold) at a false accept rate over the impostor scores.
fn tar_at(genuine: &[f32], impostor_sorted_desc: &[f32], far: f64) -> (f64, f32) {
    let allowed = (far * impostor_sorted_desc.len() as f64).floor() as usize;
    let threshold = impostor_sorted_desc
        .get(allowed)
        .map(|s| s + 1e-6)
        .unwrap_or(-1.0);
    let tar =
        genuine.iter().filter(|s| **s >= threshold).count() as f64 / genuine.len().max(1) as f64;
    (tar, threshold)
}

fn best_threshold(pairs: &[(f32, bool)]) -> f32 {
    let mut best = (0usize, 0.0f32);
    for i in -100..=100 {
        let t = i as f32 / 100.0;
        let right = pairs.iter().filter(|(s, same)| (*s >= t) == *same).count();
        if right > best.0 {
            best = (right, t);
        }
    }
    // Refine around the best coarse step.
    let coarse = best.1;
    for i in -100..=100 {
        let t = coarse + i as f32 / 10_000.0;
        let right = pairs.iter().filter(|(s, same)| (*s >= t) == *same).count();
        if right > best.0 {
            best = (right, t);
        }
    }
    best.1
}

pub fn lfw(data: &Path) -> Result<()> {
    println!("\n== faces: LFW verification accuracy");
    let root = data.join("faces/lfw");
    let Ok(text) = std::fs::read_to_string(root.join("pairs.txt")) else {
        println!(
            "skipped: {} not found (shared test data absent)",
            root.display()
        );
        return Ok(());
    };
    let mut lines = text.lines();
    let head: Vec<usize> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let (folds, per) = (
        head.first().copied().unwrap_or(0),
        head.get(1).copied().unwrap_or(0),
    );
    let file = |name: &str, n: &str| -> Option<PathBuf> {
        let n: u32 = n.parse().ok()?;
        Some(
            root.join("images")
                .join(name)
                .join(format!("{name}_{n:04}.jpg")),
        )
    };
    let mut pairs: Vec<(usize, PathBuf, PathBuf, bool)> = Vec::new();
    for fold in 0..folds {
        for i in 0..2 * per {
            let Some(line) = lines.next() else { break };
            let f: Vec<&str> = line.split_whitespace().collect();
            let p = match (i < per, f.as_slice()) {
                (true, [n, a, b]) => file(n, a).zip(file(n, b)).map(|(x, y)| (x, y, true)),
                (false, [n1, a, n2, b]) => file(n1, a).zip(file(n2, b)).map(|(x, y)| (x, y, false)),
                _ => None,
            };
            if let Some((x, y, same)) = p {
                pairs.push((fold, x, y, same));
            }
        }
    }
    let mut files: Vec<PathBuf> = pairs
        .iter()
        .flat_map(|(_, a, b, _)| [a.clone(), b.clone()])
        .collect();
    files.sort();
    files.dedup();
    let t = std::time::Instant::now();
    let emb = embed_all(&files)?;
    let index: HashMap<&PathBuf, usize> = files.iter().enumerate().map(|(i, f)| (f, i)).collect();
    let missed = emb.iter().filter(|e| e.embedding.is_none()).count();
    let gated = emb.iter().filter(|e| e.gated).count();
    println!(
        "{} photos embedded in {:.0} s (2 threads): {missed} without a face found, {gated} below a quality gate (embedded anyway for the benchmark)",
        files.len(),
        t.elapsed().as_secs_f64()
    );
    let scored: Vec<(usize, f32, bool)> = pairs
        .iter()
        .map(|(fold, a, b, same)| (*fold, sim(&emb[index[a]], &emb[index[b]]), *same))
        .collect();
    let mut accs = Vec::new();
    let mut thresholds = Vec::new();
    for k in 0..folds {
        let train: Vec<(f32, bool)> = scored
            .iter()
            .filter(|p| p.0 != k)
            .map(|p| (p.1, p.2))
            .collect();
        let test: Vec<(f32, bool)> = scored
            .iter()
            .filter(|p| p.0 == k)
            .map(|p| (p.1, p.2))
            .collect();
        let t = best_threshold(&train);
        let acc = test.iter().filter(|(s, same)| (*s >= t) == *same).count() as f64
            / test.len().max(1) as f64;
        accs.push(acc);
        thresholds.push(t);
    }
    let mean = accs.iter().sum::<f64>() / accs.len().max(1) as f64;
    let sd =
        (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / accs.len().max(1) as f64).sqrt();
    println!(
        "LFW pairs ({} folds x {} pairs): accuracy {:.2}% ± {:.2} (threshold chosen on the other folds: {})",
        folds,
        2 * per,
        mean * 100.0,
        sd * 100.0,
        thresholds.iter().map(|t| format!("{t:.3}")).collect::<Vec<_>>().join(", ")
    );
    let genuine: Vec<f32> = scored.iter().filter(|p| p.2).map(|p| p.1).collect();
    let mut impostor: Vec<f32> = scored.iter().filter(|p| !p.2).map(|p| p.1).collect();
    impostor.sort_by(|a, b| b.total_cmp(a));
    for far in [1e-3, 1e-4] {
        let (tar, th) = tar_at(&genuine, &impostor, far);
        println!(
            "  listed pairs: TAR {:.2}% at FAR {far:e} (threshold {th:.3}; {} impostor pairs, so this is FAR 0)",
            tar * 100.0,
            impostor.len()
        );
    }
    // All pairs among the fold photos: every cross-identity pair is an impostor.
    let ident = |f: &PathBuf| f.parent().map(|p| p.to_path_buf());
    let mut genuine_all = Vec::new();
    let mut impostor_all = Vec::new();
    for i in 0..files.len() {
        for j in i + 1..files.len() {
            let s = sim(&emb[i], &emb[j]);
            if ident(&files[i]) == ident(&files[j]) {
                genuine_all.push(s);
            } else {
                impostor_all.push(s);
            }
        }
    }
    impostor_all.sort_by(|a, b| b.total_cmp(a));
    for far in [1e-3, 1e-4] {
        let (tar, th) = tar_at(&genuine_all, &impostor_all, far);
        println!(
            "  all pairs ({} genuine, {} impostor): TAR {:.2}% at FAR {far:e}, threshold {th:.3}",
            genuine_all.len(),
            impostor_all.len(),
            tar * 100.0
        );
    }
    Ok(())
}

pub fn deepface(data: &Path) -> Result<()> {
    println!("\n== faces: deepface high-resolution pairs");
    let root = data.join("faces/deepface");
    let Ok(text) = std::fs::read_to_string(root.join("pairs.csv")) else {
        println!(
            "skipped: {} not found (shared test data absent)",
            root.display()
        );
        return Ok(());
    };
    let pairs: Vec<(PathBuf, PathBuf, bool)> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            match f.as_slice() {
                [a, b, same] => Some((
                    root.join("images").join(a.trim()),
                    root.join("images").join(b.trim()),
                    same.trim() == "1",
                )),
                _ => None,
            }
        })
        .collect();
    let mut files: Vec<PathBuf> = pairs
        .iter()
        .flat_map(|(a, b, _)| [a.clone(), b.clone()])
        .collect();
    files.sort();
    files.dedup();
    let emb = embed_all(&files)?;
    let index: HashMap<&PathBuf, usize> = files.iter().enumerate().map(|(i, f)| (f, i)).collect();
    let scored: Vec<(f32, bool)> = pairs
        .iter()
        .map(|(a, b, same)| (sim(&emb[index[a]], &emb[index[b]]), *same))
        .collect();
    let t = best_threshold(&scored);
    let acc = scored.iter().filter(|(s, same)| (*s >= t) == *same).count() as f64
        / scored.len().max(1) as f64;
    let at_045 = scored
        .iter()
        .filter(|(s, same)| (*s >= 0.45) == *same)
        .count() as f64
        / scored.len().max(1) as f64;
    println!(
        "deepface high-resolution pairs ({}): best accuracy {:.2}% at threshold {t:.3}; {:.2}% at the default match_threshold 0.45",
        scored.len(),
        acc * 100.0,
        at_045 * 100.0
    );
    Ok(())
}
