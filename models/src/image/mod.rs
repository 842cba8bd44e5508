//! Images in and out: photo bytes decoded with clear errors, BGR frames
//! wrapped as OpenCV matrices, JPEG snapshots encoded. JPEG goes through
//! libjpeg-turbo ([`jpeg`]); PNG, WebP and BMP through the `image` crate, which
//! also reads EXIF orientation. Not OpenCV's imgcodecs: it would bring GDAL,
//! GDCM and poppler into the process, ~40 MB of resident libraries for nothing
//! we use.

mod jpeg;

use image::ImageEncoder;
use opencv::core::{Mat, MatTraitConst, Vec3b, CV_8UC3};
use opencv::imgproc;
use opencv::prelude::*;

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

/// Decodes a photo (JPEG, PNG, WebP or BMP) to BGR, turned upright as its
/// EXIF orientation says (phones store portraits sideways). A truncated JPEG is
/// refused rather than half-decoded: the missing rows would come out grey and
/// enroll a damaged face.
pub fn decode(bytes: &[u8]) -> Result<Mat, ImageError> {
    use image::ImageDecoder;
    let format = format_of(bytes).ok_or(ImageError::NotAnImage)?;
    let upright = image::metadata::Orientation::NoTransforms;
    let (width, height, bgr, orientation) = if format == "JPEG" {
        if !bytes.ends_with(&[0xFF, 0xD9]) {
            return Err(ImageError::Corrupt(format));
        }
        // The size is checked before any pixel is allocated: a hostile
        // header cannot make the decoder reserve gigabytes.
        let decoder = jpeg::Decoder::new(bytes).map_err(|_| ImageError::Corrupt(format))?;
        let (w, h) = decoder.size();
        check_size(w, h)?;
        let bgr = decoder.bgr().map_err(|_| ImageError::Corrupt(format))?;
        let orientation = image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(bytes))
            .ok()
            .and_then(|mut d| d.orientation().ok())
            .unwrap_or(upright);
        (w, h, bgr, orientation)
    } else {
        let reader =
            image::ImageReader::with_format(std::io::Cursor::new(bytes), image_format(format));
        let mut decoder = reader
            .into_decoder()
            .map_err(|_| ImageError::Corrupt(format))?;
        let (w, h) = decoder.dimensions();
        check_size(w, h)?;
        let orientation = decoder.orientation().unwrap_or(upright);
        let rgb = image::DynamicImage::from_decoder(decoder)
            .map_err(|_| ImageError::Corrupt(format))?
            .into_rgb8();
        let mut bgr = rgb.into_raw();
        for px in bgr.chunks_exact_mut(3) {
            px.swap(0, 2);
        }
        (w, h, bgr, orientation)
    };
    // Turning is the same for any three-byte pixel, BGR included.
    let mut img = image::DynamicImage::ImageRgb8(
        image::RgbImage::from_raw(width, height, bgr).ok_or(ImageError::Corrupt(format))?,
    );
    img.apply_orientation(orientation);
    let img = img.into_rgb8();
    if img.width() == 0 || img.height() == 0 {
        return Err(ImageError::Corrupt(format));
    }
    mat_from_bgr(img.width(), img.height(), img.as_raw()).map_err(|e| ImageError::Cv(e.to_string()))
}

fn check_size(width: u32, height: u32) -> Result<(), ImageError> {
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImageError::TooLarge {
            width,
            height,
            max: MAX_SIDE,
        });
    }
    Ok(())
}

fn image_format(format: &str) -> image::ImageFormat {
    match format {
        "PNG" => image::ImageFormat::Png,
        "BMP" => image::ImageFormat::Bmp,
        "WebP" => image::ImageFormat::WebP,
        _ => image::ImageFormat::Jpeg,
    }
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
    Ok(BgrImage {
        width: mat.cols() as u32,
        height: mat.rows() as u32,
        data: with_packed(mat, |b| Ok(b.to_vec()))?,
    })
}

/// Calls `f` with the pixel bytes of a matrix, rows packed: a region of a
/// frame has gaps between its rows and is copied first, anything else is read
/// in place.
fn with_packed<T>(
    mat: &impl MatTraitConst,
    f: impl FnOnce(&[u8]) -> Result<T, ModelError>,
) -> Result<T, ModelError> {
    if mat.is_continuous() {
        f(mat.data_bytes()?)
    } else {
        f(mat.try_clone()?.data_bytes()?)
    }
}

/// Encodes a BGR matrix (or a region of one) as JPEG at `quality` (1-100).
pub fn encode_jpeg(mat: &impl MatTraitConst, quality: i32) -> Result<Vec<u8>, ModelError> {
    if mat.typ() != CV_8UC3 || mat.empty() {
        return Err(ModelError::Input(
            "JPEG encoding needs a non-empty 8-bit BGR image".into(),
        ));
    }
    let (w, h) = (mat.cols() as u32, mat.rows() as u32);
    with_packed(mat, |rows| {
        jpeg::encode_bgr(rows, w, h, quality)
            .map_err(|e| ModelError::Input(format!("JPEG encoding failed: {e}")))
    })
}

/// Encodes a BGR matrix as PNG (lossless: a frame handed to another program).
pub fn encode_png(mat: &Mat) -> Result<Vec<u8>, ModelError> {
    let img = bgr_of(mat)?;
    let rgb: Vec<u8> = img
        .data
        .chunks_exact(3)
        .flat_map(|p| [p[2], p[1], p[0]])
        .collect();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&rgb, img.width, img.height, image::ExtendedColorType::Rgb8)
        .map_err(|e| ModelError::Input(format!("PNG encoding failed: {e}")))?;
    Ok(out)
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

    /// Channel order is right both ways: a red PNG decodes to BGR (0, 0, 255),
    /// and a BGR matrix survives PNG and (nearly) JPEG round trips.
    #[test]
    fn colours_keep_their_channels() {
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(
                &[255, 0, 0].repeat(4 * 3),
                4,
                3,
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        let m = decode(&png).unwrap();
        assert_eq!((m.cols(), m.rows()), (4, 3));
        assert_eq!(bgr_of(&m).unwrap().data[..3], [0, 0, 255]);
        let back = decode(&encode_png(&m).unwrap()).unwrap();
        assert_eq!(bgr_of(&back).unwrap().data, bgr_of(&m).unwrap().data);
        let blue = mat_from_bgr(16, 16, &[200, 30, 10].repeat(256)).unwrap();
        let px = bgr_of(&decode(&encode_jpeg(&blue, 95).unwrap()).unwrap()).unwrap();
        assert!(px.data[0] > 180 && px.data[2] < 40, "{:?}", &px.data[..3]);
    }

    #[test]
    fn frame_size_must_match() {
        assert!(mat_from_bgr(4, 4, &[0u8; 10]).is_err());
    }
}
