//! Card data from a reader's osdp_RAW reply: Wiegand 26 (8-bit facility, 16-bit
//! number) and 34 (16-bit facility, 16-bit number) with their parity bits
//! checked; any other length is kept as the raw number.

use thiserror::Error;

/// A decoded card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    /// The card number, as the roster stores it (decimal).
    pub number: u128,
    pub facility: Option<u32>,
    /// `wiegand26`, `wiegand34` or `raw`.
    pub format: &'static str,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CardError {
    #[error("{0}-bit card: parity error (misread)")]
    Parity(u16),
    #[error("card data has no bits")]
    Empty,
    #[error("{0}-bit card data is longer than 128 bits")]
    TooLong(u16),
    #[error("card data has {have} bytes for {bits} bits")]
    Short { bits: u16, have: usize },
}

fn bit(data: &[u8], i: usize) -> u8 {
    (data[i / 8] >> (7 - i % 8)) & 1
}

fn field(data: &[u8], from: usize, to: usize) -> u128 {
    (from..to).fold(0u128, |acc, i| (acc << 1) | u128::from(bit(data, i)))
}

fn ones(data: &[u8], from: usize, to: usize) -> u32 {
    (from..to).map(|i| u32::from(bit(data, i))).sum()
}

/// Decodes `bits` bits of card data (MSB first).
pub fn decode(bits: u16, data: &[u8]) -> Result<Card, CardError> {
    let n = usize::from(bits);
    if n == 0 {
        return Err(CardError::Empty);
    }
    if data.len() * 8 < n {
        return Err(CardError::Short {
            bits,
            have: data.len(),
        });
    }
    match n {
        // Even parity over the first half, odd parity over the second.
        26 | 34 => {
            let half = n / 2;
            if !ones(data, 0, half).is_multiple_of(2) || ones(data, half, n).is_multiple_of(2) {
                return Err(CardError::Parity(bits));
            }
            let fac_bits = if n == 26 { 8 } else { 16 };
            Ok(Card {
                facility: Some(field(data, 1, 1 + fac_bits) as u32),
                number: field(data, 1 + fac_bits, n - 1),
                format: if n == 26 { "wiegand26" } else { "wiegand34" },
            })
        }
        _ if n > 128 => Err(CardError::TooLong(bits)),
        _ => Ok(Card {
            number: field(data, 0, n),
            facility: None,
            format: "raw",
        }),
    }
}

/// Encodes a Wiegand 26 or 34 card (for tests and the benchmark's reader).
pub fn encode_wiegand(bits: u16, facility: u32, number: u32) -> Vec<u8> {
    let n = usize::from(bits);
    let fac_bits = if n == 26 { 8 } else { 16 };
    let mut v = vec![0u8; n];
    for i in 0..fac_bits {
        v[1 + i] = ((facility >> (fac_bits - 1 - i)) & 1) as u8;
    }
    for i in 0..16 {
        v[1 + fac_bits + i] = ((number >> (15 - i)) & 1) as u8;
    }
    let half = n / 2;
    v[0] = v[1..half].iter().sum::<u8>() % 2;
    v[n - 1] = 1 - v[half..n - 1].iter().sum::<u8>() % 2;
    let mut out = vec![0u8; n.div_ceil(8)];
    for (i, b) in v.iter().enumerate() {
        out[i / 8] |= b << (7 - i % 8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiegand26_round_trip() {
        let d = encode_wiegand(26, 123, 45678);
        let c = decode(26, &d).unwrap();
        assert_eq!(c.facility, Some(123));
        assert_eq!(c.number, 45678);
        assert_eq!(c.format, "wiegand26");
    }

    #[test]
    fn wiegand26_known_card() {
        // Facility 1, card 1: 0 00000001 0000000000000001 0 → parity bits 1 and 0.
        // bits: 1 00000001 0000000000000001 0
        let bits = "10000000100000000000000010";
        let mut d = vec![0u8; 4];
        for (i, c) in bits.chars().enumerate() {
            if c == '1' {
                d[i / 8] |= 1 << (7 - i % 8);
            }
        }
        let c = decode(26, &d).unwrap();
        assert_eq!((c.facility, c.number), (Some(1), 1));
    }

    #[test]
    fn wiegand34_round_trip_and_parity() {
        let d = encode_wiegand(34, 40001, 65535);
        let c = decode(34, &d).unwrap();
        assert_eq!((c.facility, c.number), (Some(40001), 65535));
        let mut bad = d.clone();
        bad[1] ^= 0x10;
        assert_eq!(decode(34, &bad), Err(CardError::Parity(34)));
    }

    #[test]
    fn other_lengths_are_raw() {
        let c = decode(16, &[0x55, 0xAA]).unwrap();
        assert_eq!(c.number, 0x55AA);
        assert_eq!(c.format, "raw");
        assert!(decode(0, &[]).is_err());
        assert!(decode(200, &[0; 25]).is_err());
        assert!(decode(26, &[0; 3]).is_err());
    }
}
