//! The OSDP secure channel (AES-128): session keys derived from the SCBK and the
//! CP's random number, the two cryptograms of the handshake, the MAC chained
//! through every command and reply, and the encryption of their data.
//!
//! Handshake: CP sends RND.A (osdp_CHLNG); the PD answers its cUID, RND.B and
//! a client cryptogram (osdp_CCRYPT) which proves it holds the same key; the CP
//! answers its server cryptogram (osdp_SCRYPT) and the PD the initial R-MAC
//! (osdp_RMAC_I). Each later command's MAC starts from the last reply's MAC and
//! each reply's from the last command's, so a replayed or dropped packet breaks
//! the chain.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes128;
use thiserror::Error;

use crate::ct::ct_eq;

/// A 128-bit secure channel base key.
pub type Key = [u8; 16];

/// SCBK-D, the spec's well-known default key: only for install mode.
pub const SCBK_D: Key = [
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F,
];

const EOM: u8 = 0x80;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScError {
    #[error("encrypted data is {0} bytes, not a multiple of 16")]
    BlockLength(usize),
    #[error("decrypted data has no end-of-message marker")]
    Padding,
}

fn aes_encrypt(key: &Key, block: &mut [u8; 16]) {
    let cipher = Aes128::new(GenericArray::from_slice(key));
    cipher.encrypt_block(GenericArray::from_mut_slice(block));
}

fn aes_decrypt(key: &Key, block: &mut [u8; 16]) {
    let cipher = Aes128::new(GenericArray::from_slice(key));
    cipher.decrypt_block(GenericArray::from_mut_slice(block));
}

fn derive(scbk: &Key, kind: [u8; 2], rnd_a: &[u8; 8]) -> Key {
    let mut k = [0u8; 16];
    k[..2].copy_from_slice(&kind);
    k[2..8].copy_from_slice(&rnd_a[..6]);
    aes_encrypt(scbk, &mut k);
    k
}

/// The keys and MAC chain of one secure session with one PD.
#[derive(Clone)]
pub struct Session {
    s_enc: Key,
    s_mac1: Key,
    s_mac2: Key,
    /// MAC of the last command sent.
    c_mac: [u8; 16],
    /// MAC of the last reply received (R-MAC-I right after the handshake).
    r_mac: [u8; 16],
}

impl Session {
    /// Session keys for the CP random number `rnd_a` under `scbk`.
    pub fn new(scbk: &Key, rnd_a: &[u8; 8]) -> Session {
        Session {
            s_enc: derive(scbk, [0x01, 0x82], rnd_a),
            s_mac1: derive(scbk, [0x01, 0x01], rnd_a),
            s_mac2: derive(scbk, [0x01, 0x02], rnd_a),
            c_mac: [0; 16],
            r_mac: [0; 16],
        }
    }

    fn crypt(&self, first: &[u8; 8], second: &[u8; 8]) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(first);
        b[8..].copy_from_slice(second);
        aes_encrypt(&self.s_enc, &mut b);
        b
    }

    /// The PD's proof of the key: AES(S-ENC, RND.A ‖ RND.B).
    pub fn client_cryptogram(&self, rnd_a: &[u8; 8], rnd_b: &[u8; 8]) -> [u8; 16] {
        self.crypt(rnd_a, rnd_b)
    }

    /// The CP's proof of the key: AES(S-ENC, RND.B ‖ RND.A).
    pub fn server_cryptogram(&self, rnd_a: &[u8; 8], rnd_b: &[u8; 8]) -> [u8; 16] {
        self.crypt(rnd_b, rnd_a)
    }

    /// The initial R-MAC: AES(S-MAC2, AES(S-MAC1, server cryptogram)).
    pub fn initial_rmac(&self, server_cryptogram: &[u8; 16]) -> [u8; 16] {
        let mut b = *server_cryptogram;
        aes_encrypt(&self.s_mac1, &mut b);
        aes_encrypt(&self.s_mac2, &mut b);
        b
    }

    /// Starts the MAC chain (after a verified osdp_RMAC_I).
    pub fn activate(&mut self, rmac_i: [u8; 16]) {
        self.r_mac = rmac_i;
    }

    /// CBC-MAC of a packet: S-MAC1 over all blocks but the last, S-MAC2 over the
    /// last; a message that is not block-aligned is padded with 0x80 and zeros.
    fn mac(&self, iv: &[u8; 16], msg: &[u8]) -> [u8; 16] {
        let mut chain = *iv;
        let full = msg.len() / 16;
        let rem = msg.len() % 16;
        let blocks = if rem == 0 { full.max(1) } else { full + 1 };
        for i in 0..blocks {
            let mut block = [0u8; 16];
            let chunk = &msg[(i * 16).min(msg.len())..((i + 1) * 16).min(msg.len())];
            block[..chunk.len()].copy_from_slice(chunk);
            if chunk.len() < 16 {
                block[chunk.len()] = EOM;
            }
            for (b, c) in block.iter_mut().zip(chain.iter()) {
                *b ^= c;
            }
            let key = if i + 1 == blocks {
                &self.s_mac2
            } else {
                &self.s_mac1
            };
            aes_encrypt(key, &mut block);
            chain = block;
        }
        chain
    }

    /// MAC for a command the CP sends; advances the chain.
    pub fn command_mac(&mut self, msg: &[u8]) -> [u8; 4] {
        self.c_mac = self.mac(&self.r_mac, msg);
        let mut m = [0u8; 4];
        m.copy_from_slice(&self.c_mac[..4]);
        m
    }

    /// Checks a reply's MAC; on success the chain advances.
    pub fn verify_reply_mac(&mut self, msg: &[u8], mac: &[u8; 4]) -> bool {
        let m = self.mac(&self.c_mac, msg);
        if ct_eq(&m[..4], mac) {
            self.r_mac = m;
            true
        } else {
            false
        }
    }

    /// Encrypts command data: 0x80 and zero padding, AES-CBC under S-ENC with
    /// the inverted last R-MAC as IV.
    pub fn encrypt_command(&self, data: &[u8]) -> Vec<u8> {
        let mut buf = data.to_vec();
        buf.push(EOM);
        while !buf.len().is_multiple_of(16) {
            buf.push(0);
        }
        let mut chain = self.r_mac.map(|b| !b);
        for block in buf.chunks_mut(16) {
            let mut b = [0u8; 16];
            for i in 0..16 {
                b[i] = block[i] ^ chain[i];
            }
            aes_encrypt(&self.s_enc, &mut b);
            block.copy_from_slice(&b);
            chain = b;
        }
        buf
    }

    /// Decrypts reply data (IV: the inverted MAC of the command it answers).
    pub fn decrypt_reply(&self, data: &[u8]) -> Result<Vec<u8>, ScError> {
        decrypt_cbc(&self.s_enc, &self.c_mac.map(|b| !b), data)
    }

    /// Decrypts command data as a PD would (for tests of the round trip).
    pub fn decrypt_command(&self, data: &[u8]) -> Result<Vec<u8>, ScError> {
        decrypt_cbc(&self.s_enc, &self.r_mac.map(|b| !b), data)
    }
}

