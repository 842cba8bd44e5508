//! YuNet face detection. The first pass finds the faces: the frame is scaled
//! to fit 640x640 (aspect kept), and no larger than needed to show the
//! smallest usable face at [`FIRST_PASS_FACE_PX`] (a 640x480 door camera is
//! searched at 352x256), and fed at that size, padded right/bottom only up to
//! a multiple of 32 (the fetch step made the model's input size symbolic; a
//! model file with the fixed size is padded to 640x640). The strided outputs
//! are decoded here — OpenCV 4.6's own FaceDetectorYN cannot read the 2023
//! model.
//!
//! [`Detector::refine`] then re-measures one face's landmarks: the face is
//! warped upright, centred and at a set size (see [`REFINE_SCALE`]) and detected
//! again. YuNet places the landmarks of a large or rolled face loosely, and
//! those of the coarse first pass roughly; the second look at a set size lifts
//! LFW TAR at FAR 1e-3 from 98.55% (one pass at 640) to 99.2%, and with the
//! coarse first pass the two passes together cost less than the one did.
//!
//! Per stride s in 8, 16, 32 the model gives, for each cell (row r, column c):
//! `cls` and `obj` (already sigmoid), `bbox` (dx, dy, log w, log h in strides)
//! and `kps` (5 landmarks, dx, dy in strides). Score = sqrt(cls * obj).

use opencv::core::{Mat, Size};
use opencv::imgproc;
use opencv::prelude::*;
use ort::session::Session;
use ort::value::TensorRef;
use std::sync::Mutex;

use super::{align, Face, Point};
use crate::boxes;
use crate::runtime::{self, RuntimeOptions};
use crate::ModelError;

/// The longest side a frame is scaled to (the model's training size).
pub const INPUT: i32 = 640;
/// With a free input size, the input's sides are multiples of the coarsest stride.
const ALIGN: i32 = 32;
/// The size at which the first pass sees the smallest face worth finding
/// ([`DetectOptions::min_face_px`]): YuNet finds faces of 10-20 px reliably,
/// and the landmarks that matter come from [`Detector::refine`], so the first
/// pass need not see faces larger than this.
pub const FIRST_PASS_FACE_PX: f32 = 32.0;
const STRIDES: [usize; 3] = [8, 16, 32];

/// Size of the face in the refinement canvas: the ArcFace 112x112 template
/// scaled by this (about 200 px from brow to chin). Measured on LFW, 1.5-2.5
/// all gave the same gain; at 1.0 (face ~100 px) most of it was lost.
pub const REFINE_SCALE: f32 = 2.0;
/// The refinement canvas when the model takes any input size: the face at
/// [`REFINE_SCALE`] fits with a margin, at about a quarter of the cost of 640.
/// A model fixed at 640x640 refines on a 640 canvas.
pub const REFINE_SIDE: i32 = 320;
/// At most this many looks per refinement: one is enough for a face within
/// ~30 degrees of upright; a face turned 50 degrees in the picture needs two.
pub const REFINE_LOOKS: usize = 3;
/// Landmarks that moved less than this (in eye distances) in a look have
/// settled. The coarse first pass leaves them ~0.1 off, which one look fixes;
/// a face turned far from upright moves more (0.27 at 50 degrees) and gets
/// another look. Measured on LFW with 0.1 instead: a second look for 11% of
/// the faces for no gain in TAR (99.10% against 99.20%).
pub const REFINE_SETTLED: f32 = 0.2;

/// Detection settings.
#[derive(Clone, Copy, Debug)]
pub struct DetectOptions {
    /// Minimum score sqrt(cls*obj) of a face.
    pub score_threshold: f32,
    /// Overlap (IoU) above which the weaker of two boxes is dropped.
    pub nms_iou: f32,
    /// At most this many faces per frame, best first.
    pub top_k: usize,
    /// The smallest face (shorter box side, image pixels) that must be found:
    /// with a model of free input size the first pass runs at the scale that
    /// shows such a face at [`FIRST_PASS_FACE_PX`] (never above 640x640), and
    /// smaller faces may be missed. The quality gate's size is the natural value.
    pub min_face_px: f32,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            score_threshold: 0.6,
            nms_iou: 0.3,
            top_k: 50,
            min_face_px: 60.0,
        }
    }
}

