//! The face pipeline: detect (YuNet) → refine the landmarks (a second, upright
//! look) → quality gates → align (ArcFace template) → embed (SFace). One
//! [`FacePipeline`] per process: its sessions are created once and shared by
//! the cameras and enrollment.

pub mod align;
pub mod detect;
pub mod embed;
pub mod quality;

use opencv::core::{Mat, Rect};
use opencv::prelude::*;
use serde::{Deserialize, Serialize};

pub use detect::{DetectOptions, Detector};
pub use embed::{cosine, normalize, Embedder, Embedding, DIM};
pub use quality::{Quality, QualityIssue, QualityOptions};

use crate::image::ImageError;
use crate::runtime::RuntimeOptions;
use crate::ModelError;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// A detected face: box, score and landmarks (image-left eye, image-right eye,
/// nose tip, image-left and image-right mouth corner), in image pixels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Face {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    pub score: f32,
    pub landmarks: [Point; 5],
}

impl Face {
    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    /// Left, top, right, bottom.
    pub fn bbox(&self) -> crate::boxes::Bbox {
        [self.x, self.y, self.x + self.w, self.y + self.h]
    }

    pub fn center(&self) -> Point {
        Point {
            x: self.x + self.w / 2.0,
            y: self.y + self.h / 2.0,
        }
    }

    /// The box grown by `margin` of its size on each side, clipped to the image.
    pub fn crop_rect(&self, margin: f32, width: i32, height: i32) -> Rect {
        let x0 = (self.x - self.w * margin).floor().max(0.0) as i32;
        let y0 = (self.y - self.h * margin).floor().max(0.0) as i32;
        let x1 = ((self.x + self.w * (1.0 + margin)).ceil() as i32).min(width);
        let y1 = ((self.y + self.h * (1.0 + margin)).ceil() as i32).min(height);
        Rect::new(x0, y0, (x1 - x0).max(1), (y1 - y0).max(1))
    }
}

/// One face, measured, and embedded when it passed the gates.
#[derive(Debug)]
pub struct Analyzed {
    pub face: Face,
    pub quality: Quality,
    /// Why the face is not usable; `None` when it is.
    pub issue: Option<QualityIssue>,
    /// The embedding, when the face is usable.
    pub embedding: Option<Embedding>,
    /// The aligned 112x112 crop (BGR).
    pub aligned: Mat,
}

/// Why a photo cannot be enrolled; `code()` is the error code of the API.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PhotoError {
    #[error("{0}")]
    NotAnImage(#[from] ImageError),
    #[error("no face found in the photo")]
    NoFace,
    #[error("{0} faces in the photo; exactly one is needed")]
    SeveralFaces(usize),
    #[error("the face is too small ({size:.0} px; at least {min:.0} px)")]
    TooSmall { size: f32, min: f32 },
    #[error("the face is too blurry (sharpness {sharpness:.0}; at least {min:.0})")]
    TooBlurry { sharpness: f32, min: f32 },
    #[error("the face is turned away from the camera (yaw {yaw:.2}, roll {roll:.0} degrees, pitch {pitch:.2})")]
    TurnedAway { yaw: f32, roll: f32, pitch: f32 },
    #[error("{0}")]
    Model(String),
}

impl PhotoError {
    pub fn code(&self) -> &'static str {
        match self {
            PhotoError::NotAnImage(_) => "not_an_image",
            PhotoError::NoFace => "no_face",
            PhotoError::SeveralFaces(_) => "several_faces",
            PhotoError::TooSmall { .. } => "too_small",
            PhotoError::TooBlurry { .. } => "too_blurry",
            PhotoError::TurnedAway { .. } => "turned_away",
            PhotoError::Model(_) => "internal",
        }
    }
}

impl From<ModelError> for PhotoError {
    fn from(e: ModelError) -> Self {
        PhotoError::Model(e.to_string())
    }
}

/// A face embedded from a photo, with the crop kept as evidence.
#[derive(Debug)]
pub struct PhotoFace {
    pub analyzed: Analyzed,
    /// How many faces the detector saw in all (tiny background faces included).
    pub faces_seen: usize,
}

