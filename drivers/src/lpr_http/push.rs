//! What barrier cameras push: plate results as JSON, or multipart with the JSON
//! and the JPEG of the vehicle. Two formats are understood:
//!
//! Generic (ours, documented in the README):
//! ```json
//! {"plate": "京A12345", "colour": "blue", "confidence": 0.93, "image": "<base64 JPEG, optional>"}
//! ```
//! Vendor style (the `AlarmInfoPlate` push of common Chinese barrier cameras):
//! ```json
//! {"AlarmInfoPlate": {"result": {"PlateResult": {"license": "京A12345", "colorType": 1,
//!   "confidence": 93, "imageFile": "<base64 JPEG, optional>"}}}}
//! ```
//! Parsing is pure (no I/O), so it is fuzzed and tested with broken input.

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

use crate::credential::{normalize_plate, Credential, CredentialKind};
use crate::event::{CredentialRead, PlateColour};

/// Which JSON layout a push used; the reply follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Generic,
    AlarmInfoPlate,
}

/// A push that was understood.
#[derive(Clone, Debug, PartialEq)]
pub struct PlatePush {
    pub layout: Layout,
    pub read: CredentialRead,
}

/// Why a push was refused: the HTTP status and a message naming what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PushError {
    pub status: u16,
    pub message: String,
}

impl PushError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The refusal's kind, as counted on `/metrics` and in the summaries.
    pub fn reason(&self) -> &'static str {
        match self.status {
            401 => "secret",
            408 => "timeout",
            413 => "too_large",
            415 => "not_jpeg",
            422 => "invalid",
            _ => "malformed",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Generic {
    plate: String,
    #[serde(alias = "color")]
    colour: Option<String>,
    confidence: Option<f64>,
    image: Option<String>,
    /// The camera's own time and direction are accepted but not used: the
    /// gateway stamps events itself and the device's config tells the direction.
    #[allow(dead_code)]
    time: Option<String>,
    #[allow(dead_code)]
    direction: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VendorPlate {
    license: String,
    color_type: Option<i64>,
    confidence: Option<f64>,
    image_file: Option<String>,
}

#[derive(Deserialize)]
struct VendorResult {
    #[serde(rename = "PlateResult")]
    plate_result: VendorPlate,
}

#[derive(Deserialize)]
struct VendorAlarm {
    result: VendorResult,
}

#[derive(Deserialize)]
struct Vendor {
    #[serde(rename = "AlarmInfoPlate")]
    alarm: VendorAlarm,
}

fn colour_name(s: &str) -> Result<PlateColour, PushError> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "blue" | "蓝" => PlateColour::Blue,
        "yellow" | "黄" => PlateColour::Yellow,
        "green" | "绿" => PlateColour::Green,
        "white" | "白" => PlateColour::White,
        "black" | "黑" => PlateColour::Black,
        other => {
            return Err(PushError::new(
                422,
                format!("unknown plate colour `{other}` (blue, yellow, green, white, black)"),
            ))
        }
    })
}

/// The vendor's colour codes.
fn colour_code(c: i64) -> Option<PlateColour> {
    match c {
        1 => Some(PlateColour::Blue),
        2 => Some(PlateColour::Yellow),
        3 => Some(PlateColour::White),
        4 => Some(PlateColour::Black),
        5 => Some(PlateColour::Green),
        _ => None,
    }
}

/// Confidence as 0..1; cameras send either 0..1 or percent.
fn confidence(c: Option<f64>) -> Result<Option<f32>, PushError> {
    match c {
        None => Ok(None),
        Some(c) if c.is_finite() && (0.0..=1.0).contains(&c) => Ok(Some(c as f32)),
        Some(c) if c.is_finite() && (1.0..=100.0).contains(&c) => Ok(Some((c / 100.0) as f32)),
        Some(c) => Err(PushError::new(
            422,
            format!("confidence {c} is not 0..1 or 0..100"),
        )),
    }
}

