//! MQTT connection options from `[mqtt]`: protocol version, URL, TLS (CA,
//! client certificate), username and password, packet sizes, the retained
//! status and its last will.

use rumqttc::{TlsConfiguration, Transport};
use std::time::Duration;

use super::client::{Common, Options};
use super::config::{Identity, MqttSection, Protocol};
use super::topics::Topics;
use super::UplinkError;
use crate::settings::resolve;

/// Debian's bundle of trusted roots, used for `mqtts://` without `ca_file`.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Host, port and whether TLS is used, from `mqtt://host:port` or `mqtts://host:port`.
pub fn parse_url(url: &str) -> Result<(String, u16, bool), UplinkError> {
    let bad = |why: &str| UplinkError::Config(format!("mqtt.url `{url}`: {why}"));
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        return Err(bad("must start with mqtt:// or mqtts://"));
    };
    let rest = rest.trim_end_matches('/');
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed [ in IPv6 host"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad("port is not a number"))?,
            None => default_port,
        };
        (host.to_owned(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse().map_err(|_| bad("port is not a number"))?,
            ),
            None => (rest.to_owned(), default_port),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok((host, port, tls))
}

fn read(id: &Identity, path: &std::path::Path, what: &str) -> Result<Vec<u8>, UplinkError> {
    let p = resolve(&id.base_dir, path);
    std::fs::read(&p).map_err(|e| UplinkError::Config(format!("mqtt.{what} {}: {e}", p.display())))
}

/// The largest packet we accept: a command up to `max_command_kib` with room
/// for its topic, so that a command a little too large is still answered
/// `too_large`; anything larger the broker drops for us (MQTT 5).
pub fn max_incoming(m: &MqttSection) -> u32 {
    let bytes = m.max_command_kib.saturating_mul(1024).saturating_mul(2) + 64 * 1024;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// The largest packet we send (`max_packet_kib`).
pub fn max_outgoing(m: &MqttSection) -> u32 {
    u32::try_from(m.max_packet_kib.saturating_mul(1024)).unwrap_or(u32::MAX)
}

/// Builds the client options.
pub fn options(m: &MqttSection, id: &Identity, topics: &Topics) -> Result<Options, UplinkError> {
    let (host, port, tls) = parse_url(&m.url)?;
    let client_id = m
        .client_id
        .clone()
        .unwrap_or_else(|| format!("gatewayd-{}", id.gateway));
    let credentials = match &m.username {
        Some(user) => {
            let password = match &m.password_file {
                Some(f) => String::from_utf8(read(id, f, "password_file")?)
                    .map_err(|_| UplinkError::Config("mqtt.password_file is not UTF-8".into()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
                None => String::new(),
            };
            Some((user.clone(), password))
        }
        None => None,
    };
    let transport = if tls {
        let ca = match &m.ca_file {
            Some(f) => read(id, f, "ca_file")?,
            None => std::fs::read(SYSTEM_ROOTS).map_err(|e| {
                UplinkError::Config(format!(
                    "mqtts:// without mqtt.ca_file needs the system roots at {SYSTEM_ROOTS}: {e}"
                ))
            })?,
        };
        let client_auth = match (&m.cert_file, &m.key_file) {
            (Some(c), Some(k)) => Some((read(id, c, "cert_file")?, read(id, k, "key_file")?)),
            _ => None,
        };
        Transport::Tls(TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth,
        })
    } else {
        Transport::Tcp
    };
    let common = Common {
        client_id,
        host,
        port,
        keep_alive: Duration::from_secs(m.keep_alive_s.max(5)),
        // Room for the alarm lane and replies beside a full window of events.
        inflight: m
            .inflight
            .max(1)
            .saturating_add(super::ALARM_WINDOW as u16 + 16),
        max_incoming: max_incoming(m),
        max_outgoing: max_outgoing(m),
        will_topic: topics.status(),
        will_payload: super::status_payload("offline"),
        credentials,
        transport,
    };
    Ok(Options::new(common, m.protocol == Protocol::V5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://localhost:1884").unwrap(),
            ("localhost".into(), 1884, false)
        );
        assert_eq!(
            parse_url("mqtts://broker.example").unwrap(),
            ("broker.example".into(), 8883, true)
        );
        assert_eq!(
            parse_url("mqtt://[::1]:1999").unwrap(),
            ("::1".into(), 1999, false)
        );
        assert!(parse_url("tcp://x").is_err());
        assert!(parse_url("mqtt://:1883").is_err());
        assert!(parse_url("mqtt://h:port").is_err());
    }
}
