//! `driver = "camera"`: an IP camera, webcam or video file read through
//! FFmpeg's libraries (RTSP, MJPEG over HTTP, files, V4L2 devices). Frames
//! are offered to the face matcher at `fps`; when the matcher is busy they are
//! dropped, never queued. A stream that stops is reported offline and reopened
//! with backoff; a file is replayed in a loop.
//!
//! - `config`: the keys (`url`, `fps`, `max_width`).
//! - [`decode`]: FFmpeg: open with a deadline, demux, decode, convert to BGR.
//! - `stream`: one session with the source: open, read, pace, hand out frames.

mod config;
pub mod decode;
mod stream;

pub use config::{CameraConfig, Source};

use std::time::{Duration, Instant};

use crate::backoff::{sleep_or_shutdown, Backoff};
use crate::driver::{BuildError, DriverContext, DriverTask};

impl CameraConfig {
    pub fn build(&self, ctx: DriverContext) -> Result<DriverTask, BuildError> {
        let source = self.source(&ctx.config_dir);
        let cfg = self.clone();
        Ok(Box::pin(run(cfg, source, ctx)))
    }
}

async fn run(cfg: CameraConfig, source: config::Source, mut ctx: DriverContext) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let (online_tx, online_rx) = tokio::sync::oneshot::channel::<String>();
        let session = {
            let source = source.clone();
            let frames = ctx.frames.clone();
            let shutdown = ctx.shutdown.clone();
            let id = ctx.id.clone();
            let cfg = cfg.clone();
            tokio::task::spawn_blocking(move || {
                stream::session(&cfg, &source, &id, &frames, &shutdown, online_tx)
            })
        };
        let started = Instant::now();
        let mut online_rx = Some(online_rx);
        let mut session = Some(session);
        let ended = loop {
            tokio::select! {
                detail = async { online_rx.as_mut().expect("polled only while set").await }, if online_rx.is_some() => {
                    online_rx = None;
                    if let Ok(detail) = detail {
                        ctx.events.set_online(Some(detail)).await;
                    }
                }
                // A camera has no outputs: the engine's feedback is noted and dropped.
                Some(action) = ctx.commands.recv() => {
                    tracing::debug!(device = %ctx.id, ?action, "camera ignores commands");
                }
                r = async { session.as_mut().expect("polled only while set").await } => {
                    session = None;
                    break match r {
                        Ok(reason) => reason,
                        Err(e) => format!("camera session failed: {e}"),
                    };
                }
            }
        };
        drop(session);
        if ctx.shutdown.is_cancelled() {
            return;
        }
        tracing::info!(device = %ctx.id, "camera stream ended: {ended}");
        ctx.events.set_offline(ended).await;
        if started.elapsed() > Duration::from_secs(10) {
            backoff.reset();
        }
        if !sleep_or_shutdown(&ctx.shutdown, backoff.next_delay()).await {
            return;
        }
    }
}