/// A YuNet session and its reusable input buffer.
pub struct Detector {
    session: Mutex<(Session, Vec<f32>)>,
    pub options: DetectOptions,
    /// The model takes any input size (multiples of 32), not only 640x640.
    free_size: bool,
    /// The side of the refinement canvas: [`REFINE_SIDE`] when the model's
    /// input size is free, else [`INPUT`].
    refine_side: i32,
}

impl Detector {
    pub const FILE: &'static str = "yunet.onnx";

    pub fn load(rt: &RuntimeOptions, options: DetectOptions) -> Result<Self, ModelError> {
        let session = runtime::session(rt, Self::FILE)?;
        let free_size = session
            .inputs()
            .first()
            .and_then(|i| i.dtype().tensor_shape())
            .is_some_and(|s| s.len() == 4 && s[2] < 0 && s[3] < 0);
        Ok(Self {
            session: Mutex::new((session, vec![0f32; 3 * (INPUT * INPUT) as usize])),
            options,
            free_size,
            refine_side: if free_size { REFINE_SIDE } else { INPUT },
        })
    }

    /// Finds the faces of a BGR image, best first, in the image's coordinates.
    pub fn detect(&self, image: &Mat) -> Result<Vec<Face>, ModelError> {
        let (w, h) = (image.cols(), image.rows());
        if w <= 0 || h <= 0 {
            return Ok(Vec::new());
        }
        let fit = (INPUT as f32 / w as f32).min(INPUT as f32 / h as f32);
        // A fixed-size model pads to 640x640 anyway: a smaller image would save nothing.
        let scale = if self.free_size && self.options.min_face_px > 0.0 {
            fit.min(FIRST_PASS_FACE_PX / self.options.min_face_px)
        } else {
            fit
        };
        let (sw, sh) = (
            ((w as f32 * scale).round() as i32).clamp(1, INPUT),
            ((h as f32 * scale).round() as i32).clamp(1, INPUT),
        );
        let resized;
        let src = if sw == w && sh == h {
            image
        } else {
            let mut r = Mat::default();
            // Area averaging when shrinking: no aliasing of fine detail.
            let interpolation = if scale < 1.0 {
                imgproc::INTER_AREA
            } else {
                imgproc::INTER_LINEAR
            };
            imgproc::resize(image, &mut r, Size::new(sw, sh), 0.0, 0.0, interpolation)?;
            resized = r;
            &resized
        };
        let mut faces = self.run(src)?;
        let inv = 1.0 / scale;
        for f in &mut faces {
            f.x *= inv;
            f.y *= inv;
            f.w *= inv;
            f.h *= inv;
            for p in &mut f.landmarks {
                p.x *= inv;
                p.y *= inv;
            }
        }
        Ok(faces)
    }

    /// Re-measures the landmarks of `face` (found in `image` by [`Self::detect`]):
    /// the face is warped upright and centred at [`REFINE_SCALE`] times the
    /// ArcFace template into a square canvas and detected again; the face found
    /// nearest the canvas centre gives the landmarks, mapped back into the image.
    /// A face that was far from upright (the landmarks moved by more than
    /// [`REFINE_SETTLED`]) gets another look, up to [`REFINE_LOOKS`] in all.
    /// Box and score stay those of the first look. When a look finds nothing
    /// where the face was put, the landmarks stay as they were.
    pub fn refine(&self, image: &Mat, face: &Face) -> Result<Face, ModelError> {
        let mut out = face.clone();
        for _ in 0..REFINE_LOOKS {
            let Some(landmarks) = self.look_again(image, &out.landmarks)? else {
                break;
            };
            let moved = landmark_shift(&out.landmarks, &landmarks);
            out.landmarks = landmarks;
            if moved < REFINE_SETTLED {
                break;
            }
        }
        Ok(out)
    }

    /// One upright look at the face with these landmarks (see [`Self::refine`]).
    fn look_again(
        &self,
        image: &Mat,
        landmarks: &[Point; 5],
    ) -> Result<Option<[Point; 5]>, ModelError> {
        let side = self.refine_side;
        let half = side as f32 / 2.0;
        let mid = align::SIDE as f32 / 2.0;
        let target = align::TEMPLATE.map(|p| Point {
            x: (p.x - mid) * REFINE_SCALE + half,
            y: (p.y - mid) * REFINE_SCALE + half,
        });
        let m = align::similarity(landmarks, &target);
        let Some(back) = align::invert(&m) else {
            return Ok(None);
        };
        let canvas = align::warp(image, &m, side)?;
        let found = self.run(&canvas)?;
        let dist = |f: &Face| {
            let c = f.center();
            (c.x - half).powi(2) + (c.y - half).powi(2)
        };
        // The face must be where it was put: its centre within a quarter of the
        // scaled template's side of the canvas centre.
        let reach = (mid * REFINE_SCALE / 2.0).powi(2);
        Ok(found
            .iter()
            .filter(|f| dist(f) <= reach)
            .min_by(|a, b| dist(a).total_cmp(&dist(b)))
            .map(|f| f.landmarks.map(|p| align::apply(&back, p))))
    }

