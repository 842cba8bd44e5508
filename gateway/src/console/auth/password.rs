//! User names, password rules and argon2 hashes.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use rand::RngCore;
use std::sync::OnceLock;

/// User names: 1-64 letters, digits and `._-@`.
pub fn check_user_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > 64 {
        return Err("must be 1-64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(format!(
            "`{name}` may only have letters, digits and . _ - @"
        ));
    }
    Ok(())
}

/// New passwords: at least 8 characters (as `gatewayd hash-password`).
pub fn check_new_password(p: &str) -> Result<(), String> {
    match p.chars().count() {
        0..=7 => Err("use at least 8 characters".into()),
        129.. => Err("use at most 128 characters".into()),
        _ => Ok(()),
    }
}

/// An argon2id PHC string, as `gatewayd hash-password` prints.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// Checks a password against a PHC string (slow on purpose: run it off the runtime).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to check unknown users against, so that they take as long as known ones.
pub(super) fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let mut p = [0u8; 16];
        OsRng.fill_bytes(&mut p);
        hash_password(&hex::encode(p)).unwrap_or_default()
    })
}

pub(super) fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert!(check_user_name("guard1").is_ok());
        assert!(check_user_name("王保安").is_ok());
        assert!(check_user_name("a b").is_err());
        assert!(check_user_name("").is_err());
    }

    #[test]
    fn passwords_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "wrong horse"));
        assert!(!verify_password("not a hash", "x"));
        assert!(check_new_password("short").is_err());
    }
}
