//! `[mqtt]`: the uplink's own config section and its checks.

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::contract::CommandName;
use crate::settings::{check_file, resolve, topic_safe, Problem, TOPIC_SAFE};

/// `[mqtt]`: the link to the community platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// `mqtt://host:port` or `mqtts://host:port` (TLS).
    pub url: String,
    /// Defaults to `gatewayd-{gateway.id}`.
    pub client_id: Option<String>,
    pub username: Option<String>,
    /// A file holding the password (never the password itself in the config).
    pub password_file: Option<PathBuf>,
    /// CA certificate(s) to trust for `mqtts://` (PEM); default: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for brokers that require them.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u64,
    /// QoS 1 messages in flight before waiting for PUBACKs.
    #[serde(default = "default_inflight")]
    pub inflight: u16,
    /// Platform commands this gateway accepts; others are refused as `unauthorized`.
    #[serde(default = "default_commands")]
    pub commands: Vec<String>,
    /// Largest command payload accepted, in KiB (a person with face photos is large).
    #[serde(default = "default_max_command_kib")]
    pub max_command_kib: usize,
    /// `"5"` (default) or `"3.1.1"`: see [`Protocol`].
    #[serde(default)]
    pub protocol: Protocol,
    /// Largest MQTT packet the gateway sends, in KiB. A record that would not
    /// fit is skipped, counted and reported by a `data_loss` alarm (inputs are
    /// bounded so that it should not happen); replies are shortened to fit.
    #[serde(default = "default_max_packet_kib")]
    pub max_packet_kib: usize,
}

/// The MQTT version spoken to the broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    /// MQTT 5 (mosquitto 2, EMQX, HiveMQ, VerneMQ): the gateway announces its
    /// maximum packet size, so the broker drops a message too large for it,
    /// and retained commands never reach it.
    #[default]
    #[serde(rename = "5")]
    V5,
    /// MQTT 3.1.1, for brokers without 5 (NATS): the broker must bound message
    /// sizes itself (mosquitto: `message_size_limit`), or one oversized
    /// retained command drops the link at every reconnect.
    #[serde(rename = "3.1.1")]
    V311,
}

fn default_prefix() -> String {
    "cm".into()
}
fn default_keep_alive() -> u64 {
    15
}
fn default_inflight() -> u16 {
    500
}
fn default_max_command_kib() -> usize {
    8 * 1024
}
fn default_max_packet_kib() -> usize {
    1024
}
fn default_commands() -> Vec<String> {
    CommandName::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
}

impl MqttSection {
    /// Checks what serde cannot; keys are relative to `[mqtt]`.
    pub fn check(&self, base_dir: &Path) -> Vec<Problem> {
        let mut out = Vec::new();
        if !(self.url.starts_with("mqtt://") || self.url.starts_with("mqtts://")) {
            out.push(Problem::new(
                "url",
                format!("`{}` must start with mqtt:// or mqtts://", self.url),
            ));
        }
        if !topic_safe(&self.topic_prefix) {
            out.push(Problem::new("topic_prefix", TOPIC_SAFE));
        }
        let files = [
            ("password_file", &self.password_file),
            ("ca_file", &self.ca_file),
            ("cert_file", &self.cert_file),
            ("key_file", &self.key_file),
        ];
        for (key, file) in files {
            if let Some(f) = file {
                out.extend(check_file(key, &resolve(base_dir, f)));
            }
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            out.push(Problem::new(
                "cert_file",
                "cert_file and key_file go together",
            ));
        }
        if self.password_file.is_some() && self.username.is_none() {
            out.push(Problem::new("password_file", "a password needs `username`"));
        }
        if self.max_packet_kib == 0 {
            out.push(Problem::new("max_packet_kib", "must be at least 1"));
        }
        if self.inflight == 0 {
            out.push(Problem::new("inflight", "must be at least 1"));
        }
        for (i, name) in self.commands.iter().enumerate() {
            if CommandName::parse(name).is_none() {
                out.push(Problem::new(
                    format!("commands[{i}]"),
                    format!("unknown command `{name}` (known: {})", CommandName::list()),
                ));
            }
        }
        out
    }
}

/// Who this gateway is on the platform's topics, and where its files are.
#[derive(Debug, Clone)]
pub struct Identity {
    pub estate: String,
    pub gateway: String,
    /// The config file's folder: relative paths in `[mqtt]` start there.
    pub base_dir: PathBuf,
}