/// Checks that bytes are a whole JPEG (SOI at the start, EOI at the end).
pub fn check_jpeg(b: &[u8]) -> Result<(), PushError> {
    if b.len() < 4 || b[..3] != [0xFF, 0xD8, 0xFF] {
        return Err(PushError::new(415, "the image is not a JPEG"));
    }
    // Some cameras pad after EOI; look for it in the last bytes.
    let tail = &b[b.len().saturating_sub(64)..];
    if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
        return Err(PushError::new(
            400,
            "the JPEG is truncated (no end-of-image marker)",
        ));
    }
    Ok(())
}

fn decode_image(b64: &str) -> Result<Bytes, PushError> {
    let cleaned: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned)
        .map_err(|e| PushError::new(400, format!("image is not base64: {e}")))?;
    check_jpeg(&bytes)?;
    Ok(Bytes::from(bytes))
}

fn plate(raw: &str) -> Result<Credential, PushError> {
    let value =
        normalize_plate(raw).map_err(|why| PushError::new(422, format!("plate `{raw}`: {why}")))?;
    Ok(Credential {
        kind: CredentialKind::Plate,
        value,
    })
}

/// Parses a JSON push (either layout).
pub fn parse_json(body: &[u8]) -> Result<PlatePush, PushError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| PushError::new(400, format!("body is not valid JSON: {e}")))?;
    let (layout, mut read, image) = if value.get("AlarmInfoPlate").is_some() {
        let v: Vendor = serde_json::from_value(value)
            .map_err(|e| PushError::new(400, format!("AlarmInfoPlate push: {e}")))?;
        let p = v.alarm.result.plate_result;
        let mut read = CredentialRead::new(plate(&p.license)?);
        read.colour = p.color_type.and_then(colour_code);
        read.confidence = confidence(p.confidence)?;
        (Layout::AlarmInfoPlate, read, p.image_file)
    } else {
        let g: Generic = serde_json::from_value(value)
            .map_err(|e| PushError::new(400, format!("plate push: {e}")))?;
        let mut read = CredentialRead::new(plate(&g.plate)?);
        read.colour = g.colour.as_deref().map(colour_name).transpose()?;
        read.confidence = confidence(g.confidence)?;
        (Layout::Generic, read, g.image)
    };
    read.format = Some("lpr".into());
    if let Some(b64) = image.filter(|s| !s.is_empty()) {
        read.snapshot = Some(decode_image(&b64)?);
    }
    Ok(PlatePush { layout, read })
}

/// Parses a multipart push: one JSON part (by content type, or named
/// `event`/`json`/`metadata`/`result`) and optionally one JPEG part.
pub async fn parse_multipart(boundary: &str, body: Bytes) -> Result<PlatePush, PushError> {
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut json: Option<Bytes> = None;
    let mut image: Option<Bytes> = None;
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(PushError::new(400, format!("multipart body: {e}"))),
        };
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        let ctype = field
            .content_type()
            .map(|m| m.essence_str().to_ascii_lowercase())
            .unwrap_or_default();
        let data = field
            .bytes()
            .await
            .map_err(|e| PushError::new(400, format!("multipart part `{name}`: {e}")))?;
        let is_json = ctype == "application/json"
            || matches!(name.as_str(), "event" | "json" | "metadata" | "result");
        if is_json && json.is_none() {
            json = Some(data);
        } else if ctype.starts_with("image/")
            || matches!(name.as_str(), "image" | "picture" | "snapshot" | "jpeg")
        {
            if image.is_some() {
                return Err(PushError::new(
                    400,
                    "multipart push has more than one image",
                ));
            }
            image = Some(data);
        }
    }
    let json = json.ok_or_else(|| PushError::new(400, "multipart push has no JSON part"))?;
    let mut push = parse_json(&json)?;
    if let Some(img) = image {
        check_jpeg(&img)?;
        push.read.snapshot = Some(img);
    }
    Ok(push)
}

