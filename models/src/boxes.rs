//! Boxes in image pixels: how much two overlap (intersection over union) and
//! greedy non-maximum suppression. The face and plate detectors drop their
//! duplicate boxes with it; the face tracker follows faces by overlap.

/// A box: left, top, right, bottom.
pub type Bbox = [f32; 4];

/// Intersection over union of two boxes (0 when either is empty).
pub fn iou(a: &Bbox, b: &Bbox) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &Bbox| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Greedy non-maximum suppression: best `score` first, an item is kept when
/// its box overlaps every kept one by at most `iou_max`; at most `top_k` kept.
pub fn nms<T>(
    mut items: Vec<T>,
    iou_max: f32,
    top_k: usize,
    score: impl Fn(&T) -> f32,
    bbox: impl Fn(&T) -> Bbox,
) -> Vec<T> {
    items.sort_by(|a, b| score(b).total_cmp(&score(a)));
    let mut kept: Vec<T> = Vec::new();
    for item in items {
        if kept.len() >= top_k {
            break;
        }
        let b = bbox(&item);
        if kept.iter().all(|k| iou(&bbox(k), &b) <= iou_max) {
            kept.push(item);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_of_boxes() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &[20.0, 0.0, 30.0, 10.0]), 0.0);
        // Half of one box over the other: 50 / 150.
        assert!((iou(&a, &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    }
}