    /// Runs the model on a BGR image of at most 640x640 and decodes the faces,
    /// in that image's pixels. The input is the image zero-padded right and
    /// bottom: to multiples of 32 when the model takes any size, else to 640x640.
    fn run(&self, src: &Mat) -> Result<Vec<Face>, ModelError> {
        let (iw, ih) = if self.free_size {
            let up = |v: i32| ((v.clamp(1, INPUT) + ALIGN - 1) / ALIGN * ALIGN) as usize;
            (up(src.cols()), up(src.rows()))
        } else {
            (INPUT as usize, INPUT as usize)
        };
        let mut guard = self
            .session
            .lock()
            .map_err(|_| ModelError::Runtime("detector lock poisoned".into()))?;
        let (session, buffer) = &mut *guard;
        let n = 3 * iw * ih;
        if buffer.len() < n {
            buffer.resize(n, 0.0);
        }
        let input = &mut buffer[..n];
        crate::image::fill_chw(src, input, (iw, ih), crate::image::BGR, |_, v| v as f32)?;
        let outputs = session.run(ort::inputs![
            "input" => TensorRef::from_array_view(([1usize, 3, ih, iw], &input[..]))?
        ])?;
        let mut faces = Vec::new();
        for stride in STRIDES {
            let get = |name: String| -> Result<&[f32], ModelError> {
                let v = outputs
                    .get(&name)
                    .ok_or_else(|| ModelError::Runtime(format!("YuNet has no output {name}")))?;
                Ok(v.try_extract_tensor::<f32>()?.1)
            };
            let cls = get(format!("cls_{stride}"))?;
            let obj = get(format!("obj_{stride}"))?;
            let bbox = get(format!("bbox_{stride}"))?;
            let kps = get(format!("kps_{stride}"))?;
            decode_stride(
                stride,
                iw / stride,
                cls,
                obj,
                bbox,
                kps,
                self.options.score_threshold,
                &mut faces,
            );
        }
        drop(outputs);
        drop(guard);
        Ok(nms(faces, self.options.nms_iou, self.options.top_k))
    }
}

/// Mean distance between two landmark sets, in eye distances of `a`.
fn landmark_shift(a: &[Point; 5], b: &[Point; 5]) -> f32 {
    let eyes = ((a[1].x - a[0].x).powi(2) + (a[1].y - a[0].y).powi(2)).sqrt();
    let sum: f32 = a
        .iter()
        .zip(b)
        .map(|(p, q)| ((p.x - q.x).powi(2) + (p.y - q.y).powi(2)).sqrt())
        .sum();
    sum / 5.0 / eyes.max(1e-3)
}

/// Decodes one stride's outputs; `cols` is the input width / stride.
#[allow(clippy::too_many_arguments)]
fn decode_stride(
    stride: usize,
    cols: usize,
    cls: &[f32],
    obj: &[f32],
    bbox: &[f32],
    kps: &[f32],
    threshold: f32,
    out: &mut Vec<Face>,
) {
    let cols = cols.max(1);
    let n = cls
        .len()
        .min(obj.len())
        .min(bbox.len() / 4)
        .min(kps.len() / 10);
    let s = stride as f32;
    for i in 0..n {
        let score = (cls[i].clamp(0.0, 1.0) * obj[i].clamp(0.0, 1.0)).sqrt();
        if score < threshold {
            continue;
        }
        let (r, c) = ((i / cols) as f32, (i % cols) as f32);
        let b = &bbox[i * 4..i * 4 + 4];
        let cx = (c + b[0]) * s;
        let cy = (r + b[1]) * s;
        let w = b[2].exp() * s;
        let h = b[3].exp() * s;
        let k = &kps[i * 10..i * 10 + 10];
        let mut landmarks = [Point::default(); 5];
        for (j, p) in landmarks.iter_mut().enumerate() {
            *p = Point {
                x: (c + k[2 * j]) * s,
                y: (r + k[2 * j + 1]) * s,
            };
        }
        out.push(Face {
            x: cx - w / 2.0,
            y: cy - h / 2.0,
            w,
            h,
            score,
            landmarks,
        });
    }
}

