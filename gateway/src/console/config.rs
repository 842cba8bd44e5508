//! `[console]`: the console's own config section and its checks.

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::settings::{check_file, resolve, Problem};

/// `[console]`: the guards' web console. Served only when the section is present.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSection {
    /// `ip:port` to serve on; loopback by default, so exposing it is a decision.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Serve HTTPS with this certificate chain (PEM); `tls_key_file` goes with it.
    pub tls_cert_file: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key_file: Option<PathBuf>,
    /// A login lasts this long (a shift and some), then the user logs in again.
    #[serde(default = "default_session_hours")]
    pub session_hours: u32,
    /// Failed logins per user, and per client address, within `login_lockout_s`
    /// before further attempts are refused for the rest of that window.
    #[serde(default = "default_login_max_failures")]
    pub login_max_failures: u32,
    #[serde(default = "default_login_lockout_s")]
    pub login_lockout_s: u64,
    /// Largest upload (a face photo, a person with photos), in KiB.
    #[serde(default = "default_max_upload_kib")]
    pub max_upload_kib: usize,
    #[serde(default)]
    pub users: Vec<ConsoleUser>,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            tls_cert_file: None,
            tls_key_file: None,
            session_hours: default_session_hours(),
            login_max_failures: default_login_max_failures(),
            login_lockout_s: default_login_lockout_s(),
            max_upload_kib: default_max_upload_kib(),
            users: Vec::new(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_session_hours() -> u32 {
    12
}
fn default_login_max_failures() -> u32 {
    5
}
fn default_login_lockout_s() -> u64 {
    300
}
fn default_max_upload_kib() -> usize {
    8 * 1024
}

/// `[[console.users]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleUser {
    pub name: String,
    pub role: Role,
    /// argon2 PHC string from `gatewayd hash-password`.
    pub password_hash: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Guard,
    Admin,
}

impl ConsoleSection {
    /// Checks what serde cannot; keys are relative to `[console]`.
    pub fn check(&self, base_dir: &Path) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            out.push(Problem::new(
                "listen",
                format!(
                    "`{}` is not an address like 127.0.0.1:8080 or [::1]:8080",
                    self.listen
                ),
            ));
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => {
                let (cert, key) = (resolve(base_dir, cert), resolve(base_dir, key));
                let before = out.len();
                out.extend(check_file("tls_cert_file", &cert));
                out.extend(check_file("tls_key_file", &key));
                if out.len() == before {
                    if let Err(e) = super::tls::server_config(&cert, &key) {
                        out.push(Problem::new(e.key(), e.to_string()));
                    }
                }
            }
            (None, None) => {}
            _ => out.push(Problem::new(
                "tls_cert_file",
                "tls_cert_file and tls_key_file go together",
            )),
        }
        if !(1..=720).contains(&self.session_hours) {
            out.push(Problem::new("session_hours", "must be between 1 and 720"));
        }
        if self.login_max_failures == 0 {
            out.push(Problem::new("login_max_failures", "must be at least 1"));
        }
        if !(1..=86_400).contains(&self.login_lockout_s) {
            out.push(Problem::new(
                "login_lockout_s",
                "must be between 1 and 86400",
            ));
        }
        if !(1..=65_536).contains(&self.max_upload_kib) {
            out.push(Problem::new(
                "max_upload_kib",
                "must be between 1 and 65536",
            ));
        }
        let mut users = std::collections::HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            let key = |k: &str| format!("users[{i}].{k}");
            if let Err(e) = super::auth::check_user_name(&u.name) {
                out.push(Problem::new(key("name"), e));
            } else if let Err(e) = crate::contract::ids::check_id("name", &u.name) {
                // Only ASCII: no look-alike of another user (a Cyrillic а).
                out.push(Problem::new(key("name"), e.to_string()));
            } else if !users.insert(u.name.as_str()) {
                out.push(Problem::new(
                    key("name"),
                    format!("duplicate user `{}`", u.name),
                ));
            }
            let usable = argon2::PasswordHash::new(&u.password_hash).is_ok_and(|h| {
                h.algorithm.as_str().starts_with("argon2") && h.salt.is_some() && h.hash.is_some()
            });
            if !usable {
                out.push(Problem::new(
                    key("password_hash"),
                    "must be an argon2 hash from `gatewayd hash-password`",
                ));
            }
        }
        out
    }

    /// The TLS files, resolved against the config's folder, when both are set.
    pub fn tls_files(&self, base_dir: &Path) -> Option<(PathBuf, PathBuf)> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(c), Some(k)) => Some((resolve(base_dir, c), resolve(base_dir, k))),
            _ => None,
        }
    }
}