fn decrypt_cbc(key: &Key, iv: &[u8; 16], data: &[u8]) -> Result<Vec<u8>, ScError> {
    if !data.len().is_multiple_of(16) || data.is_empty() {
        return Err(ScError::BlockLength(data.len()));
    }
    let mut out = Vec::with_capacity(data.len());
    let mut chain = *iv;
    for block in data.chunks(16) {
        let mut b = [0u8; 16];
        b.copy_from_slice(block);
        let cipher_block = b;
        aes_decrypt(key, &mut b);
        for i in 0..16 {
            b[i] ^= chain[i];
        }
        out.extend_from_slice(&b);
        chain = cipher_block;
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    if out.pop() != Some(EOM) {
        return Err(ScError::Padding);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_known_answer() {
        // FIPS-197 appendix C.1.
        let key: Key = core::array::from_fn(|i| i as u8);
        let mut b: [u8; 16] = core::array::from_fn(|i| (i as u8) * 0x11);
        aes_encrypt(&key, &mut b);
        assert_eq!(
            b,
            [
                0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
                0xc5, 0x5a
            ]
        );
    }

    #[test]
    fn handshake_agrees_on_both_sides() {
        let key = [7u8; 16];
        let rnd_a = [1, 2, 3, 4, 5, 6, 7, 8];
        let rnd_b = [9, 10, 11, 12, 13, 14, 15, 16];
        let cp = Session::new(&key, &rnd_a);
        let pd = Session::new(&key, &rnd_a);
        assert_eq!(
            cp.client_cryptogram(&rnd_a, &rnd_b),
            pd.client_cryptogram(&rnd_a, &rnd_b)
        );
        let wrong = Session::new(&[8u8; 16], &rnd_a);
        assert!(!ct_eq(
            &cp.client_cryptogram(&rnd_a, &rnd_b),
            &wrong.client_cryptogram(&rnd_a, &rnd_b)
        ));
    }

    #[test]
    fn encryption_round_trips_and_checks_padding() {
        let mut s = Session::new(&SCBK_D, &[0; 8]);
        s.activate([3; 16]);
        for n in [0usize, 1, 15, 16, 17, 40] {
            let data: Vec<u8> = (0..n as u8).collect();
            let enc = s.encrypt_command(&data);
            assert_eq!(enc.len() % 16, 0);
            assert_eq!(s.decrypt_command(&enc).unwrap(), data);
        }
        assert_eq!(s.decrypt_reply(&[0; 15]), Err(ScError::BlockLength(15)));
        assert!(s.decrypt_reply(&[0; 16]).is_err());
    }

    #[test]
    fn mac_chain_detects_a_changed_byte() {
        let mut cp = Session::new(&[5; 16], &[1; 8]);
        cp.activate([2; 16]);
        let mut pd = cp.clone();
        let cmd = b"command bytes that span more than one block";
        let m = cp.command_mac(cmd);
        // The PD verifies with the same chain state.
        let pd_m = pd.mac(&pd.r_mac, cmd);
        assert_eq!(&pd_m[..4], &m);
        pd.c_mac = pd_m;
        let reply = b"reply";
        let r = pd.mac(&pd.c_mac, reply);
        let mut mac4 = [0u8; 4];
        mac4.copy_from_slice(&r[..4]);
        assert!(!cp.clone().verify_reply_mac(b"replz", &mac4));
        assert!(cp.verify_reply_mac(reply, &mac4));
    }
}