/// The boundary of a `multipart/form-data` content type.
pub fn multipart_boundary(content_type: &str) -> Result<String, PushError> {
    multer::parse_boundary(content_type)
        .map_err(|e| PushError::new(400, format!("content type `{content_type}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn jpeg() -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0];
        j.extend_from_slice(&[0u8; 32]);
        j.extend_from_slice(&[0xFF, 0xD9]);
        j
    }

    #[test]
    fn generic_json() {
        let p = parse_json(
            r#"{"plate": "京a·12345", "colour": "blue", "confidence": 0.93}"#.as_bytes(),
        )
        .unwrap();
        assert_eq!(p.layout, Layout::Generic);
        assert_eq!(p.read.credential.value, "京A12345");
        assert_eq!(p.read.colour, Some(PlateColour::Blue));
        assert_eq!(p.read.confidence, Some(0.93));
        assert!(p.read.snapshot.is_none());
    }

    #[test]
    fn vendor_json_with_image() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(jpeg());
        let body = format!(
            r#"{{"AlarmInfoPlate": {{"channel": 0, "deviceName": "IVS", "ipaddr": "10.0.0.9",
              "result": {{"PlateResult": {{"license": "粤BD12345", "colorType": 5, "confidence": 96,
              "imageFile": "{b64}", "timeStamp": {{"Timeval": {{"sec": 1700000000}}}}}}}}}}}}"#
        );
        let p = parse_json(body.as_bytes()).unwrap();
        assert_eq!(p.layout, Layout::AlarmInfoPlate);
        assert_eq!(p.read.credential.value, "粤BD12345");
        assert_eq!(p.read.colour, Some(PlateColour::Green));
        assert_eq!(p.read.confidence, Some(0.96));
        assert_eq!(p.read.snapshot.as_deref(), Some(jpeg().as_slice()));
    }

    #[test]
    fn broken_input_is_named() {
        let e = parse_json("{\"plate\": \"京A1".as_bytes()).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("not valid JSON"), "{e}");
        let e = parse_json(br#"{"plate": "XYZ"}"#).unwrap_err();
        assert_eq!(e.status, 422);
        let e =
            parse_json(r#"{"plate": "京A12345", "image": "iVBORw0KGgo="}"#.as_bytes()).unwrap_err();
        assert_eq!(e.status, 415);
        let e = parse_json(r#"{"plate": "京A12345", "colour": "pink"}"#.as_bytes()).unwrap_err();
        assert!(e.message.contains("pink"));
        let e = parse_json(r#"{"plate": "京A12345", "confidence": 400}"#.as_bytes()).unwrap_err();
        assert_eq!(e.status, 422);
        assert!(check_jpeg(&jpeg()[..20]).is_err());
    }

    #[tokio::test]
    async fn garbage_never_panics() {
        let mut seed = 11u32;
        let samples: [&[u8]; 4] = [
            br#"{"plate": 1}"#,
            br#"{"AlarmInfoPlate": {"result": {}}}"#,
            b"--XB\r\nContent-Disposition: form-data; name=\"event\"\r\n\r\n{",
            &[0xFF, 0xD8, 0xFF],
        ];
        for s in samples {
            let _ = parse_json(s);
            let _ = parse_multipart("XB", Bytes::copy_from_slice(s)).await;
        }
        for _ in 0..2000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let n = (seed >> 26) as usize;
            let b: Vec<u8> = (0..n).map(|i| (seed >> (i % 24)) as u8).collect();
            let _ = parse_json(&b);
            let _ = check_jpeg(&b);
            let _ = parse_multipart("XB", Bytes::from(b)).await;
        }
    }

    #[tokio::test]
    async fn multipart_truncated_and_whole() {
        let mut body = Vec::new();
        body.extend_from_slice(b"--XB\r\nContent-Disposition: form-data; name=\"event\"\r\nContent-Type: application/json\r\n\r\n");
        body.extend_from_slice("{\"plate\": \"沪AD12345\"}".as_bytes());
        body.extend_from_slice(b"\r\n--XB\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n");
        body.extend_from_slice(&jpeg());
        body.extend_from_slice(b"\r\n--XB--\r\n");
        let p = parse_multipart("XB", Bytes::from(body.clone()))
            .await
            .unwrap();
        assert_eq!(p.read.credential.value, "沪AD12345");
        assert!(p.read.snapshot.is_some());
        for cut in [10, body.len() / 2, body.len() - 8] {
            let e = parse_multipart("XB", Bytes::from(body[..cut].to_vec()))
                .await
                .unwrap_err();
            assert_eq!(e.status, 400, "cut {cut}: {e}");
        }
    }
}
