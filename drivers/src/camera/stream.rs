//! One session with a video source, on a blocking thread: open, read every
//! frame (so a live stream's buffer never lags), hand one out every 1/fps
//! seconds, and return why the session ended.

use chrono::Utc;
use opencv::core::{Mat, Size, Vector};
use opencv::prelude::*;
use opencv::{imgproc, videoio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::config::{CameraConfig, Source};
use crate::driver::FrameSink;
use crate::event::{DeviceId, Frame};

fn open(cfg: &CameraConfig, source: &Source) -> Result<videoio::VideoCapture, String> {
    let t = cfg.timeout_ms as i32;
    let params = Vector::<i32>::from_slice(&[
        videoio::CAP_PROP_OPEN_TIMEOUT_MSEC,
        t,
        videoio::CAP_PROP_READ_TIMEOUT_MSEC,
        t,
    ]);
    let (name, api) = match source {
        Source::Url(u) => (u.clone(), videoio::CAP_FFMPEG),
        Source::File(p) => (p.display().to_string(), videoio::CAP_FFMPEG),
        Source::Device(d) => (d.clone(), videoio::CAP_V4L2),
    };
    let cap = videoio::VideoCapture::from_file_with_params(&name, api, &params)
        .map_err(|e| format!("cannot open {name}: {}", e.message))?;
    if !cap.is_opened().unwrap_or(false) {
        return Err(format!("cannot open {name}"));
    }
    Ok(cap)
}

/// Reads until the stream ends, shutdown, or an error; returns the reason.
pub fn session(
    cfg: &CameraConfig,
    source: &Source,
    id: &DeviceId,
    frames: &FrameSink,
    shutdown: &CancellationToken,
    online: tokio::sync::oneshot::Sender<String>,
) -> String {
    let mut cap = match open(cfg, source) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let is_file = matches!(source, Source::File(_));
    // A file is read as fast as the disk allows: pace it at its own frame rate.
    let file_period = if is_file {
        let fps = cap.get(videoio::CAP_PROP_FPS).unwrap_or(0.0);
        Duration::from_secs_f64(1.0 / if fps > 1.0 && fps < 240.0 { fps } else { 25.0 })
    } else {
        Duration::ZERO
    };
    let period = Duration::from_secs_f64(1.0 / cfg.fps.max(0.01) as f64);
    let mut online = Some(online);
    let mut last_offer: Option<Instant> = None;
    let mut frame = Mat::default();
    let mut scaled = Mat::default();
    let mut rewinds_without_frame = 0;
    loop {
        if shutdown.is_cancelled() {
            return "shutdown".into();
        }
        let read_at = Instant::now();
        let ok = cap.read(&mut frame).unwrap_or(false) && !frame.empty();
        if !ok {
            if is_file && rewinds_without_frame < 2 {
                // Replay: reopen (seeking back fails on one-frame files such as a JPEG).
                rewinds_without_frame += 1;
                match open(cfg, source) {
                    Ok(c) => cap = c,
                    Err(e) => return e,
                }
                continue;
            }
            return "the stream stopped sending frames".into();
        }
        rewinds_without_frame = 0;
        if let Some(tx) = online.take() {
            let _ = tx.send(format!(
                "{}x{} via {}",
                frame.cols(),
                frame.rows(),
                cap.get_backend_name().unwrap_or_default()
            ));
        }
        let due = last_offer.is_none_or(|t| t.elapsed() >= period);
        if due {
            last_offer = Some(Instant::now());
            let src = if frame.cols() as u32 > cfg.max_width {
                let k = cfg.max_width as f64 / frame.cols() as f64;
                if imgproc::resize(
                    &frame,
                    &mut scaled,
                    Size::new(0, 0),
                    k,
                    k,
                    imgproc::INTER_AREA,
                )
                .is_err()
                {
                    continue;
                }
                &scaled
            } else {
                &frame
            };
            if let Some(f) = to_frame(id, src) {
                frames.offer(f);
            }
        }
        if is_file {
            let spent = read_at.elapsed();
            if spent < file_period {
                std::thread::sleep(file_period - spent);
            }
        }
    }
}

fn to_frame(id: &DeviceId, m: &Mat) -> Option<Frame> {
    let m = if m.is_continuous() {
        m.clone()
    } else {
        m.try_clone().ok()?
    };
    let bytes = m.data_bytes().ok()?;
    if m.typ() != opencv::core::CV_8UC3 {
        return None;
    }
    Some(Frame {
        device: id.clone(),
        captured_at: Utc::now(),
        width: m.cols() as u32,
        height: m.rows() as u32,
        bgr: bytes::Bytes::copy_from_slice(bytes),
    })
}
