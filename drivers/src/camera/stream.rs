//! One session with a video source, on a blocking thread: open, decode every
//! frame (so a live stream's buffer never lags), convert and hand out one
//! every 1/fps seconds, and return why the session ended.

use chrono::Utc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::config::{CameraConfig, Source};
use super::decode::VideoInput;
use crate::driver::FrameSink;
use crate::event::{DeviceId, Frame};

/// A frame this early still counts as due: frames arrive with jitter, and one
/// that comes a hair before its time would otherwise wait a whole frame
/// interval (a 10 fps source offered at 5 fps would give 3.3).
const PACE_SLACK: Duration = Duration::from_millis(15);

/// Reads until the stream ends, shutdown, or an error; returns the reason.
pub fn session(
    cfg: &CameraConfig,
    source: &Source,
    id: &DeviceId,
    frames: &FrameSink,
    shutdown: &CancellationToken,
    online: tokio::sync::oneshot::Sender<String>,
) -> String {
    let timeout = Duration::from_millis(cfg.timeout_ms as u64);
    let open = || VideoInput::open(source, timeout, shutdown.clone());
    let mut video = match open() {
        Ok(v) => v,
        Err(e) => return e.to_string(),
    };
    let is_file = matches!(source, Source::File(_));
    // A file is read as fast as the disk allows: pace it at its own frame rate.
    let file_period = if is_file {
        Duration::from_secs_f64(1.0 / video.frame_rate().unwrap_or(25.0))
    } else {
        Duration::ZERO
    };
    let period = Duration::from_secs_f64(1.0 / cfg.fps.max(0.01) as f64);
    let mut online = Some(online);
    let mut last_offer: Option<Instant> = None;
    let mut rewinds_without_frame = 0;
    loop {
        if shutdown.is_cancelled() {
            return "shutdown".into();
        }
        let read_at = Instant::now();
        match video.advance() {
            Ok(true) => {}
            Ok(false) if is_file && rewinds_without_frame < 2 => {
                // Replay: reopen (seeking back fails on one-frame files such as a JPEG).
                rewinds_without_frame += 1;
                match open() {
                    Ok(v) => video = v,
                    Err(e) => return e.to_string(),
                }
                continue;
            }
            Ok(false) => return "the stream stopped sending frames".into(),
            Err(e) => return e.to_string(),
        }
        rewinds_without_frame = 0;
        // The first frame is always due: it also tells that the camera is online.
        let due = last_offer.is_none_or(|t| t.elapsed() + PACE_SLACK >= period);
        if due {
            let picture = match video.picture(cfg.max_width) {
                Ok(p) => p,
                Err(e) => return e.to_string(),
            };
            if let Some(tx) = online.take() {
                let _ = tx.send(format!(
                    "{}x{} via FFmpeg ({})",
                    picture.width,
                    picture.height,
                    video.label()
                ));
            }
            last_offer = Some(Instant::now());
            frames.offer(Frame {
                device: id.clone(),
                captured_at: Utc::now(),
                width: picture.width,
                height: picture.height,
                bgr: bytes::Bytes::from(picture.data),
            });
        }
        if is_file {
            let spent = read_at.elapsed();
            if spent < file_period {
                std::thread::sleep(file_period - spent);
            }
        }
    }
}
