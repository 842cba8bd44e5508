//! SFace embedding of an aligned 112x112 face: RGB 0..255 in, 128 floats out,
//! L2-normalised so that a dot product is the cosine similarity.

use opencv::core::Mat;
use opencv::prelude::*;
use ort::session::Session;
use ort::value::TensorRef;
use std::sync::Mutex;

use super::align::SIDE;
use crate::runtime::{self, RuntimeOptions};
use crate::ModelError;

/// Length of an embedding.
pub const DIM: usize = 128;

/// A unit-length face embedding.
pub type Embedding = Vec<f32>;

pub struct Embedder {
    session: Mutex<(Session, Vec<f32>)>,
}

impl Embedder {
    pub const FILE: &'static str = "sface.onnx";

    pub fn load(rt: &RuntimeOptions) -> Result<Self, ModelError> {
        let session = runtime::session(rt, Self::FILE)?;
        Ok(Self {
            session: Mutex::new((session, vec![0f32; 3 * (SIDE * SIDE) as usize])),
        })
    }

    /// Embeds an aligned BGR crop (see [`super::align::align`]).
    pub fn embed(&self, aligned: &Mat) -> Result<Embedding, ModelError> {
        if aligned.cols() != SIDE || aligned.rows() != SIDE {
            return Err(ModelError::Input(format!(
                "aligned face must be {SIDE}x{SIDE}, got {}x{}",
                aligned.cols(),
                aligned.rows()
            )));
        }
        let mut guard = self
            .session
            .lock()
            .map_err(|_| ModelError::Runtime("embedder lock poisoned".into()))?;
        let (session, input) = &mut *guard;
        let side = SIDE as usize;
        // BGR in the crop, RGB for the model.
        crate::image::fill_chw(aligned, input, (side, side), crate::image::RGB, |_, v| {
            v as f32
        })?;
        let outputs = session.run(ort::inputs![
            "data" => TensorRef::from_array_view(([1usize, 3, SIDE as usize, SIDE as usize], &input[..]))?
        ])?;
        let (_, v) = outputs[0].try_extract_tensor::<f32>()?;
        if v.len() != DIM {
            return Err(ModelError::Runtime(format!(
                "SFace gave {} values, expected {DIM}",
                v.len()
            )));
        }
        let mut e = v.to_vec();
        normalize(&mut e);
        Ok(e)
    }
}

/// Scales a vector to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Cosine similarity of two unit embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    crate::gallery::simd::dot(a, b)
}