/// Greedy non-maximum suppression of faces, best score first.
pub fn nms(faces: Vec<Face>, iou_max: f32, top_k: usize) -> Vec<Face> {
    boxes::nms(faces, iou_max, top_k, |f| f.score, Face::bbox)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, score: f32) -> Face {
        Face {
            x,
            y: 0.0,
            w: 10.0,
            h: 10.0,
            score,
            landmarks: [Point::default(); 5],
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let kept = nms(
            vec![face(0.0, 0.7), face(1.0, 0.9), face(50.0, 0.8)],
            0.3,
            10,
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].x, 50.0);
    }

    #[test]
    fn refine_finds_the_landmarks_of_a_rolled_face() {
        let dir = crate::runtime::default_models_dir();
        let bytes = std::fs::read(dir.join("testdata/obama.jpg"))
            .expect("testdata/obama.jpg: run `bash deploy/dev.sh setup` first");
        let img = crate::image::decode(&bytes).expect("decodes");
        let d = Detector::load(&RuntimeOptions::default(), DetectOptions::default())
            .expect("YuNet loads (run `bash deploy/dev.sh setup`)");
        let face = d.detect(&img).expect("runs").remove(0);
        // Upright and frontal: the second look agrees with the first.
        let upright = d.refine(&img, &face).expect("runs");
        assert_eq!((upright.x, upright.score), (face.x, face.score));
        let moved = landmark_shift(&face.landmarks, &upright.landmarks);
        assert!(moved < 0.1, "moved by {moved} eye distances");
        // The photo turned by 50 degrees about the face: the landmarks the
        // refinement finds are those of the upright face, turned.
        let (c, s) = (50f64.to_radians().cos(), 50f64.to_radians().sin());
        let side = img.cols().max(img.rows()) + 200;
        let fc = face.center();
        let (cx, cy) = (fc.x as f64, fc.y as f64);
        let half = side as f64 / 2.0;
        let turn = [
            c,
            -s,
            half - (c * cx - s * cy),
            s,
            c,
            half - (s * cx + c * cy),
        ];
        let turned = align::warp(&img, &turn, side).expect("warps");
        let truth = upright.landmarks.map(|p| align::apply(&turn, p));
        let first = d
            .detect(&turned)
            .expect("runs")
            .into_iter()
            .min_by(|a, b| {
                let da =
                    (a.center().x as f64 - half).powi(2) + (a.center().y as f64 - half).powi(2);
                let db =
                    (b.center().x as f64 - half).powi(2) + (b.center().y as f64 - half).powi(2);
                da.total_cmp(&db)
            })
            .expect("the turned face is found");
        let refined = d.refine(&turned, &first).expect("runs");
        let (e1, e2) = (
            landmark_shift(&truth, &first.landmarks),
            landmark_shift(&truth, &refined.landmarks),
        );
        eprintln!("turned face: first look off by {e1:.3}, refined {e2:.3} eye distances");
        assert!(e2 < 0.05, "refined landmarks off by {e2} eye distances");
    }

    #[test]
    fn decodes_a_cell_in_strides() {
        // One cell of stride 32, row 1 column 2, centred in the cell, 2 strides wide.
        let cols = 640 / 32;
        let i = cols + 2;
        let mut cls = vec![0f32; 400];
        let mut obj = vec![0f32; 400];
        let mut bbox = vec![0f32; 1600];
        let kps = vec![0.5f32; 4000];
        cls[i] = 0.81;
        obj[i] = 1.0;
        bbox[i * 4..i * 4 + 4].copy_from_slice(&[0.5, 0.5, 2f32.ln(), 2f32.ln()]);
        let mut out = Vec::new();
        decode_stride(32, cols, &cls, &obj, &bbox, &kps, 0.5, &mut out);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert!((f.score - 0.9).abs() < 1e-6);
        assert!((f.x - (2.5 * 32.0 - 32.0)).abs() < 1e-4);
        assert!((f.w - 64.0).abs() < 1e-3);
        assert!((f.landmarks[0].x - 80.0).abs() < 1e-4);
    }
}
