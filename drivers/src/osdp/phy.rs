//! OSDP framing (the "phy" layer): packets on the RS-485 line, their CRC-16 or
//! checksum, and a reader that cuts a byte stream into packets, resynchronising
//! on the next SOM after garbage or a corrupt packet.
//!
//! ```text
//! SOM 0x53 | ADDR (bit 7: reply) | LEN lo | LEN hi | CTRL | [SCB len type data] | CODE | DATA | [MAC 4] | CRC lo hi (or checksum)
//! ```

use thiserror::Error;

pub const SOM: u8 = 0x53;
/// Optional line-idle marker some CPs send before SOM.
pub const MARK: u8 = 0xFF;
/// Largest packet accepted (the spec's readers use far less; this bounds memory).
pub const MAX_PACKET: usize = 1024;
/// SOM, address, length (2), control.
const HEADER: usize = 5;

const CTRL_SQN: u8 = 0x03;
const CTRL_CRC: u8 = 0x04;
const CTRL_SCB: u8 = 0x08;

/// Security block types (secure channel handshake and session).
pub mod scs {
    /// CP → PD: osdp_CHLNG.
    pub const CHLNG: u8 = 0x11;
    /// PD → CP: osdp_CCRYPT.
    pub const CCRYPT: u8 = 0x12;
    /// CP → PD: osdp_SCRYPT.
    pub const SCRYPT: u8 = 0x13;
    /// PD → CP: osdp_RMAC_I.
    pub const RMAC_I: u8 = 0x14;
    /// CP → PD, MAC, data in clear.
    pub const CMD_MAC: u8 = 0x15;
    /// PD → CP, MAC, data in clear.
    pub const REPLY_MAC: u8 = 0x16;
    /// CP → PD, MAC, data encrypted.
    pub const CMD_ENC: u8 = 0x17;
    /// PD → CP, MAC, data encrypted.
    pub const REPLY_ENC: u8 = 0x18;
}

/// The security block of a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scb {
    pub kind: u8,
    pub data: Vec<u8>,
}

impl Scb {
    /// Session packets carry a 4-byte MAC after the data.
    pub fn has_mac(&self) -> bool {
        self.kind >= scs::CMD_MAC
    }
}

/// One packet, as on the wire (data possibly encrypted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// PD address, 0..=126 (0x7F is broadcast).
    pub address: u8,
    /// Sent by a PD (address bit 7).
    pub reply: bool,
    pub sqn: u8,
    /// CRC-16 (true) or 8-bit checksum.
    pub crc: bool,
    pub scb: Option<Scb>,
    pub code: u8,
    pub data: Vec<u8>,
    pub mac: Option<[u8; 4]>,
}

/// A decoded packet with the bytes its MAC covers (SOM up to the MAC).
#[derive(Clone, Debug)]
pub struct Decoded {
    pub packet: Packet,
    pub mac_input: Vec<u8>,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PhyError {
    #[error("packet length {0} out of range")]
    Length(usize),
    #[error("CRC mismatch (got {got:04x}, computed {want:04x})")]
    Crc { got: u16, want: u16 },
    #[error("checksum mismatch (got {got:02x}, computed {want:02x})")]
    Checksum { got: u8, want: u8 },
    #[error("security block length {0} does not fit the packet")]
    Scb(u8),
    #[error("packet has no command or reply code")]
    NoCode,
    #[error("packet does not start with SOM")]
    NoSom,
}

/// CRC-16/AUG-CCITT (poly 0x1021, init 0x1D0F, no reflection), as OSDP uses.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0x1D0F;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The 8-bit checksum: two's complement of the byte sum.
pub fn checksum(data: &[u8]) -> u8 {
    data.iter()
        .fold(0u8, |acc, b| acc.wrapping_add(*b))
        .wrapping_neg()
}

impl Packet {
    /// Encodes the packet. `mac` is called with the bytes the MAC covers when
    /// the security block asks for one (the length field already counts it).
    pub fn encode_with(&self, mac: impl FnOnce(&[u8]) -> [u8; 4]) -> Vec<u8> {
        let scb_len = self.scb.as_ref().map_or(0, |s| s.data.len() + 2);
        let with_mac = self.scb.as_ref().is_some_and(Scb::has_mac);
        let check_len = if self.crc { 2 } else { 1 };
        let total =
            HEADER + scb_len + 1 + self.data.len() + if with_mac { 4 } else { 0 } + check_len;
        let mut out = Vec::with_capacity(total);
        out.push(SOM);
        out.push((self.address & 0x7F) | if self.reply { 0x80 } else { 0 });
        out.extend_from_slice(&(total as u16).to_le_bytes());
        let mut ctrl = self.sqn & CTRL_SQN;
        if self.crc {
            ctrl |= CTRL_CRC;
        }
        if self.scb.is_some() {
            ctrl |= CTRL_SCB;
        }
        out.push(ctrl);
        if let Some(scb) = &self.scb {
            out.push(scb_len as u8);
            out.push(scb.kind);
            out.extend_from_slice(&scb.data);
        }
        out.push(self.code);
        out.extend_from_slice(&self.data);
        if with_mac {
            let m = mac(&out);
            out.extend_from_slice(&m);
        }
        if self.crc {
            let c = crc16(&out);
            out.extend_from_slice(&c.to_le_bytes());
        } else {
            let c = checksum(&out);
            out.push(c);
        }
        out
    }

