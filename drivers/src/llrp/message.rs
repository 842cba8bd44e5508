//! LLRP 1.0.1 messages on the wire: the 10-byte header, TLV and TV parameters,
//! the messages the client sends (reader config, ROSpec life cycle, keepalive
//! ack) and the decoding of what a reader sends (responses with LLRPStatus,
//! RO_ACCESS_REPORT tag reads, events, keepalives). Decoding is pure and fuzzed.

use thiserror::Error;

pub const HEADER: usize = 10;
/// Largest message accepted (a report of many tags is far smaller).
pub const MAX_MESSAGE: usize = 1 << 20;
const VERSION: u16 = 1;

/// Message types used here.
pub mod kind {
    pub const SET_READER_CONFIG: u16 = 3;
    pub const CLOSE_CONNECTION_RESPONSE: u16 = 4;
    pub const SET_READER_CONFIG_RESPONSE: u16 = 13;
    pub const CLOSE_CONNECTION: u16 = 14;
    pub const ADD_ROSPEC: u16 = 20;
    pub const DELETE_ROSPEC: u16 = 21;
    pub const START_ROSPEC: u16 = 22;
    pub const STOP_ROSPEC: u16 = 23;
    pub const ENABLE_ROSPEC: u16 = 24;
    pub const ADD_ROSPEC_RESPONSE: u16 = 30;
    pub const DELETE_ROSPEC_RESPONSE: u16 = 31;
    pub const START_ROSPEC_RESPONSE: u16 = 32;
    pub const STOP_ROSPEC_RESPONSE: u16 = 33;
    pub const ENABLE_ROSPEC_RESPONSE: u16 = 34;
    pub const RO_ACCESS_REPORT: u16 = 61;
    pub const KEEPALIVE: u16 = 62;
    pub const READER_EVENT_NOTIFICATION: u16 = 63;
    pub const ENABLE_EVENTS_AND_REPORTS: u16 = 64;
    pub const KEEPALIVE_ACK: u16 = 72;
    pub const ERROR_MESSAGE: u16 = 100;
}

/// Parameter types used here.
mod param {
    pub const UTC_TIMESTAMP: u16 = 128;
    pub const ROSPEC: u16 = 177;
    pub const RO_BOUNDARY_SPEC: u16 = 178;
    pub const ROSPEC_START_TRIGGER: u16 = 179;
    pub const ROSPEC_STOP_TRIGGER: u16 = 182;
    pub const AISPEC: u16 = 183;
    pub const AISPEC_STOP_TRIGGER: u16 = 184;
    pub const INVENTORY_PARAMETER_SPEC: u16 = 186;
    pub const KEEPALIVE_SPEC: u16 = 220;
    pub const RO_REPORT_SPEC: u16 = 237;
    pub const TAG_REPORT_CONTENT_SELECTOR: u16 = 238;
    pub const TAG_REPORT_DATA: u16 = 240;
    pub const EPC_DATA: u16 = 241;
    pub const READER_EVENT_NOTIFICATION_DATA: u16 = 246;
    pub const CONNECTION_ATTEMPT_EVENT: u16 = 256;
    pub const LLRP_STATUS: u16 = 287;
    // TV parameters
    pub const TV_ANTENNA_ID: u8 = 1;
    pub const TV_FIRST_SEEN_UTC: u8 = 2;
    pub const TV_PEAK_RSSI: u8 = 6;
    pub const TV_EPC_96: u8 = 13;
}

