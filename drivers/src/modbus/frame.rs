//! Modbus framing: the TCP MBAP header and RTU's unit + CRC-16 frames, and
//! cutting received bytes into response PDUs.

use thiserror::Error;

/// Modbus RTU CRC-16 (poly 0xA001 reflected, init 0xFFFF), sent low byte first.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    #[error("MBAP protocol id {0} is not Modbus")]
    Protocol(u16),
    #[error("MBAP length {0} out of range")]
    Length(u16),
    #[error("RTU CRC mismatch")]
    Crc,
}

/// An MBAP-framed request.
pub fn tcp_request(transaction: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(7 + pdu.len());
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
    out.push(unit);
    out.extend_from_slice(pdu);
    out
}

/// A response cut from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The MBAP transaction id (0 for RTU).
    pub transaction: u16,
    pub unit: u8,
    pub pdu: Vec<u8>,
}

/// Takes one MBAP frame off the front of `buf`; None: more bytes needed.
pub fn tcp_take(buf: &mut Vec<u8>) -> Option<Result<Frame, FrameError>> {
    if buf.len() < 7 {
        return None;
    }
    let transaction = u16::from_be_bytes([buf[0], buf[1]]);
    let protocol = u16::from_be_bytes([buf[2], buf[3]]);
    let len = u16::from_be_bytes([buf[4], buf[5]]);
    if protocol != 0 {
        buf.clear();
        return Some(Err(FrameError::Protocol(protocol)));
    }
    if !(2..=254).contains(&len) {
        buf.clear();
        return Some(Err(FrameError::Length(len)));
    }
    let total = 6 + usize::from(len);
    if buf.len() < total {
        return None;
    }
    let frame = Frame {
        transaction,
        unit: buf[6],
        pdu: buf[7..total].to_vec(),
    };
    buf.drain(..total);
    Some(Ok(frame))
}

/// An RTU request frame.
pub fn rtu_request(unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pdu.len() + 3);
    out.push(unit);
    out.extend_from_slice(pdu);
    let c = crc16(&out);
    out.extend_from_slice(&c.to_le_bytes());
    out
}

/// The length of an RTU response frame from its first bytes, if known yet.
fn rtu_len(buf: &[u8]) -> Option<usize> {
    let fc = *buf.get(1)?;
    Some(match fc {
        f if f & 0x80 != 0 => 5,
        1..=4 => 5 + usize::from(*buf.get(2)?),
        5 | 6 | 15 | 16 => 8,
        // Unknown function: take the shortest frame; its CRC will fail and we resync.
        _ => 5,
    })
}

/// Takes one RTU frame off the front of `buf`. RTU has no start marker: on a
/// CRC failure one byte is dropped and the scan goes on.
pub fn rtu_take(buf: &mut Vec<u8>) -> Option<Result<Frame, FrameError>> {
    let len = rtu_len(buf)?;
    if buf.len() < len {
        return None;
    }
    let crc = u16::from_le_bytes([buf[len - 2], buf[len - 1]]);
    if crc != crc16(&buf[..len - 2]) {
        buf.drain(..1);
        return Some(Err(FrameError::Crc));
    }
    let frame = Frame {
        transaction: 0,
        unit: buf[0],
        pdu: buf[1..len - 2].to_vec(),
    };
    buf.drain(..len);
    Some(Ok(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtu_crc_known_frame() {
        // Read holding registers 0..2 of unit 1: 01 03 00 00 00 02 C4 0B.
        assert_eq!(
            rtu_request(1, &[3, 0, 0, 0, 2]),
            vec![1, 3, 0, 0, 0, 2, 0xC4, 0x0B]
        );
    }

    #[test]
    fn rtu_take_resyncs() {
        let mut good = rtu_request(1, &[2, 1, 5]);
        let mut buf = vec![0xAA];
        buf.append(&mut good.clone());
        assert_eq!(rtu_take(&mut buf), Some(Err(FrameError::Crc)));
        let f = rtu_take(&mut buf).unwrap().unwrap();
        assert_eq!(f.pdu, vec![2, 1, 5]);
        good.truncate(3);
        let mut partial = good;
        assert!(rtu_take(&mut partial).is_none());
    }

    #[test]
    fn tcp_round_trip() {
        let mut b = tcp_request(9, 1, &[3, 2, 0, 1]);
        b.extend_from_slice(&[0, 1]);
        let f = tcp_take(&mut b).unwrap().unwrap();
        assert_eq!((f.transaction, f.unit, f.pdu), (9, 1, vec![3, 2, 0, 1]));
        assert_eq!(b, vec![0, 1]);
        let mut bad = vec![0, 1, 0, 9, 0, 3, 1, 3, 0];
        assert_eq!(tcp_take(&mut bad), Some(Err(FrameError::Protocol(9))));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 99u32;
        for _ in 0..5000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let n = (seed >> 26) as usize;
            let data: Vec<u8> = (0..n).map(|i| (seed >> (i % 24)) as u8).collect();
            let mut a = data.clone();
            while let Some(Err(_)) | Some(Ok(_)) = rtu_take(&mut a) {}
            let mut b = data;
            while let Some(Err(_)) | Some(Ok(_)) = tcp_take(&mut b) {}
        }
    }
}
