//! The face matcher: takes camera frames (dropped upstream when it falls
//! behind), runs the face pipeline, follows faces across frames and sends one
//! face read per pass to the engine, as an event of the camera that saw it.
//! The engine decides (thresholds, roster, schedules) and opens the door; the
//! read carries the frame, with the face outlined, as its snapshot.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use drivers::{
    Credential, CredentialKind, CredentialRead, DeviceEvent, DeviceId, EventBody, Frame,
};
use models::face::Face;
use models::opencv::core::{Mat, Rect, Scalar};
use models::opencv::imgproc;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::track::{Observation, Outcome, TrackRules, Tracker};
use super::LivenessMode;
use super::Vision;

/// The matcher's state across frames.
pub struct Matcher {
    rules: TrackRules,
    repeat_ms: i64,
    trackers: HashMap<DeviceId, Tracker>,
    /// The best frame of each open track (detector score, frame): the snapshot.
    frames: HashMap<(DeviceId, u64), (f32, Arc<Mat>)>,
    /// When each person was last decided at each camera.
    recent: HashMap<(DeviceId, Arc<str>), DateTime<Utc>>,
    /// When each plate was last read at each camera.
    recent_plates: HashMap<(DeviceId, String), DateTime<Utc>>,
    pub frames_seen: u64,
}

impl Matcher {
    pub fn new(vision: &Vision) -> Self {
        let c = &vision.cfg;
        let votes = c.votes.max(1) as usize;
        Self {
            rules: TrackRules {
                votes,
                patience: votes * 3,
                ttl_ms: 1500,
                liveness: c.liveness == LivenessMode::Motion,
            },
            repeat_ms: c.repeat_s as i64 * 1000,
            trackers: HashMap::new(),
            frames: HashMap::new(),
            recent: HashMap::new(),
            recent_plates: HashMap::new(),
            frames_seen: 0,
        }
    }

    /// Runs the pipeline on one frame; returns the face reads it completes.
    pub fn process(&mut self, vision: &Vision, frame: &Frame) -> Vec<DeviceEvent> {
        self.frames_seen += 1;
        vision
            .stats
            .frames
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mat = match models::image::mat_from_bgr(frame.width, frame.height, &frame.bgr) {
            Ok(m) => Arc::new(m),
            Err(e) => {
                tracing::warn!(device = %frame.device, "bad frame: {e}");
                return Vec::new();
            }
        };
        let analyzed = match vision.pipeline.analyze_all(&mat) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(device = %frame.device, "face pipeline: {e}");
                return Vec::new();
            }
        };
        let now = frame.captured_at;
        let tracker = self.trackers.entry(frame.device.clone()).or_default();
        tracker.expire(now, self.rules.ttl_ms);
        let live: Vec<u64> = tracker.tracks.iter().map(|t| t.id).collect();
        self.frames
            .retain(|(d, id), _| d != &frame.device || live.contains(id));
        self.recent
            .retain(|_, t| (now - *t).num_milliseconds() <= self.repeat_ms);

        let mut out = Vec::new();
        let mut taken = Vec::new();
        for a in analyzed {
            let hits = a
                .embedding
                .as_ref()
                .map(|e| vision.identify(e))
                .unwrap_or_default();
            let usable = a.issue.is_none();
            // Only a face that may be decided needs its frame kept for the
            // snapshot: a face too small to decide never is, and a crowd of
            // distant faces would otherwise pin a frame per face.
            let decidable = a.issue != Some(models::face::QualityIssue::TooSmall);
            let score = a.face.score;
            let i = tracker.observe(
                Observation {
                    at: now,
                    face: a.face,
                    issue: a.issue,
                    hits,
                },
                &mut taken,
            );
            let track = &mut tracker.tracks[i];
            let key = (frame.device.clone(), track.id);
            let better = decidable
                && self
                    .frames
                    .get(&key)
                    .is_none_or(|(s, _)| usable && score > *s);
            if better {
                self.frames.insert(key.clone(), (score, mat.clone()));
            }
            let Some(outcome) = track.decide(&self.rules) else {
                continue;
            };
            track.decided = true;
            let (person, similarity, best) = match outcome {
                Outcome::Identified {
                    person,
                    similarity,
                    best,
                } => {
                    let person = person.filter(|_| similarity >= vision.cfg.unknown_threshold);
                    (person, Some(similarity), best)
                }
                Outcome::Unusable { why, best } => {
                    tracing::info!(device = %frame.device, track = track.id, "no usable face: {why}");
                    (None, None, best)
                }
            };
            if let Some(p) = &person {
                let k = (frame.device.clone(), p.clone());
                if self.recent.contains_key(&k) {
                    continue; // decided at this camera moments ago: the same pass
                }
                self.recent.insert(k, now);
            }
            let face = track.obs[best].face.clone();
            let snapshot = self
                .frames
                .get(&key)
                .and_then(|(_, m)| snapshot(m, &face, vision.cfg.snapshot_quality));
            let mut read = CredentialRead::new(Credential {
                kind: CredentialKind::Face,
                value: person.map(|p| p.to_string()).unwrap_or_default(),
            });
            read.format = Some("face".into());
            read.similarity = similarity;
            read.snapshot = snapshot.map(Bytes::from);
            out.push(DeviceEvent {
                device: frame.device.clone(),
                at: now,
                body: EventBody::Credential(read),
                receipt: Default::default(),
            });
        }
        out
    }
}