/// Detector + embedder + gates.
pub struct FacePipeline {
    pub detector: Detector,
    pub embedder: Embedder,
    pub quality: QualityOptions,
}

impl FacePipeline {
    pub fn load(
        rt: &RuntimeOptions,
        detect: DetectOptions,
        quality: QualityOptions,
    ) -> Result<Self, ModelError> {
        Ok(Self {
            detector: Detector::load(rt, detect)?,
            embedder: Embedder::load(rt)?,
            quality,
        })
    }

    /// Faces of a BGR image, best score first.
    pub fn detect(&self, image: &Mat) -> Result<Vec<Face>, ModelError> {
        self.detector.detect(image)
    }

    /// Refines the landmarks of a face large enough to be used (a second,
    /// upright look: see [`Detector::refine`]; small background faces would
    /// each cost a detector run for nothing), aligns and measures it, and
    /// embeds it when it passes the gates (or always, with `force`, for tools
    /// that report the embedding anyway).
    pub fn analyze(&self, image: &Mat, face: Face, force: bool) -> Result<Analyzed, ModelError> {
        let face = if face.w.min(face.h) >= self.quality.min_face_px {
            self.detector.refine(image, &face)?
        } else {
            face
        };
        let aligned = align::align(image, &face.landmarks)?;
        let quality = quality::measure(&face, &aligned)?;
        let issue = quality.issue(&self.quality);
        let embedding = if issue.is_none() || force {
            Some(self.embedder.embed(&aligned)?)
        } else {
            None
        };
        Ok(Analyzed {
            face,
            quality,
            issue,
            embedding,
            aligned,
        })
    }

    /// Every face of a frame, analyzed, largest first.
    pub fn analyze_all(&self, image: &Mat) -> Result<Vec<Analyzed>, ModelError> {
        let mut faces = self.detect(image)?;
        faces.sort_by(|a, b| b.area().total_cmp(&a.area()));
        faces
            .into_iter()
            .map(|f| self.analyze(image, f, false))
            .collect()
    }

    /// The one face of an enrollment photo. Faces much smaller than the main one
    /// and below the size gate (people far behind) do not count as "several".
    pub fn photo(&self, bytes: &[u8]) -> Result<PhotoFace, PhotoError> {
        let image = crate::image::decode(bytes)?;
        self.photo_mat(&image)
    }

    pub fn photo_mat(&self, image: &Mat) -> Result<PhotoFace, PhotoError> {
        let mut faces = self.detect(image)?;
        faces.sort_by(|a, b| b.area().total_cmp(&a.area()));
        let seen = faces.len();
        let Some(main) = faces.first().cloned() else {
            return Err(PhotoError::NoFace);
        };
        let main_side = main.w.min(main.h);
        let rivals = faces
            .iter()
            .skip(1)
            .filter(|f| {
                let side = f.w.min(f.h);
                side >= self.quality.min_face_px || side >= main_side * 0.5
            })
            .count();
        if rivals > 0 {
            return Err(PhotoError::SeveralFaces(rivals + 1));
        }
        let analyzed = self.analyze(image, main, false)?;
        let q = analyzed.quality;
        match analyzed.issue {
            None => Ok(PhotoFace {
                analyzed,
                faces_seen: seen,
            }),
            Some(QualityIssue::TooSmall) => Err(PhotoError::TooSmall {
                size: q.size_px,
                min: self.quality.min_face_px,
            }),
            Some(QualityIssue::TooBlurry) => Err(PhotoError::TooBlurry {
                sharpness: q.sharpness,
                min: self.quality.min_sharpness,
            }),
            Some(QualityIssue::TurnedAway) => Err(PhotoError::TurnedAway {
                yaw: q.yaw,
                roll: q.roll_deg,
                pitch: q.pitch,
            }),
        }
    }
}

/// The JPEG of a face's surroundings (box plus a margin): the event snapshot.
pub fn face_snapshot(image: &Mat, face: &Face, quality: i32) -> Result<Vec<u8>, ModelError> {
    let rect = face.crop_rect(0.4, image.cols(), image.rows());
    let roi = Mat::roi(image, rect)?;
    crate::image::encode_jpeg(&roi, quality)
}
