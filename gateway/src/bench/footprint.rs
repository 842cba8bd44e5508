//! Memory of a gateway matching faces: 100k enrolled templates and 4 cameras
//! streaming (opencv-doc's vtest.avi, pedestrians, replayed at 5 fps each).
//! Goal: RSS at most 200 MB. Runs first in `gatewayd bench`, so that nothing
//! measured before inflates the process.

use anyhow::{Context, Result};
use models::gallery::sketch::SplitMix;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::daemon::Gateway;

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub async fn run(templates: usize, seconds: u64) -> Result<()> {
    println!("\n== rss: {templates} face templates, 4 cameras at 5 fps, {seconds} s");
    let video = models::runtime::default_models_dir().join("testdata/vtest.avi");
    anyhow::ensure!(
        video.exists(),
        "{}: run `bash deploy/dev.sh setup`",
        video.display()
    );
    let dir = tempfile::tempdir()?;
    let mut text = format!(
        "[gateway]\nid = \"bench\"\nestate = \"bench\"\ndata_dir = \"{}\"\n[faces]\n[[doors]]\nid = \"gate\"\nzone = \"estate\"\n",
        dir.path().join("data").display()
    );
    for i in 0..4 {
        text.push_str(&format!(
            "[[devices]]\nid = \"cam{i}\"\ndriver = \"camera\"\ndoor = \"gate\"\nurl = \"{}\"\nfps = 5\n",
            video.display()
        ));
    }
    let cfg = Config::parse(&text, dir.path()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let before = status_kib("VmRSS:");
    let gw = Gateway::start(cfg).await?;
    let vision = gw.vision.clone().context("vision")?;
    let started = status_kib("VmRSS:");
    {
        let dim = models::face::DIM;
        let mut r = SplitMix(7);
        let names: Vec<String> = (0..templates).map(|i| format!("resident-{i}")).collect();
        let mut data = Vec::with_capacity(templates * dim);
        for _ in 0..templates {
            let mut v: Vec<f32> = (0..dim).map(|_| r.normal()).collect();
            models::face::normalize(&mut v);
            data.extend(v);
        }
        let mut g = vision
            .gallery
            .write()
            .map_err(|_| anyhow::anyhow!("gallery lock"))?;
        g.extend(
            names
                .iter()
                .zip(data.chunks_exact(dim))
                .map(|(p, e)| (p.as_str(), e)),
        );
    }
    models::runtime::release_freed_memory();
    let loaded = status_kib("VmRSS:");
    let t = Instant::now();
    let frames0 = vision.frames.load(Ordering::Relaxed);
    let mut peak = 0;
    while t.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak = peak.max(status_kib("VmRSS:"));
    }
    let frames = vision.frames.load(Ordering::Relaxed) - frames0;
    println!(
        "RSS: {:.0} MB peak while running ({:.0} MB before start); {} frames matched in {seconds} s ({:.1}/s of 20/s offered; the rest dropped, as designed, when matching falls behind)",
        peak as f64 / 1024.0,
        before as f64 / 1024.0,
        frames,
        frames as f64 / seconds as f64
    );
    println!(
        "  of which: {:.0} MB models and runtime at start, {:.0} MB the gallery, {:.0} MB streaming and matching",
        (started.saturating_sub(before)) as f64 / 1024.0,
        (loaded.saturating_sub(started)) as f64 / 1024.0,
        (peak.saturating_sub(loaded)) as f64 / 1024.0
    );
    println!("goal: <= 200 MB");
    drop(vision);
    gw.stop().await;
    Ok(())
}