impl Matcher {
    /// Reads the plates of a gate camera's frame: one plate read per vehicle
    /// pass (the same plate at the same camera waits `repeat_s`), with the frame
    /// as the snapshot. The engine decides it like a plate camera's push.
    pub fn plates(&mut self, vision: &Vision, frame: &Frame) -> Vec<DeviceEvent> {
        let Some((reader, cfg)) = &vision.plates else {
            return Vec::new();
        };
        vision
            .stats
            .frames
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = frame.captured_at;
        let repeat = cfg.repeat_s as i64 * 1000;
        self.recent_plates
            .retain(|_, t| (now - *t).num_milliseconds() <= repeat);
        let mat = match models::image::mat_from_bgr(frame.width, frame.height, &frame.bgr) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(device = %frame.device, "bad frame: {e}");
                return Vec::new();
            }
        };
        let normalize = |s: &str| drivers::credential::normalize_plate(s).ok();
        let reads = match reader.read_frame(&mat, &normalize) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(device = %frame.device, "plate reader: {e}");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for r in reads
            .into_iter()
            .filter(|r| r.confidence >= cfg.min_confidence)
        {
            let key = (frame.device.clone(), r.text.clone());
            if self.recent_plates.contains_key(&key) {
                continue;
            }
            self.recent_plates.insert(key, now);
            let mut read = CredentialRead::new(Credential {
                kind: CredentialKind::Plate,
                value: r.text,
            });
            read.format = Some("video".into());
            read.confidence = Some(r.confidence);
            read.snapshot = models::image::encode_jpeg(&mat, vision.cfg.snapshot_quality)
                .ok()
                .map(Bytes::from);
            out.push(DeviceEvent {
                device: frame.device.clone(),
                at: now,
                body: EventBody::Credential(read),
                receipt: Default::default(),
            });
        }
        out
    }
}

/// The frame with the face outlined, as JPEG.
fn snapshot(frame: &Mat, face: &Face, quality: i32) -> Option<Vec<u8>> {
    let mut m = frame.clone();
    let r = Rect::new(
        face.x.round() as i32,
        face.y.round() as i32,
        face.w.round() as i32,
        face.h.round() as i32,
    );
    let _ = imgproc::rectangle(
        &mut m,
        r,
        Scalar::new(0.0, 200.0, 0.0, 0.0),
        2,
        imgproc::LINE_8,
        0,
    );
    match models::image::encode_jpeg(&m, quality) {
        Ok(j) => Some(j),
        Err(e) => {
            tracing::warn!("snapshot: {e}");
            None
        }
    }
}

/// The matcher task: frames in, face reads out to the engine, until shutdown
/// or until every camera has stopped. The models run on one thread of their
/// own: they block for tens of milliseconds a frame, and one thread keeps one
/// malloc arena (the blocking pool's changing threads each grew their own).
pub async fn run(
    vision: Arc<Vision>,
    faces: bool,
    cameras: usize,
    frames: mpsc::Receiver<Frame>,
    events: mpsc::Sender<DeviceEvent>,
    shutdown: CancellationToken,
) {
    tracing::info!(cameras, "face matcher running");
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = shutdown.clone();
    let spawned = std::thread::Builder::new()
        .name("face-matcher".into())
        .spawn(move || {
            matcher_thread(&vision, faces, frames, &events, &stop);
            let _ = done_tx.send(());
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the face matcher thread: {e}");
        return;
    }
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = done_rx => {}
    }
}

fn matcher_thread(
    vision: &Vision,
    faces: bool,
    mut frames: mpsc::Receiver<Frame>,
    events: &mpsc::Sender<DeviceEvent>,
    shutdown: &CancellationToken,
) {
    let mut matcher = Matcher::new(vision);
    // Ends when every camera driver has stopped (the channel closes) or on shutdown.
    while let Some(frame) = frames.blocking_recv() {
        if shutdown.is_cancelled() {
            return;
        }
        let out = if vision
            .plates
            .as_ref()
            .is_some_and(|(_, p)| p.cameras.contains(&frame.device))
        {
            matcher.plates(vision, &frame)
        } else if faces {
            matcher.process(vision, &frame)
        } else {
            Vec::new()
        };
        for ev in out {
            if events.blocking_send(ev).is_err() {
                return;
            }
        }
    }
}
