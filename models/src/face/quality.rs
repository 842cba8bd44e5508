//! Quality gates: a face too small, blurred or turned away gives a reason
//! instead of an embedding that would match badly (or worse, match wrongly).

use opencv::core::{Mat, Vector};
use opencv::imgproc;
use serde::{Deserialize, Serialize};

use super::{Face, Point};
use crate::ModelError;

/// Limits of the gates.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityOptions {
    /// Smallest face accepted: the shorter side of its box, in pixels.
    pub min_face_px: f32,
    /// Sharpest blur accepted: variance of the Laplacian of the aligned grey crop.
    pub min_sharpness: f32,
    /// Largest head turn accepted, as the nose's offset from the eyes' middle
    /// divided by the eye distance (0 = frontal; about 0.5 at 45 degrees).
    pub max_yaw: f32,
    /// Largest head tilt (roll) accepted, in degrees.
    pub max_roll_deg: f32,
    /// Accepted range of the nose's height between the eyes (0) and mouth (1):
    /// outside it the head is nodding up or down too far.
    pub pitch_range: (f32, f32),
}

impl Default for QualityOptions {
    fn default() -> Self {
        Self {
            min_face_px: 60.0,
            min_sharpness: 50.0,
            max_yaw: 0.45,
            max_roll_deg: 30.0,
            pitch_range: (0.2, 0.8),
        }
    }
}

/// Why a face is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityIssue {
    TooSmall,
    TooBlurry,
    TurnedAway,
}

impl QualityIssue {
    pub fn code(self) -> &'static str {
        match self {
            QualityIssue::TooSmall => "too_small",
            QualityIssue::TooBlurry => "too_blurry",
            QualityIssue::TurnedAway => "turned_away",
        }
    }
}

/// What was measured of one face.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Quality {
    pub size_px: f32,
    pub sharpness: f32,
    pub yaw: f32,
    pub roll_deg: f32,
    pub pitch: f32,
}

impl Quality {
    /// The first gate that fails, if any.
    pub fn issue(&self, o: &QualityOptions) -> Option<QualityIssue> {
        if self.size_px < o.min_face_px {
            Some(QualityIssue::TooSmall)
        } else if self.yaw.abs() > o.max_yaw
            || self.roll_deg.abs() > o.max_roll_deg
            || self.pitch < o.pitch_range.0
            || self.pitch > o.pitch_range.1
        {
            Some(QualityIssue::TurnedAway)
        } else if self.sharpness < o.min_sharpness {
            Some(QualityIssue::TooBlurry)
        } else {
            None
        }
    }
}

/// Head pose from the landmarks: (yaw, roll in degrees, pitch).
pub fn pose(l: &[Point; 5]) -> (f32, f32, f32) {
    let (le, re, nose) = (l[0], l[1], l[2]);
    let mouth = Point {
        x: (l[3].x + l[4].x) / 2.0,
        y: (l[3].y + l[4].y) / 2.0,
    };
    let (dx, dy) = (re.x - le.x, re.y - le.y);
    let eye_dist = (dx * dx + dy * dy).sqrt().max(1e-3);
    let roll = dy.atan2(dx);
    // Measure in the face's own frame (undo the roll).
    let (c, s) = (roll.cos(), -roll.sin());
    let rot = |p: Point| Point {
        x: c * p.x - s * p.y,
        y: s * p.x + c * p.y,
    };
    let (le, re, nose, mouth) = (rot(le), rot(re), rot(nose), rot(mouth));
    let mid = Point {
        x: (le.x + re.x) / 2.0,
        y: (le.y + re.y) / 2.0,
    };
    let yaw = (nose.x - mid.x) / eye_dist;
    let span = (mouth.y - mid.y).abs().max(1e-3);
    let pitch = (nose.y - mid.y) / span;
    (yaw, roll.to_degrees(), pitch)
}

/// Variance of the Laplacian of a grey image: low when blurred.
pub fn sharpness(aligned_bgr: &Mat) -> Result<f32, ModelError> {
    let grey = crate::image::grey(aligned_bgr)?;
    let mut lap = Mat::default();
    imgproc::laplacian(
        &grey,
        &mut lap,
        opencv::core::CV_64F,
        1,
        1.0,
        0.0,
        opencv::core::BORDER_DEFAULT,
    )?;
    let mut mean = Vector::<f64>::new();
    let mut std = Vector::<f64>::new();
    opencv::core::mean_std_dev(&lap, &mut mean, &mut std, &opencv::core::no_array())?;
    let sd = std.get(0).unwrap_or(0.0);
    Ok((sd * sd) as f32)
}

/// Measures a face given its aligned crop.
pub fn measure(face: &Face, aligned: &Mat) -> Result<Quality, ModelError> {
    let (yaw, roll_deg, pitch) = pose(&face.landmarks);
    Ok(Quality {
        size_px: face.w.min(face.h),
        sharpness: sharpness(aligned)?,
        yaw,
        roll_deg,
        pitch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::align::TEMPLATE;

    #[test]
    fn the_template_is_frontal() {
        let (yaw, roll, pitch) = pose(&TEMPLATE);
        assert!(yaw.abs() < 0.05, "{yaw}");
        assert!(roll.abs() < 1.0, "{roll}");
        assert!((0.4..0.6).contains(&pitch), "{pitch}");
        // The nose moved towards one eye: a turned head.
        let mut turned = TEMPLATE;
        turned[2].x = TEMPLATE[1].x;
        assert!(pose(&turned).0 > 0.45);
    }
}