/// Value lengths of TV parameters, by type (None: not a TV type).
fn tv_len(t: u8) -> Option<usize> {
    Some(match t {
        1 => 2,
        2..=5 => 8,
        6 => 1,
        7 | 8 => 2,
        9 => 4,
        10..=12 => 2,
        13 => 12,
        14 | 15 => 2,
        16 => 4,
        17 => 2,
        18 => 4,
        19 | 20 => 2,
        _ => return None,
    })
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LlrpError {
    #[error("message length {0} out of range")]
    Length(usize),
    #[error("unsupported LLRP version {0}")]
    Version(u16),
    #[error("parameter {0} is truncated or has a bad length")]
    Param(u16),
    #[error("unknown TV parameter type {0}")]
    UnknownTv(u8),
    #[error("{0} is missing")]
    Missing(&'static str),
}

/// A message: its type, id and body (the bytes after the header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub kind: u16,
    pub id: u32,
    pub body: Vec<u8>,
}

impl Message {
    pub fn new(kind: u16, id: u32, body: Vec<u8>) -> Message {
        Message { kind, id, body }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.body.len());
        out.extend_from_slice(&((VERSION << 10) | (self.kind & 0x3FF)).to_be_bytes());
        out.extend_from_slice(&((HEADER + self.body.len()) as u32).to_be_bytes());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// The total length announced by a header (checked against the limits).
    pub fn length_of(header: &[u8; HEADER]) -> Result<usize, LlrpError> {
        let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
        if !(HEADER..=MAX_MESSAGE).contains(&len) {
            return Err(LlrpError::Length(len));
        }
        Ok(len)
    }

    /// Decodes one whole message.
    pub fn decode(buf: &[u8]) -> Result<Message, LlrpError> {
        let header: [u8; HEADER] = buf
            .get(..HEADER)
            .and_then(|h| h.try_into().ok())
            .ok_or(LlrpError::Length(buf.len()))?;
        let len = Self::length_of(&header)?;
        if len != buf.len() {
            return Err(LlrpError::Length(len));
        }
        let first = u16::from_be_bytes([header[0], header[1]]);
        let version = (first >> 10) & 0x7;
        if version != VERSION {
            return Err(LlrpError::Version(version));
        }
        Ok(Message {
            kind: first & 0x3FF,
            id: u32::from_be_bytes([header[6], header[7], header[8], header[9]]),
            body: buf[HEADER..].to_vec(),
        })
    }
}

/// One parameter found in a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param<'a> {
    Tlv { kind: u16, value: &'a [u8] },
    Tv { kind: u8, value: &'a [u8] },
}

/// Splits a run of parameters.
pub fn params(mut buf: &[u8]) -> Result<Vec<Param<'_>>, LlrpError> {
    let mut out = Vec::new();
    while let Some(&first) = buf.first() {
        if first & 0x80 != 0 {
            let kind = first & 0x7F;
            let n = tv_len(kind).ok_or(LlrpError::UnknownTv(kind))?;
            let value = buf.get(1..1 + n).ok_or(LlrpError::Param(u16::from(kind)))?;
            out.push(Param::Tv { kind, value });
            buf = &buf[1 + n..];
        } else {
            let head = buf.get(..4).ok_or(LlrpError::Param(0))?;
            let kind = u16::from_be_bytes([head[0], head[1]]) & 0x3FF;
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            if len < 4 || len > buf.len() {
                return Err(LlrpError::Param(kind));
            }
            out.push(Param::Tlv {
                kind,
                value: &buf[4..len],
            });
            buf = &buf[len..];
        }
    }
    Ok(out)
}

fn tlv(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + value.len());
    out.extend_from_slice(&(kind & 0x3FF).to_be_bytes());
    out.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// SET_READER_CONFIG with a periodic keepalive.
pub fn set_reader_config(id: u32, keepalive_ms: u32) -> Message {
    let mut body = vec![0u8]; // ResetToFactoryDefault = 0
    let mut ka = vec![1u8]; // periodic
    ka.extend_from_slice(&keepalive_ms.to_be_bytes());
    body.extend(tlv(param::KEEPALIVE_SPEC, &ka));
    Message::new(kind::SET_READER_CONFIG, id, body)
}

/// A message whose body is a ROSpecID (delete, enable, start, stop).
pub fn rospec_op(kind: u16, id: u32, rospec: u32) -> Message {
    Message::new(kind, id, rospec.to_be_bytes().to_vec())
}

/// ADD_ROSPEC: inventory on `antennas` (empty: all) until stopped, one report per tag read
/// with antenna, peak RSSI and first-seen time.
pub fn add_rospec(id: u32, rospec: u32, antennas: &[u16]) -> Message {
    // Null start trigger: the client starts it with START_ROSPEC (readers that
    // ignore the Immediate trigger, like llrpkit's emulator, then work too).
    let start = tlv(param::ROSPEC_START_TRIGGER, &[0]);
    let stop = tlv(param::ROSPEC_STOP_TRIGGER, &[0, 0, 0, 0, 0]);
    let boundary = tlv(param::RO_BOUNDARY_SPEC, &[start, stop].concat());
    let ids: Vec<u16> = if antennas.is_empty() {
        vec![0]
    } else {
        antennas.to_vec()
    };
    let mut ai = (ids.len() as u16).to_be_bytes().to_vec();
    for a in &ids {
        ai.extend_from_slice(&a.to_be_bytes());
    }
    ai.extend(tlv(param::AISPEC_STOP_TRIGGER, &[0, 0, 0, 0, 0]));
    ai.extend(tlv(param::INVENTORY_PARAMETER_SPEC, &[0, 1, 1]));
    let aispec = tlv(param::AISPEC, &ai);
    // Content: AntennaID, PeakRSSI, FirstSeenTimestamp, TagSeenCount.
    let selector: u16 = (1 << 12) | (1 << 10) | (1 << 9) | (1 << 7);
    let mut report = vec![2u8, 0, 1]; // upon N tags or end of ROSpec, N = 1
    report.extend(tlv(
        param::TAG_REPORT_CONTENT_SELECTOR,
        &selector.to_be_bytes(),
    ));
    let report = tlv(param::RO_REPORT_SPEC, &report);
    let mut spec = rospec.to_be_bytes().to_vec();
    spec.push(0); // priority
    spec.push(0); // current state: disabled
    spec.extend(boundary);
    spec.extend(aispec);
    spec.extend(report);
    Message::new(kind::ADD_ROSPEC, id, tlv(param::ROSPEC, &spec))
}

/// The LLRPStatus of a response: Ok, or the code and the reader's description.
pub fn status(body: &[u8]) -> Result<Result<(), (u16, String)>, LlrpError> {
    for p in params(body)? {
        if let Param::Tlv {
            kind: param::LLRP_STATUS,
            value,
        } = p
        {
            let code = value.get(..2).ok_or(LlrpError::Param(param::LLRP_STATUS))?;
            let code = u16::from_be_bytes([code[0], code[1]]);
            let desc = value
                .get(2..4)
                .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                .and_then(|n| value.get(4..4 + n))
                .map(|d| String::from_utf8_lossy(d).into_owned())
                .unwrap_or_default();
            return Ok(if code == 0 { Ok(()) } else { Err((code, desc)) });
        }
    }
    Err(LlrpError::Missing("LLRPStatus"))
}

/// One tag read from an RO_ACCESS_REPORT.
#[derive(Clone, Debug, PartialEq)]
pub struct TagRead {
    /// The EPC, upper-case hex.
    pub epc: String,
    pub antenna: Option<u16>,
    /// Peak RSSI in dBm.
    pub rssi: Option<f32>,
    /// First seen, microseconds since the Unix epoch (reader's clock).
    pub first_seen_us: Option<u64>,
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// The tag reads of an RO_ACCESS_REPORT body.
pub fn tag_reads(body: &[u8]) -> Result<Vec<TagRead>, LlrpError> {
    let mut out = Vec::new();
    for p in params(body)? {
        let Param::Tlv {
            kind: param::TAG_REPORT_DATA,
            value,
        } = p
        else {
            continue;
        };
        let mut read = TagRead {
            epc: String::new(),
            antenna: None,
            rssi: None,
            first_seen_us: None,
        };
        for q in params(value)? {
            match q {
                Param::Tv {
                    kind: param::TV_EPC_96,
                    value,
                } => read.epc = hex_upper(value),
                Param::Tlv {
                    kind: param::EPC_DATA,
                    value,
                } => {
                    let bits = value.get(..2).ok_or(LlrpError::Param(param::EPC_DATA))?;
                    let bits = usize::from(u16::from_be_bytes([bits[0], bits[1]]));
                    let bytes = value
                        .get(2..2 + bits.div_ceil(8))
                        .ok_or(LlrpError::Param(param::EPC_DATA))?;
                    read.epc = hex_upper(bytes);
                }
                Param::Tv {
                    kind: param::TV_ANTENNA_ID,
                    value,
                } => read.antenna = Some(u16::from_be_bytes([value[0], value[1]])),
                Param::Tv {
                    kind: param::TV_PEAK_RSSI,
                    value,
                } => read.rssi = Some(f32::from(value[0] as i8)),
                Param::Tv {
                    kind: param::TV_FIRST_SEEN_UTC,
                    value,
                } => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(value);
                    read.first_seen_us = Some(u64::from_be_bytes(b));
                }
                _ => {}
            }
        }
        if read.epc.is_empty() {
            return Err(LlrpError::Missing("EPC in TagReportData"));
        }
        out.push(read);
    }
    Ok(out)
}

/// The ConnectionAttemptEvent status of a READER_EVENT_NOTIFICATION, if it has one
/// (0 = success, 1..4 = refused).
pub fn connection_attempt(body: &[u8]) -> Result<Option<u16>, LlrpError> {
    for p in params(body)? {
        if let Param::Tlv {
            kind: param::READER_EVENT_NOTIFICATION_DATA,
            value,
        } = p
        {
            for q in params(value)? {
                if let Param::Tlv {
                    kind: param::CONNECTION_ATTEMPT_EVENT,
                    value,
                } = q
                {
                    let s = value
                        .get(..2)
                        .ok_or(LlrpError::Param(param::CONNECTION_ATTEMPT_EVENT))?;
                    return Ok(Some(u16::from_be_bytes([s[0], s[1]])));
                }
                let _ = param::UTC_TIMESTAMP;
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let m = rospec_op(kind::START_ROSPEC, 7, 1234);
        let b = m.encode();
        assert_eq!(&b[..2], &[0x04, 22]);
        assert_eq!(Message::decode(&b).unwrap(), m);
        assert!(Message::decode(&b[..9]).is_err());
        let mut bad = b.clone();
        bad[0] = 0x1C; // version 7
        assert!(Message::decode(&bad).is_err());
    }

    #[test]
    fn add_rospec_parses_back() {
        let m = add_rospec(1, 99, &[1, 2]);
        let ps = params(&m.body).unwrap();
        assert_eq!(ps.len(), 1);
        let Param::Tlv { kind, value } = &ps[0] else {
            panic!()
        };
        assert_eq!(*kind, param::ROSPEC);
        assert_eq!(&value[..4], &99u32.to_be_bytes());
        assert_eq!(params(&value[6..]).unwrap().len(), 3);
    }

    #[test]
    fn report_with_epc96_and_epcdata() {
        let mut trd1 = vec![0x80 | param::TV_EPC_96];
        trd1.extend_from_slice(&[0xE2, 0, 0, 0x17, 1, 2, 3, 4, 5, 6, 7, 8]);
        trd1.extend_from_slice(&[0x81, 0, 2]); // antenna 2
        trd1.extend_from_slice(&[0x86, (-61i8) as u8]);
        let mut epc = vec![0, 64];
        epc.extend_from_slice(&[0xAB; 8]);
        let mut trd2 = tlv(param::EPC_DATA, &epc);
        trd2.extend_from_slice(&[0x81, 0, 1]);
        let body = [
            tlv(param::TAG_REPORT_DATA, &trd1),
            tlv(param::TAG_REPORT_DATA, &trd2),
        ]
        .concat();
        let reads = tag_reads(&body).unwrap();
        assert_eq!(reads[0].epc, "E20000170102030405060708");
        assert_eq!(reads[0].antenna, Some(2));
        assert_eq!(reads[0].rssi, Some(-61.0));
        assert_eq!(reads[1].epc, "ABABABABABABABAB");
    }

    #[test]
    fn status_ok_and_error() {
        assert_eq!(
            status(&tlv(param::LLRP_STATUS, &[0, 0, 0, 0])).unwrap(),
            Ok(())
        );
        let mut v = vec![0, 100, 0, 5];
        v.extend_from_slice(b"no RO");
        assert_eq!(
            status(&tlv(param::LLRP_STATUS, &v)).unwrap(),
            Err((100, "no RO".into()))
        );
        assert!(status(&[]).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 5u32;
        for _ in 0..5000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let n = (seed >> 25) as usize;
            let b: Vec<u8> = (0..n)
                .map(|i| (seed >> (i % 24)) as u8 ^ (i as u8))
                .collect();
            let _ = Message::decode(&b);
            let _ = tag_reads(&b);
            let _ = status(&b);
            let _ = connection_attempt(&b);
        }
    }
}
