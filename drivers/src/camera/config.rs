//! The camera's keys in `[[devices]]`.

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::driver::ConfigProblem;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// `rtsp://…`, `http://…` (MJPEG), `v4l2:0` or `/dev/video0`, or a video file
    /// (relative to the config file; replayed in a loop).
    pub url: String,
    /// Frames per second offered to the face matcher (the stream may be faster).
    #[serde(default = "default_fps")]
    pub fps: f32,
    /// Wider frames are scaled down to this width first (faces stay large enough,
    /// detection stays fast).
    #[serde(default = "default_max_width")]
    pub max_width: u32,
    /// How long opening, or waiting for the next packet, may stall before the
    /// stream counts as down, in ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u32,
}

fn default_fps() -> f32 {
    5.0
}
fn default_max_width() -> u32 {
    1280
}
fn default_timeout_ms() -> u32 {
    10_000
}

/// Where frames come from, as FFmpeg opens it.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A network stream (FFmpeg).
    Url(String),
    /// A local capture device (V4L2, through libavdevice).
    Device(String),
    /// A video file, replayed in a loop.
    File(PathBuf),
}

impl CameraConfig {
    pub fn source(&self, config_dir: &Path) -> Source {
        let u = self.url.trim();
        if let Some(n) = u.strip_prefix("v4l2:") {
            Source::Device(format!("/dev/video{n}"))
        } else if u.starts_with("/dev/video") {
            Source::Device(u.to_owned())
        } else if u.contains("://") {
            Source::Url(u.to_owned())
        } else {
            let p = Path::new(u);
            Source::File(if p.is_absolute() {
                p.to_owned()
            } else {
                config_dir.join(p)
            })
        }
    }

    pub fn validate(&self, config_dir: &Path) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if self.url.trim().is_empty() {
            out.push(ConfigProblem::new("url", "must not be empty"));
        }
        if !(self.fps > 0.0 && self.fps <= 30.0) {
            out.push(ConfigProblem::new(
                "fps",
                format!("{} must be above 0 and at most 30", self.fps),
            ));
        }
        if self.timeout_ms < 1000 {
            out.push(ConfigProblem::new("timeout_ms", "must be at least 1000"));
        }
        if self.max_width < 160 {
            out.push(ConfigProblem::new("max_width", "must be at least 160"));
        }
        if let Source::File(p) = self.source(config_dir) {
            if !p.is_file() {
                out.push(ConfigProblem::new(
                    "url",
                    format!(
                        "{} is not a file (nor rtsp://, http://, v4l2:N)",
                        p.display()
                    ),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> CameraConfig {
        CameraConfig {
            url: url.into(),
            fps: 5.0,
            max_width: 1280,
            timeout_ms: 10_000,
        }
    }

    #[test]
    fn sources_by_url() {
        let d = Path::new("/etc/gw");
        assert_eq!(
            cfg("rtsp://cam/1").source(d),
            Source::Url("rtsp://cam/1".into())
        );
        assert_eq!(
            cfg("v4l2:2").source(d),
            Source::Device("/dev/video2".into())
        );
        assert_eq!(
            cfg("clip.mp4").source(d),
            Source::File("/etc/gw/clip.mp4".into())
        );
        let problems = cfg("missing.mp4").validate(d);
        assert_eq!(problems[0].key, "url");
        let mut c = cfg("rtsp://x");
        c.fps = 0.0;
        assert_eq!(c.validate(d)[0].key, "fps");
    }
}
