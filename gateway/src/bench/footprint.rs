//! Memory of a gateway matching faces: 100k enrolled templates and 4 cameras
//! streaming (opencv-doc's vtest.avi, pedestrians, replayed at 5 fps each).
//! The bench puts the templates in a store, then runs the real daemon
//! (`gatewayd run`, a child process) on it, as after a restart, and samples the
//! child's resident memory while its cameras stream; its /metrics tell that
//! the gallery is loaded and how many frames were matched. Goal: RSS at most
//! 200 MB.

use anyhow::{bail, Context, Result};
use models::gallery::sketch::SplitMix;
use std::path::Path;
use std::time::{Duration, Instant};

/// A field of /proc/PID/status in KiB.
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Stores `n` synthetic templates (one per resident) where the gateway's
/// store will be, and closes it again.
fn enroll(db_path: &Path, n: usize) -> Result<()> {
    let db = sled::Config::new()
        .path(db_path)
        .cache_capacity(8 << 20)
        .open()?;
    let store = crate::vision::store::FaceStore::open(&db)?;
    let dim = models::face::DIM;
    let mut r = SplitMix(7);
    let mut i = 0;
    while i < n {
        let m = (n - i).min(10_000);
        let names: Vec<String> = (i..i + m).map(|k| format!("resident-{k}")).collect();
        let mut data = Vec::with_capacity(m * dim);
        for _ in 0..m {
            let mut v: Vec<f32> = (0..dim).map(|_| r.normal()).collect();
            models::face::normalize(&mut v);
            data.extend(v);
        }
        store.add_many(
            names
                .iter()
                .zip(data.chunks_exact(dim))
                .map(|(p, e)| (p.as_str(), e)),
        )?;
        i += m;
    }
    drop(store);
    db.flush()?;
    Ok(())
}

/// One value of the daemon's /metrics, or None while it does not answer.
async fn metric(addr: &str, name: &str) -> Option<f64> {
    let body = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    body.lines()
        .find(|l| l.split_whitespace().next() == Some(name))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Stops the child politely (SIGTERM), then for good.
fn stop(child: &mut std::process::Child) {
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub async fn run(templates: usize, seconds: u64) -> Result<()> {
    println!(
        "\n== rss: gatewayd run with {templates} face templates, 4 cameras at 5 fps, {seconds} s"
    );
    let video = models::runtime::default_models_dir().join("testdata/vtest.avi");
    anyhow::ensure!(
        video.exists(),
        "{}: run `bash deploy/dev.sh setup`",
        video.display()
    );
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let data = dir.path().join("data");
    let mut text = format!(
        "[gateway]\nid = \"bench\"\nestate = \"bench\"\ndata_dir = \"{}\"\n[console]\nlisten = \"{addr}\"\n[faces]\n[[doors]]\nid = \"gate\"\nzone = \"estate\"\n",
        data.display()
    );
    for i in 0..4 {
        text.push_str(&format!(
            "[[devices]]\nid = \"cam{i}\"\ndriver = \"camera\"\ndoor = \"gate\"\nurl = \"{}\"\nfps = 5\n",
            video.display()
        ));
    }
    let cfg_path = dir.path().join("gateway.toml");
    std::fs::write(&cfg_path, text)?;
    std::fs::create_dir_all(&data)?;
    enroll(&data.join("db"), templates)?;

    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new(exe)
        .arg("run")
        .arg("-c")
        .arg(&cfg_path)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting gatewayd run")?;
    let pid = child.id();
    let result = measure(pid, &addr, templates, seconds).await;
    stop(&mut child);
    let m = result?;
    println!(
        "RSS of the daemon: {:.0} MB peak, {:.0} MB at the end ({:.0} MB once started with the gallery loaded, before the cameras' first frames); high-water mark {:.0} MB",
        m.peak as f64 / 1024.0,
        m.last as f64 / 1024.0,
        m.loaded as f64 / 1024.0,
        m.hwm as f64 / 1024.0
    );
    println!(
        "{:.0} frames matched in {seconds} s ({:.1}/s of 20/s offered), {:.0} dropped while the matcher was busy (by design)",
        m.frames,
        m.frames / seconds as f64,
        m.dropped
    );
    println!("goal: <= 200 MB");
    Ok(())
}

struct Figures {
    loaded: u64,
    peak: u64,
    last: u64,
    hwm: u64,
    frames: f64,
    dropped: f64,
}

async fn measure(pid: u32, addr: &str, templates: usize, seconds: u64) -> Result<Figures> {
    // Started: the gallery is loaded once /metrics counts every template.
    let t = Instant::now();
    loop {
        if metric(addr, "gatewayd_face_templates").await == Some(templates as f64) {
            break;
        }
        if t.elapsed() > Duration::from_secs(120) || status_kib(pid, "VmRSS:").is_none() {
            bail!("the daemon did not start with its {templates} templates (run it by hand to see why)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let loaded = status_kib(pid, "VmRSS:").unwrap_or(0);
    let frames0 = metric(addr, "gatewayd_vision_frames_total")
        .await
        .unwrap_or(0.0);
    let dropped0 = metric(addr, "gatewayd_vision_frames_dropped_total")
        .await
        .unwrap_or(0.0);
    let t = Instant::now();
    let (mut peak, mut last) = (loaded, loaded);
    while t.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        last = status_kib(pid, "VmRSS:").context("the daemon exited")?;
        peak = peak.max(last);
    }
    Ok(Figures {
        loaded,
        peak,
        last,
        hwm: status_kib(pid, "VmHWM:").unwrap_or(0),
        frames: metric(addr, "gatewayd_vision_frames_total")
            .await
            .unwrap_or(0.0)
            - frames0,
        dropped: metric(addr, "gatewayd_vision_frames_dropped_total")
            .await
            .unwrap_or(0.0)
            - dropped0,
    })
}