    /// Encodes a packet without MAC.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(|_| [0; 4])
    }

    /// Decodes exactly one packet (no mark byte, no trailing bytes).
    pub fn decode(buf: &[u8]) -> Result<Decoded, PhyError> {
        if buf.first() != Some(&SOM) {
            return Err(PhyError::NoSom);
        }
        if buf.len() < HEADER + 2 {
            return Err(PhyError::Length(buf.len()));
        }
        let len = usize::from(u16::from_le_bytes([buf[2], buf[3]]));
        if len != buf.len() || !(HEADER + 2..=MAX_PACKET).contains(&len) {
            return Err(PhyError::Length(len));
        }
        let ctrl = buf[4];
        let crc = ctrl & CTRL_CRC != 0;
        let body_end = if crc {
            let got = u16::from_le_bytes([buf[len - 2], buf[len - 1]]);
            let want = crc16(&buf[..len - 2]);
            if got != want {
                return Err(PhyError::Crc { got, want });
            }
            len - 2
        } else {
            let got = buf[len - 1];
            let want = checksum(&buf[..len - 1]);
            if got != want {
                return Err(PhyError::Checksum { got, want });
            }
            len - 1
        };
        let mut pos = HEADER;
        let scb = if ctrl & CTRL_SCB != 0 {
            let scb_len = *buf.get(pos).ok_or(PhyError::NoCode)?;
            if scb_len < 2 || pos + usize::from(scb_len) > body_end {
                return Err(PhyError::Scb(scb_len));
            }
            let s = Scb {
                kind: buf[pos + 1],
                data: buf[pos + 2..pos + usize::from(scb_len)].to_vec(),
            };
            pos += usize::from(scb_len);
            Some(s)
        } else {
            None
        };
        let with_mac = scb.as_ref().is_some_and(Scb::has_mac);
        let data_end = if with_mac {
            body_end.checked_sub(4).ok_or(PhyError::NoCode)?
        } else {
            body_end
        };
        if pos >= data_end {
            return Err(PhyError::NoCode);
        }
        let code = buf[pos];
        let data = buf[pos + 1..data_end].to_vec();
        let mac = if with_mac {
            let mut m = [0u8; 4];
            m.copy_from_slice(&buf[data_end..body_end]);
            Some(m)
        } else {
            None
        };
        Ok(Decoded {
            packet: Packet {
                address: buf[1] & 0x7F,
                reply: buf[1] & 0x80 != 0,
                sqn: ctrl & CTRL_SQN,
                crc,
                scb,
                code,
                data,
                mac,
            },
            mac_input: buf[..data_end].to_vec(),
        })
    }
}

