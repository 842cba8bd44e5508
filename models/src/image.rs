//! Images in and out: photo bytes decoded with clear errors, BGR frames
//! wrapped as OpenCV matrices, JPEG snapshots encoded.

use opencv::core::{Mat, MatTraitConst, Vec3b, Vector, CV_8UC3};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

use crate::ModelError;

/// An 8-bit BGR picture, rows packed.
#[derive(Clone, Debug)]
pub struct BgrImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// Why bytes are not a usable picture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("not an image (no JPEG, PNG, WebP or BMP signature)")]
    NotAnImage,
    #[error("the image could not be decoded (truncated or corrupt {0})")]
    Corrupt(&'static str),
    #[error("the image is too large ({width}x{height}; at most {max} pixels a side)")]
    TooLarge { width: u32, height: u32, max: u32 },
    #[error("image processing failed: {0}")]
    Cv(String),
}

impl From<opencv::Error> for ImageError {
    fn from(e: opencv::Error) -> Self {
        ImageError::Cv(e.message)
    }
}

/// The largest side accepted for a photo: enough for any camera, small enough
/// that a hostile upload cannot make the decoder allocate gigabytes.
pub const MAX_SIDE: u32 = 8192;

fn format_of(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("JPEG")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("PNG")
    } else if bytes.starts_with(b"BM") {
        Some("BMP")
    } else if bytes.len() > 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("WebP")
    } else {
        None
    }
}

/// Reads width and height from a JPEG's SOF marker without decoding it.
fn jpeg_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    while i + 9 < bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let h = u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]) as u32;
            let w = u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]) as u32;
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

/// Decodes a photo (JPEG, PNG, WebP or BMP) to BGR. A truncated JPEG is refused rather
/// than half-decoded: libjpeg fills the missing rows with grey, which would
/// enroll a damaged face.
pub fn decode(bytes: &[u8]) -> Result<Mat, ImageError> {
    let format = format_of(bytes).ok_or(ImageError::NotAnImage)?;
    if format == "JPEG" {
        if !bytes.ends_with(&[0xFF, 0xD9]) {
            return Err(ImageError::Corrupt(format));
        }
        if let Some((width, height)) = jpeg_size(bytes) {
            if width > MAX_SIDE || height > MAX_SIDE {
                return Err(ImageError::TooLarge {
                    width,
                    height,
                    max: MAX_SIDE,
                });
            }
        }
    }
    let buf = Vector::<u8>::from_slice(bytes);
    let mat = imgcodecs::imdecode(&buf, imgcodecs::IMREAD_COLOR)
        .map_err(|_| ImageError::Corrupt(format))?;
    if mat.empty() || mat.cols() <= 0 || mat.rows() <= 0 {
        return Err(ImageError::Corrupt(format));
    }
    if mat.cols() as u32 > MAX_SIDE || mat.rows() as u32 > MAX_SIDE {
        return Err(ImageError::TooLarge {
            width: mat.cols() as u32,
            height: mat.rows() as u32,
            max: MAX_SIDE,
        });
    }
    Ok(mat)
}

/// Copies packed BGR bytes into a matrix.
pub fn mat_from_bgr(width: u32, height: u32, bgr: &[u8]) -> Result<Mat, ModelError> {
    let need = width as usize * height as usize * 3;
    if bgr.len() != need || width == 0 || height == 0 {
        return Err(ModelError::Input(format!(
            "frame of {width}x{height} needs {need} bytes, got {}",
            bgr.len()
        )));
    }
    let mut mat = Mat::new_rows_cols_with_default(
        height as i32,
        width as i32,
        CV_8UC3,
        opencv::core::Scalar::all(0.0),
    )?;
    mat.data_bytes_mut()?.copy_from_slice(bgr);
    Ok(mat)
}

/// The packed BGR bytes of a matrix.
pub fn bgr_of(mat: &Mat) -> Result<BgrImage, ModelError> {
    let mat = if mat.is_continuous() {
        mat.clone()
    } else {
        mat.try_clone()?
    };
    Ok(BgrImage {
        width: mat.cols() as u32,
        height: mat.rows() as u32,
        data: mat.data_bytes()?.to_vec(),
    })
}

/// Encodes a matrix as JPEG at `quality` (1-100).
pub fn encode_jpeg(
    mat: &impl opencv::core::ToInputArray,
    quality: i32,
) -> Result<Vec<u8>, ModelError> {
    let mut out = Vector::<u8>::new();
    let params =
        Vector::<i32>::from_slice(&[imgcodecs::IMWRITE_JPEG_QUALITY, quality.clamp(1, 100)]);
    if !imgcodecs::imencode(".jpg", mat, &mut out, &params)? {
        return Err(ModelError::Input("JPEG encoding failed".into()));
    }
    Ok(out.to_vec())
}

/// Channel orders of a model's input planes, as indices into a BGR pixel.
pub const BGR: [usize; 3] = [0, 1, 2];
pub const RGB: [usize; 3] = [2, 1, 0];

/// Writes a BGR image into the three planes of a CHW float input `iw` x `ih`
/// (`out` holds 3 * iw * ih values), zero-padded right and bottom: plane `p`
/// takes channel `order[p]` of each pixel, through `value(p, byte)` (each
/// model's own scaling and mean).
pub fn fill_chw(
    src: &Mat,
    out: &mut [f32],
    (iw, ih): (usize, usize),
    order: [usize; 3],
    value: impl Fn(usize, u8) -> f32,
) -> Result<(), ModelError> {
    let plane = iw * ih;
    if out.len() != 3 * plane {
        return Err(ModelError::Input(format!(
            "an input of {iw}x{ih} needs {} values, the buffer has {}",
            3 * plane,
            out.len()
        )));
    }
    let (w, h) = (
        (src.cols().max(0) as usize).min(iw),
        (src.rows().max(0) as usize).min(ih),
    );
    if (w, h) != (iw, ih) {
        out.fill(0.0);
    }
    for y in 0..h {
        let row = src.at_row::<Vec3b>(y as i32)?;
        let base = y * iw;
        for (x, px) in row.iter().enumerate().take(w) {
            for (p, c) in order.iter().enumerate() {
                out[p * plane + base + x] = value(p, px[*c]);
            }
        }
    }
    Ok(())
}

/// Converts to one-channel grey.
pub fn grey(mat: &Mat) -> Result<Mat, ModelError> {
    let mut g = Mat::default();
    imgproc::cvt_color(mat, &mut g, imgproc::COLOR_BGR2GRAY, 0)?;
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_images_and_broken_jpegs() {
        assert_eq!(decode(b"hello").unwrap_err(), ImageError::NotAnImage);
        assert_eq!(decode(b"").unwrap_err(), ImageError::NotAnImage);
        let mat = mat_from_bgr(64, 48, &vec![128u8; 64 * 48 * 3]).unwrap();
        let jpeg = encode_jpeg(&mat, 90).unwrap();
        assert_eq!(decode(&jpeg).unwrap().cols(), 64);
        assert_eq!(
            decode(&jpeg[..jpeg.len() / 2]).unwrap_err(),
            ImageError::Corrupt("JPEG")
        );
    }

    #[test]
    fn frame_size_must_match() {
        assert!(mat_from_bgr(4, 4, &[0u8; 10]).is_err());
    }
}
