//! Text regions with PP-OCR's DB detector: the frame is scaled (sides a
//! multiple of 32), the model gives a text probability map; regions above
//! 0.3 become rotated boxes, kept when their mean probability is high, grown
//! (DB's "unclip") and cut out level by a perspective warp.

use opencv::core::{Mat, Point, Point2f, Scalar, Size, Vector, CV_32F, CV_8U};
use opencv::imgproc;
use opencv::prelude::*;
use ort::session::Session;
use ort::value::TensorRef;
use std::sync::Mutex;

use crate::runtime::{self, RuntimeOptions};
use crate::ModelError;

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

pub struct TextDetector {
    session: Mutex<Session>,
    /// Longest side the frame is scaled to.
    pub max_side: i32,
    pub threshold: f32,
    pub box_threshold: f32,
    pub unclip: f32,
}

impl TextDetector {
    pub fn load(rt: &RuntimeOptions) -> Result<Self, ModelError> {
        Ok(Self {
            session: Mutex::new(runtime::session(rt, "ppocr_det.onnx")?),
            max_side: 960,
            threshold: 0.3,
            box_threshold: 0.5,
            unclip: 1.6,
        })
    }

    /// Text regions of a BGR frame: 4 corners each, in frame pixels.
    pub fn detect(&self, frame: &Mat) -> Result<Vec<[(f32, f32); 4]>, ModelError> {
        let (w0, h0) = (frame.cols(), frame.rows());
        if w0 < 8 || h0 < 8 {
            return Ok(Vec::new());
        }
        let k = (self.max_side as f32 / w0.max(h0) as f32).min(1.0);
        let round32 = |v: f32| (((v / 32.0).round() as i32) * 32).max(32);
        let (w, h) = (round32(w0 as f32 * k), round32(h0 as f32 * k));
        let mut resized = Mat::default();
        imgproc::resize(
            frame,
            &mut resized,
            Size::new(w, h),
            0.0,
            0.0,
            imgproc::INTER_LINEAR,
        )?;
        let (wu, hu) = (w as usize, h as usize);
        let plane = wu * hu;
        let mut input = vec![0f32; 3 * plane];
        crate::image::fill_chw(&resized, &mut input, (wu, hu), crate::image::BGR, |c, v| {
            (v as f32 / 255.0 - MEAN[c]) / STD[c]
        })?;
        let prob = {
            let mut session = self
                .session
                .lock()
                .map_err(|_| ModelError::Runtime("text detector lock poisoned".into()))?;
            let outputs = session.run(ort::inputs![TensorRef::from_array_view((
                [1usize, 3, hu, wu],
                &input[..]
            ))?])?;
            let (_, p) = outputs[0].try_extract_tensor::<f32>()?;
            p.to_vec()
        };
        if prob.len() != plane {
            return Err(ModelError::Runtime(format!(
                "text detector gave {} values for a {w}x{h} input",
                prob.len()
            )));
        }
        let mut probmap = Mat::new_rows_cols_with_default(h, w, CV_32F, Scalar::all(0.0))?;
        probmap.data_typed_mut::<f32>()?.copy_from_slice(&prob);
        let mut mask = Mat::new_rows_cols_with_default(h, w, CV_8U, Scalar::all(0.0))?;
        for (m, p) in mask.data_bytes_mut()?.iter_mut().zip(&prob) {
            *m = if *p > self.threshold { 255 } else { 0 };
        }
        let mut contours = Vector::<Vector<Point>>::new();
        imgproc::find_contours(
            &mask,
            &mut contours,
            imgproc::RETR_LIST,
            imgproc::CHAIN_APPROX_SIMPLE,
            Point::new(0, 0),
        )?;
        let (sx, sy) = (w0 as f32 / w as f32, h0 as f32 / h as f32);
        let mut out = Vec::new();
        for c in contours.iter().take(1000) {
            if c.len() < 4 {
                continue;
            }
            let rect = imgproc::min_area_rect(&c)?;
            let size = rect.size;
            if size.width.min(size.height) < 3.0 {
                continue;
            }
            let bbox = imgproc::bounding_rect(&c)?;
            let roi = Mat::roi(&probmap, bbox)?;
            let score = opencv::core::mean(&roi, &opencv::core::no_array())?[0] as f32;
            if score < self.box_threshold {
                continue;
            }
            // Unclip: grow by area * ratio / perimeter on every side.
            let area = size.width * size.height;
            let d = area * self.unclip / (2.0 * (size.width + size.height));
            let mut grown = rect;
            grown.size = opencv::core::Size2f::new(size.width + 2.0 * d, size.height + 2.0 * d);
            let mut pts = [Point2f::default(); 4];
            grown.points(&mut pts)?;
            out.push(order(pts.map(|p| (p.x * sx, p.y * sy))));
        }
        Ok(out)
    }
}

/// Corners as top-left, top-right, bottom-right, bottom-left.
fn order(p: [(f32, f32); 4]) -> [(f32, f32); 4] {
    let mut by_x = p;
    by_x.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (l, r) = (&by_x[..2], &by_x[2..]);
    let (tl, bl) = if l[0].1 <= l[1].1 {
        (l[0], l[1])
    } else {
        (l[1], l[0])
    };
    let (tr, br) = if r[0].1 <= r[1].1 {
        (r[0], r[1])
    } else {
        (r[1], r[0])
    };
    [tl, tr, br, bl]
}

/// Cuts a region out level (perspective warp to its own width and height).
pub fn crop(frame: &Mat, q: &[(f32, f32); 4]) -> Result<Mat, ModelError> {
    let dist = |a: (f32, f32), b: (f32, f32)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
    let w = dist(q[0], q[1]).max(dist(q[3], q[2])).round().max(1.0);
    let h = dist(q[0], q[3]).max(dist(q[1], q[2])).round().max(1.0);
    let out = super::rectify::warp(frame, q, w as i32, h as i32)?;
    // Vertical text lines are turned to read left to right.
    if out.rows() as f32 >= out.cols() as f32 * 1.5 {
        let mut r = Mat::default();
        opencv::core::rotate(&out, &mut r, opencv::core::ROTATE_90_COUNTERCLOCKWISE)?;
        return Ok(r);
    }
    Ok(out)
}