/// Cuts a byte stream into packets. Bytes before a SOM are skipped; a packet
/// that fails its check is reported and the scan resumes after its SOM, so one
/// corrupt packet costs only itself.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        // A stream of garbage without SOM must not grow the buffer without bound.
        if self.buf.len() > 4 * MAX_PACKET {
            let keep = self.buf.len() - MAX_PACKET;
            self.buf.drain(..keep);
        }
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The next complete packet, an error for a corrupt one, or None when more bytes are needed.
    pub fn next_packet(&mut self) -> Option<Result<Decoded, PhyError>> {
        let Some(start) = self.buf.iter().position(|&b| b == SOM) else {
            self.buf.clear();
            return None;
        };
        self.buf.drain(..start);
        if self.buf.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_le_bytes([self.buf[2], self.buf[3]]));
        if !(HEADER + 2..=MAX_PACKET).contains(&len) {
            self.buf.drain(..1);
            return Some(Err(PhyError::Length(len)));
        }
        if self.buf.len() < len {
            return None;
        }
        let decoded = Packet::decode(&self.buf[..len]);
        // A good packet is consumed whole; a bad one only up to its SOM, so a
        // real packet inside it is still found.
        let consumed = if decoded.is_ok() { len } else { 1 };
        self.buf.drain(..consumed);
        Some(decoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        // CRC-16/AUG-CCITT check value.
        assert_eq!(crc16(b"123456789"), 0xE5CC);
    }

    #[test]
    fn checksum_sums_to_zero() {
        let data = [0x53, 0x01, 0x08, 0x00, 0x00, 0x60];
        let c = checksum(&data);
        let sum = data.iter().fold(c, |a, b| a.wrapping_add(*b));
        assert_eq!(sum, 0);
    }

    #[test]
    fn poll_round_trip() {
        let p = Packet {
            address: 1,
            reply: false,
            sqn: 1,
            crc: true,
            scb: None,
            code: 0x60,
            data: vec![],
            mac: None,
        };
        let bytes = p.encode();
        assert_eq!(&bytes[..6], &[0x53, 0x01, 0x08, 0x00, 0x05, 0x60]);
        let d = Packet::decode(&bytes).unwrap();
        assert_eq!(d.packet, p);
    }

    #[test]
    fn mac_packet_round_trip() {
        let p = Packet {
            address: 5,
            reply: true,
            sqn: 2,
            crc: true,
            scb: Some(Scb {
                kind: scs::REPLY_ENC,
                data: vec![],
            }),
            code: 0x50,
            data: vec![1; 16],
            mac: Some([9, 8, 7, 6]),
        };
        let mut covered = Vec::new();
        let bytes = p.encode_with(|b| {
            covered = b.to_vec();
            [9, 8, 7, 6]
        });
        let d = Packet::decode(&bytes).unwrap();
        assert_eq!(d.packet, p);
        assert_eq!(d.mac_input, covered);
    }

    #[test]
    fn reader_skips_garbage_and_corrupt_packets() {
        let p = Packet {
            address: 3,
            reply: true,
            sqn: 1,
            crc: true,
            scb: None,
            code: 0x40,
            data: vec![],
            mac: None,
        };
        let good = p.encode();
        let mut bad = good.clone();
        bad[5] ^= 0xFF;
        let mut r = FrameReader::default();
        r.push(&[0x00, 0xFF, 0x12]);
        r.push(&bad);
        r.push(&[MARK]);
        r.push(&good[..4]);
        assert!(matches!(r.next_packet(), Some(Err(PhyError::Crc { .. }))));
        let mut seen = None;
        while let Some(x) = r.next_packet() {
            if let Ok(d) = x {
                seen = Some(d);
            }
        }
        assert!(seen.is_none(), "half a packet must wait");
        r.push(&good[4..]);
        let d = r.next_packet().unwrap().unwrap();
        assert_eq!(d.packet, p);
    }

    #[test]
    fn garbage_and_truncation_never_panic() {
        let p = Packet {
            address: 1,
            reply: true,
            sqn: 3,
            crc: true,
            scb: Some(Scb {
                kind: scs::REPLY_MAC,
                data: vec![],
            }),
            code: 0x45,
            data: vec![0; 12],
            mac: Some([1, 2, 3, 4]),
        }
        .encode();
        for cut in 0..p.len() {
            let _ = Packet::decode(&p[..cut]);
            let mut r = FrameReader::default();
            r.push(&p[..cut]);
            while r.next_packet().is_some() {}
        }
        let mut seed = 0x1234_5678u32;
        for _ in 0..2000 {
            let n = (seed % 64) as usize;
            let mut buf = Vec::with_capacity(n + 1);
            buf.push(SOM);
            for _ in 0..n {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                buf.push((seed >> 16) as u8);
            }
            let _ = Packet::decode(&buf);
            let mut r = FrameReader::default();
            r.push(&buf);
            while r.next_packet().is_some() {}
        }
    }
}
