//! Similarity alignment of a face to the ArcFace 112x112 template, from its 5
//! landmarks (least squares, no reflection): what SFace was trained on.

use opencv::core::{Mat, Scalar, Size, CV_64F};
use opencv::imgproc;
use opencv::prelude::*;

use super::Point;
use crate::ModelError;

/// The side of the aligned crop.
pub const SIDE: i32 = 112;

/// Where the eyes, nose tip and mouth corners belong in the 112x112 crop
/// (image-left eye first, as YuNet orders its landmarks).
pub const TEMPLATE: [Point; 5] = [
    Point {
        x: 38.2946,
        y: 51.6963,
    },
    Point {
        x: 73.5318,
        y: 51.5014,
    },
    Point {
        x: 56.0252,
        y: 71.7366,
    },
    Point {
        x: 41.5493,
        y: 92.3655,
    },
    Point {
        x: 70.7299,
        y: 92.2041,
    },
];

/// The 2x3 similarity [a -b tx; b a ty] that maps `src` onto `dst` best.
pub fn similarity(src: &[Point; 5], dst: &[Point; 5]) -> [f64; 6] {
    let n = src.len() as f64;
    let mean = |p: &[Point; 5]| {
        let (sx, sy) = p
            .iter()
            .fold((0f64, 0f64), |(x, y), q| (x + q.x as f64, y + q.y as f64));
        (sx / n, sy / n)
    };
    let (smx, smy) = mean(src);
    let (dmx, dmy) = mean(dst);
    let (mut num_a, mut num_b, mut den) = (0f64, 0f64, 0f64);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s.x as f64 - smx, s.y as f64 - smy);
        let (dx, dy) = (d.x as f64 - dmx, d.y as f64 - dmy);
        num_a += sx * dx + sy * dy;
        num_b += sx * dy - sy * dx;
        den += sx * sx + sy * sy;
    }
    if den <= f64::EPSILON {
        return [1.0, 0.0, dmx - smx, 0.0, 1.0, dmy - smy];
    }
    let a = num_a / den;
    let b = num_b / den;
    let tx = dmx - (a * smx - b * smy);
    let ty = dmy - (b * smx + a * smy);
    [a, -b, tx, b, a, ty]
}

/// The inverse of a similarity from [`similarity`] (`None` when degenerate).
pub fn invert(m: &[f64; 6]) -> Option<[f64; 6]> {
    let (a, b) = (m[0], m[3]);
    let det = a * a + b * b;
    if det <= f64::EPSILON {
        return None;
    }
    let (ia, ib) = (a / det, -b / det);
    let (tx, ty) = (m[2], m[5]);
    Some([ia, -ib, -(ia * tx - ib * ty), ib, ia, -(ib * tx + ia * ty)])
}

/// Where a 2x3 transform puts a point.
pub fn apply(m: &[f64; 6], p: Point) -> Point {
    let (x, y) = (p.x as f64, p.y as f64);
    Point {
        x: (m[0] * x + m[1] * y + m[2]) as f32,
        y: (m[3] * x + m[4] * y + m[5]) as f32,
    }
}

/// Warps an image by a 2x3 transform into a `side` x `side` picture (bilinear,
/// black outside the image).
pub fn warp(image: &Mat, m: &[f64; 6], side: i32) -> Result<Mat, ModelError> {
    let mut affine = Mat::new_rows_cols_with_default(2, 3, CV_64F, Scalar::all(0.0))?;
    for (i, v) in m.iter().enumerate() {
        *affine.at_2d_mut::<f64>((i / 3) as i32, (i % 3) as i32)? = *v;
    }
    let mut out = Mat::default();
    imgproc::warp_affine(
        image,
        &mut out,
        &affine,
        Size::new(side, side),
        imgproc::INTER_LINEAR,
        opencv::core::BORDER_CONSTANT,
        Scalar::all(0.0),
    )?;
    Ok(out)
}

/// Warps the face into the 112x112 template crop (BGR).
pub fn align(image: &Mat, landmarks: &[Point; 5]) -> Result<Mat, ModelError> {
    warp(image, &similarity(landmarks, &TEMPLATE), SIDE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_similarity() {
        // Template scaled by 2, rotated 30 degrees, shifted: the inverse must map back.
        let (c, s) = (30f32.to_radians().cos(), 30f32.to_radians().sin());
        let src = TEMPLATE.map(|p| Point {
            x: 2.0 * (c * p.x - s * p.y) + 100.0,
            y: 2.0 * (s * p.x + c * p.y) + 40.0,
        });
        let m = similarity(&src, &TEMPLATE);
        for (p, t) in src.iter().zip(TEMPLATE.iter()) {
            let x = m[0] * p.x as f64 + m[1] * p.y as f64 + m[2];
            let y = m[3] * p.x as f64 + m[4] * p.y as f64 + m[5];
            assert!((x - t.x as f64).abs() < 1e-3 && (y - t.y as f64).abs() < 1e-3);
        }
        // And the inverse maps the template back onto the face.
        let inv = invert(&m).expect("not degenerate");
        for (p, t) in src.iter().zip(TEMPLATE.iter()) {
            let q = apply(&inv, *t);
            assert!((q.x - p.x).abs() < 1e-3 && (q.y - p.y).abs() < 1e-3);
        }
    }
}
