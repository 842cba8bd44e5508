//! Constant-time comparison of secrets, shared by the OSDP secure channel
//! (cryptograms, MACs) and the plate cameras' push secret. A leaf: it imports
//! nothing of this crate.

/// Compares two byte strings in time that depends only on their lengths: a
/// cryptogram, MAC or secret check must not leak how much of it matched.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::ct_eq;

    #[test]
    fn equal_only_when_every_byte_and_the_length_match() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret!"));
        assert!(!ct_eq(b"Secret", b"secret"));
    }
}
