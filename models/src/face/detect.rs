//! YuNet face detection: the frame is scaled to fit 640x640 (aspect kept) and
//! fed at that size, padded right/bottom only up to a multiple of 32 (the
//! fetch step made the model's input size symbolic: a 640x480 frame costs a
//! quarter less than the 640x640 the model was exported with). The strided
//! outputs are decoded here — OpenCV 4.6's own FaceDetectorYN cannot read the
//! 2023 model.
//!
//! Per stride s in 8, 16, 32 the model gives, for each cell (row r, column c):
//! `cls` and `obj` (already sigmoid), `bbox` (dx, dy, log w, log h in strides)
//! and `kps` (5 landmarks, dx, dy in strides). Score = sqrt(cls * obj).

use opencv::core::{Mat, Size, Vec3b};
use opencv::imgproc;
use opencv::prelude::*;
use ort::session::Session;
use ort::value::TensorRef;
use std::sync::Mutex;

use super::{Face, Point};
use crate::runtime::{self, RuntimeOptions};
use crate::ModelError;

/// The longest side a frame is scaled to (the model's training size).
pub const INPUT: i32 = 640;
/// The input's sides must be multiples of the coarsest stride.
const ALIGN: i32 = 32;
const STRIDES: [usize; 3] = [8, 16, 32];

/// Detection settings.
#[derive(Clone, Copy, Debug)]
pub struct DetectOptions {
    /// Minimum score sqrt(cls*obj) of a face.
    pub score_threshold: f32,
    /// Overlap (IoU) above which the weaker of two boxes is dropped.
    pub nms_iou: f32,
    /// At most this many faces per frame, best first.
    pub top_k: usize,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            score_threshold: 0.6,
            nms_iou: 0.3,
            top_k: 50,
        }
    }
}

/// A YuNet session and its reusable input buffer.
pub struct Detector {
    session: Mutex<(Session, Vec<f32>)>,
    pub options: DetectOptions,
}

impl Detector {
    pub const FILE: &'static str = "yunet.onnx";

    pub fn load(rt: &RuntimeOptions, options: DetectOptions) -> Result<Self, ModelError> {
        let session = runtime::session(rt, Self::FILE)?;
        Ok(Self {
            session: Mutex::new((session, Vec::with_capacity(3 * (INPUT * INPUT) as usize))),
            options,
        })
    }

    /// Finds the faces of a BGR image, best first, in the image's coordinates.
    pub fn detect(&self, image: &Mat) -> Result<Vec<Face>, ModelError> {
        let (w, h) = (image.cols(), image.rows());
        if w <= 0 || h <= 0 {
            return Ok(Vec::new());
        }
        let scale = (INPUT as f32 / w as f32).min(INPUT as f32 / h as f32);
        let (sw, sh) = (
            ((w as f32 * scale).round() as i32).clamp(1, INPUT),
            ((h as f32 * scale).round() as i32).clamp(1, INPUT),
        );
        let resized;
        let src = if sw == w && sh == h {
            image
        } else {
            let mut r = Mat::default();
            imgproc::resize(
                image,
                &mut r,
                Size::new(sw, sh),
                0.0,
                0.0,
                imgproc::INTER_LINEAR,
            )?;
            resized = r;
            &resized
        };
        let mut guard = self
            .session
            .lock()
            .map_err(|_| ModelError::Runtime("detector lock poisoned".into()))?;
        let (session, input) = &mut *guard;
        let up = |v: i32| ((v + ALIGN - 1) / ALIGN * ALIGN) as usize;
        let (iw, ih) = (up(sw), up(sh));
        fill_chw(src, input, iw, ih)?;
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
        let mut faces = nms(faces, self.options.nms_iou, self.options.top_k);
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
}

/// Writes a BGR image (at most `iw` x `ih`) into the CHW float input of that
/// size, zero-padded right and bottom.
fn fill_chw(src: &Mat, input: &mut Vec<f32>, iw: usize, ih: usize) -> Result<(), ModelError> {
    let plane = iw * ih;
    input.clear();
    input.resize(3 * plane, 0.0);
    let (w, h) = ((src.cols() as usize).min(iw), (src.rows() as usize).min(ih));
    for y in 0..h {
        let row = src.at_row::<Vec3b>(y as i32)?;
        let base = y * iw;
        for (x, px) in row.iter().enumerate().take(w) {
            input[base + x] = px[0] as f32;
            input[plane + base + x] = px[1] as f32;
            input[2 * plane + base + x] = px[2] as f32;
        }
    }
    Ok(())
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

fn iou(a: &Face, b: &Face) -> f32 {
    let x1 = a.x.max(b.x);
    let y1 = a.y.max(b.y);
    let x2 = (a.x + a.w).min(b.x + b.w);
    let y2 = (a.y + a.h).min(b.y + b.h);
    let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
    let union = a.w * a.h + b.w * b.h - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Greedy non-maximum suppression, best score first.
pub fn nms(mut faces: Vec<Face>, iou_max: f32, top_k: usize) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::new();
    for f in faces {
        if kept.len() >= top_k {
            break;
        }
        if kept.iter().all(|k| iou(k, &f) <= iou_max) {
            kept.push(f);
        }
    }
    kept
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
