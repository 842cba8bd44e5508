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
    /// Failed logins of one user from one client address (an address: four
    /// times as many over all names) before that pair is slowed down: each
    /// further failure doubles its wait, from 1 s up to `login_max_delay_s`.
    /// A right password from an address without failures is never delayed.
    #[serde(default = "default_login_max_failures")]
    pub login_max_failures: u32,
    /// Failures older than this are forgotten (the old name `login_lockout_s`
    /// is read as this).
    #[serde(default = "default_login_forget_s", alias = "login_lockout_s")]
    pub login_forget_s: u64,
    #[serde(default = "default_login_max_delay_s")]
    pub login_max_delay_s: u64,
    /// Host names (without port) the console answers to besides IP
    /// literals and `localhost`: a page on another name reaching it through
    /// DNS rebinding gets 421. `*.example.lan` allows the subdomains.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Open connections the console takes; more are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections from one client address (an IPv6 /64). A browser
    /// keeps about 6 per tab, plus one per live feed.
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
    /// Seconds for the TLS handshake and each request head; also how long
    /// a kept-alive connection may wait for its next request.
    #[serde(default = "default_header_timeout_s")]
    pub header_timeout_s: u64,
    /// Seconds for a request body after its head (an upload of
    /// `max_upload_kib` must fit).
    #[serde(default = "default_body_timeout_s")]
    pub body_timeout_s: u64,
    /// Seconds without a byte either way before a connection is closed (the
    /// live feed sends a keep-alive every 15 s).
    #[serde(default = "default_idle_timeout_s")]
    pub idle_timeout_s: u64,
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
            login_forget_s: default_login_forget_s(),
            login_max_delay_s: default_login_max_delay_s(),
            allowed_hosts: Vec::new(),
            max_connections: default_max_connections(),
            max_connections_per_address: default_max_connections_per_address(),
            header_timeout_s: default_header_timeout_s(),
            body_timeout_s: default_body_timeout_s(),
            idle_timeout_s: default_idle_timeout_s(),
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
fn default_login_forget_s() -> u64 {
    900
}
fn default_login_max_delay_s() -> u64 {
    60
}
fn default_max_connections() -> usize {
    256
}
fn default_max_connections_per_address() -> usize {
    32
}
fn default_header_timeout_s() -> u64 {
    10
}
fn default_body_timeout_s() -> u64 {
    10
}
fn default_idle_timeout_s() -> u64 {
    60
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
        if !(1..=86_400).contains(&self.login_forget_s) {
            out.push(Problem::new(
                "login_forget_s",
                "must be between 1 and 86400",
            ));
        }
        if !(1..=3_600).contains(&self.login_max_delay_s) {
            out.push(Problem::new(
                "login_max_delay_s",
                "must be between 1 and 3600",
            ));
        }
        for (i, h) in self.allowed_hosts.iter().enumerate() {
            if let Err(e) = super::host::check_pattern(h) {
                out.push(Problem::new(format!("allowed_hosts[{i}]"), e));
            }
        }
        if !(1..=10_000).contains(&self.max_connections) {
            out.push(Problem::new(
                "max_connections",
                "must be between 1 and 10000",
            ));
        }
        if !(1..=self.max_connections.max(1)).contains(&self.max_connections_per_address) {
            out.push(Problem::new(
                "max_connections_per_address",
                "must be between 1 and max_connections",
            ));
        }
        for (key, v) in [
            ("header_timeout_s", self.header_timeout_s),
            ("body_timeout_s", self.body_timeout_s),
            ("idle_timeout_s", self.idle_timeout_s),
        ] {
            if !(1..=3_600).contains(&v) {
                out.push(Problem::new(key, "must be between 1 and 3600"));
            }
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

    /// The listener's connection caps and timeouts.
    pub fn limits(&self) -> drivers::httpserve::Limits {
        use std::time::Duration;
        drivers::httpserve::Limits {
            max_connections: self.max_connections,
            max_per_address: self.max_connections_per_address,
            header_timeout: Duration::from_secs(self.header_timeout_s),
            body_timeout: Duration::from_secs(self.body_timeout_s),
            idle_timeout: Duration::from_secs(self.idle_timeout_s),
        }
    }

    /// The TLS files, resolved against the config's folder, when both are set.
    pub fn tls_files(&self, base_dir: &Path) -> Option<(PathBuf, PathBuf)> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(c), Some(k)) => Some((resolve(base_dir, c), resolve(base_dir, k))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let s: ConsoleSection = toml::from_str(text).unwrap();
        s.check(Path::new("/"))
            .into_iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect()
    }

    #[test]
    fn defaults_pass_and_the_old_lockout_key_still_reads() {
        assert!(problems("").is_empty(), "{:?}", problems(""));
        let s: ConsoleSection = toml::from_str("login_lockout_s = 120").unwrap();
        assert_eq!(s.login_forget_s, 120);
        assert_eq!(s.limits(), drivers::httpserve::Limits::default());
    }

    #[test]
    fn limits_and_host_names_are_checked() {
        let p = problems(
            "max_connections = 0\nmax_connections_per_address = 5\nbody_timeout_s = 0\nlogin_max_delay_s = 0\nallowed_hosts = [\"ok.lan\", \"evil.example:80\"]",
        )
        .join("\n");
        for key in [
            "max_connections:",
            "max_connections_per_address",
            "body_timeout_s",
            "login_max_delay_s",
            "allowed_hosts[1]",
        ] {
            assert!(p.contains(key), "{key} not in {p}");
        }
        assert!(!p.contains("allowed_hosts[0]"), "{p}");
    }
}
