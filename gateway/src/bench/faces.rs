//! Face pipeline speed: detect + align + embed on one 640x480 frame, against
//! the same models run by OpenCV's DNN module from Python (cv2.dnn YuNet with
//! the same decoding and input size, cv2.FaceRecognizerSF), measured in the
//! same run, one thread each, each side as the best of `ROUNDS` rounds (the
//! round least disturbed by other work on a shared machine). Goal: at most
//! half the reference's time.

use anyhow::{bail, Context, Result};
use models::face::{DetectOptions, FacePipeline, QualityOptions};
use models::opencv::core::{Mat, Rect, Scalar, Size, CV_8UC3};
use models::opencv::imgproc;
use models::opencv::prelude::*;
use models::RuntimeOptions;
use std::path::PathBuf;
use std::time::Instant;

/// Rounds of `iterations` frames per side; the best round's mean counts.
const ROUNDS: usize = 5;

/// obama2.jpg (face_recognition's test image) letterboxed into 640x480, as a
/// door camera would deliver a person standing in front of it.
pub fn door_frame() -> Result<Mat> {
    let path = models::runtime::default_models_dir().join("testdata/obama2.jpg");
    let bytes = std::fs::read(&path)
        .with_context(|| format!("{}: run `bash deploy/dev.sh setup`", path.display()))?;
    let img = models::image::decode(&bytes)?;
    let k = (640.0 / img.cols() as f64).min(480.0 / img.rows() as f64);
    let mut scaled = Mat::default();
    imgproc::resize(
        &img,
        &mut scaled,
        Size::new(0, 0),
        k,
        k,
        imgproc::INTER_AREA,
    )?;
    let mut frame = Mat::new_rows_cols_with_default(480, 640, CV_8UC3, Scalar::all(0.0))?;
    let x = (640 - scaled.cols()) / 2;
    let y = (480 - scaled.rows()) / 2;
    let mut roi = Mat::roi_mut(&mut frame, Rect::new(x, y, scaled.cols(), scaled.rows()))?;
    scaled.copy_to(&mut roi)?;
    Ok(frame)
}

pub fn run(iterations: usize, python: Option<PathBuf>) -> Result<()> {
    println!("\n== faces: detect + align + embed, one 640x480 frame, 1 thread");
    let pipeline = FacePipeline::load(
        &RuntimeOptions::default(),
        DetectOptions::default(),
        QualityOptions::default(),
    )?;
    let frame = door_frame()?;
    let dir = tempfile::tempdir()?;
    let png = dir.path().join("frame.png");
    std::fs::write(&png, models::image::encode_png(&frame)?)?;
    let mut embedding = Vec::new();
    for _ in 0..3 {
        let faces = pipeline.analyze_all(&frame)?;
        embedding = faces
            .first()
            .and_then(|a| a.embedding.clone())
            .context("no usable face in the bench frame")?;
    }
    let n = iterations.max(1) as f64;
    let (mut ours, mut detect_ms, mut rest_ms) = (f64::INFINITY, 0f64, 0f64);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let (mut detect_s, mut rest_s) = (0f64, 0f64);
        for _ in 0..iterations {
            let t0 = Instant::now();
            let faces = pipeline.detect(&frame)?;
            let t1 = Instant::now();
            let face = faces.first().context("no face in the bench frame")?;
            let a = pipeline.analyze(&frame, face.clone(), false)?;
            rest_s += t1.elapsed().as_secs_f64();
            detect_s += (t1 - t0).as_secs_f64();
            if a.embedding.is_none() {
                bail!("face not usable");
            }
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0 / n;
        if ms < ours {
            (ours, detect_ms, rest_ms) = (ms, detect_s * 1000.0 / n, rest_s * 1000.0 / n);
        }
    }
    println!(
        "gatewayd (ONNX Runtime, float32 models): {ours:.1} ms per frame (detect {detect_ms:.1} ms, align + gates + embed {rest_ms:.1} ms); best of {ROUNDS} rounds of {iterations}"
    );
    let py = super::uplink::python(python);
    let out = std::process::Command::new(&py)
        .arg("models/bench_reference.py")
        .arg(&png)
        .arg(models::runtime::default_models_dir())
        .arg(iterations.to_string())
        .arg(ROUNDS.to_string())
        .output()
        .with_context(|| format!("running {} models/bench_reference.py", py.display()))?;
    if !out.status.success() {
        println!(
            "reference failed (needs opencv-python-headless in the venv): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let theirs = v["ms"].as_f64().unwrap_or(f64::NAN);
    let reference: Vec<f32> = v["embedding"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_f64())
                .map(|x| x as f32)
                .collect()
        })
        .unwrap_or_default();
    println!(
        "reference (Python, OpenCV {} cv2.dnn YuNet + FaceRecognizerSF): {theirs:.1} ms per frame",
        v["opencv"].as_str().unwrap_or("?")
    );
    println!(
        "ratio: {:.2}x the reference's time (goal <= 0.5x); cosine of the two embeddings {:.3} (the reference does not refine the landmarks)",
        ours / theirs,
        models::face::cosine(&embedding, &reference)
    );
    Ok(())
}
