//! Keys of a `driver = "lpr-http"` device: a barrier camera that pushes plate
//! results to the gateway's plate endpoint.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::driver::ConfigProblem;

/// `driver = "lpr-http"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LprHttpConfig {
    /// Where the plate endpoint listens; cameras with the same `listen` share it.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A file holding this camera's shared secret (sent as `Authorization:
    /// Bearer ...` or `X-Camera-Secret`; never in the URL, where proxies log it).
    pub secret_file: PathBuf,
    /// Largest push accepted, in MiB (a JPEG of a vehicle is well under 1).
    #[serde(default = "default_max_body_mb")]
    pub max_body_mb: u32,
    /// Report the camera offline when nothing (push or heartbeat) arrived for
    /// this long; 0: online while the endpoint listens.
    #[serde(default)]
    pub heartbeat_timeout_s: f64,
    /// Open connections the listener takes, from all cameras and strangers;
    /// more are closed at once. The first camera to bind `listen` sets this
    /// and the next two for everyone on it.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections from one client address (an IPv6 /64).
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
    /// A push's body must have arrived this long after its head, in seconds.
    #[serde(default = "default_body_timeout_s")]
    pub body_timeout_s: u64,
    /// Refused pushes are journaled as one summary (counts by reason) this
    /// many seconds after the first refusal it counts, not one by one.
    #[serde(default = "default_refusal_summary_s")]
    pub refusal_summary_s: u64,
}

/// The head of a request (and the wait for the next on a kept-alive
/// connection) must arrive within this; not a key: cameras send small heads.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with no traffic for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

fn default_listen() -> String {
    "0.0.0.0:8081".into()
}
fn default_max_body_mb() -> u32 {
    8
}
fn default_max_connections() -> usize {
    64
}
fn default_max_connections_per_address() -> usize {
    8
}
fn default_body_timeout_s() -> u64 {
    10
}
fn default_refusal_summary_s() -> u64 {
    60
}

impl LprHttpConfig {
    pub fn secret_path(&self, config_dir: &Path) -> PathBuf {
        if self.secret_file.is_absolute() {
            self.secret_file.clone()
        } else {
            config_dir.join(&self.secret_file)
        }
    }

    pub fn read_secret(&self, config_dir: &Path) -> Result<String, String> {
        let p = self.secret_path(config_dir);
        let s =
            std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        let s = s.trim().to_owned();
        if s.len() < 8 {
            return Err(format!(
                "{}: the secret must have at least 8 characters",
                p.display()
            ));
        }
        Ok(s)
    }

    pub fn heartbeat_timeout(&self) -> Option<Duration> {
        (self.heartbeat_timeout_s > 0.0)
            .then(|| Duration::try_from_secs_f64(self.heartbeat_timeout_s).ok())
            .flatten()
    }

    /// The listener's limits (when this camera is the one that binds it).
    pub fn limits(&self) -> crate::httpserve::Limits {
        crate::httpserve::Limits {
            max_connections: self.max_connections,
            max_per_address: self.max_connections_per_address,
            header_timeout: HEADER_TIMEOUT,
            body_timeout: Duration::from_secs(self.body_timeout_s),
            idle_timeout: IDLE_TIMEOUT,
        }
    }

    pub fn max_body(&self) -> usize {
        self.max_body_mb as usize * 1024 * 1024
    }

    pub fn validate(&self, config_dir: &Path) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            out.push(ConfigProblem::new(
                "listen",
                format!("`{}` is not ip:port", self.listen),
            ));
        }
        if let Err(e) = self.read_secret(config_dir) {
            out.push(ConfigProblem::new("secret_file", e));
        }
        if !(1..=64).contains(&self.max_body_mb) {
            out.push(ConfigProblem::new("max_body_mb", "must be 1..=64"));
        }
        if !(1..=10_000).contains(&self.max_connections) {
            out.push(ConfigProblem::new("max_connections", "must be 1..=10000"));
        }
        if !(1..=self.max_connections.max(1)).contains(&self.max_connections_per_address) {
            out.push(ConfigProblem::new(
                "max_connections_per_address",
                "must be 1..=max_connections",
            ));
        }
        if !(1..=600).contains(&self.body_timeout_s) {
            out.push(ConfigProblem::new("body_timeout_s", "must be 1..=600"));
        }
        if !(1..=3600).contains(&self.refusal_summary_s) {
            out.push(ConfigProblem::new("refusal_summary_s", "must be 1..=3600"));
        }
        if !self.heartbeat_timeout_s.is_finite() || self.heartbeat_timeout_s < 0.0 {
            out.push(ConfigProblem::new(
                "heartbeat_timeout_s",
                "must be a non-negative number",
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_limits_have_defaults_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s"), "a-secret-123").unwrap();
        let parse = |extra: &str| -> LprHttpConfig {
            toml::from_str(&format!("secret_file = \"s\"\n{extra}")).unwrap()
        };
        let c = parse("");
        assert!(c.validate(dir.path()).is_empty());
        let l = c.limits();
        assert_eq!((l.max_connections, l.max_per_address), (64, 8));
        assert_eq!(l.body_timeout, Duration::from_secs(10));
        assert_eq!(c.refusal_summary_s, 60);
        let bad = parse(
            "max_connections = 4\nmax_connections_per_address = 5\nbody_timeout_s = 0\nrefusal_summary_s = 0",
        );
        let keys: Vec<String> = bad
            .validate(dir.path())
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(
            keys,
            [
                "max_connections_per_address",
                "body_timeout_s",
                "refusal_summary_s"
            ]
        );
    }
}
