//! MQTT connection options from `[mqtt]`: URL, TLS (CA, client certificate),
//! username and password, the retained status and its last will.

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use std::time::Duration;

use super::config::{Identity, MqttSection};
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

/// Builds the client options.
pub fn options(
    m: &MqttSection,
    id: &Identity,
    topics: &Topics,
) -> Result<MqttOptions, UplinkError> {
    let (host, port, tls) = parse_url(&m.url)?;
    let client_id = m
        .client_id
        .clone()
        .unwrap_or_else(|| format!("gatewayd-{}", id.gateway));
    let mut o = MqttOptions::new(client_id, host, port);
    o.set_keep_alive(Duration::from_secs(m.keep_alive_s.max(5)));
    // A clean session: after a reconnect the outbox resends from its cursor.
    o.set_clean_session(true);
    // Room for the alarm lane and replies beside a full window of events.
    o.set_inflight(
        m.inflight
            .max(1)
            .saturating_add(super::ALARM_WINDOW as u16 + 16),
    );
    // Commands with face photos are large; our own limit answers `too_large`,
    // this one only protects against absurd packets.
    let incoming = m.max_command_kib * 1024 * 2 + 64 * 1024;
    o.set_max_packet_size(incoming, 1024 * 1024);
    o.set_last_will(LastWill::new(
        topics.status(),
        super::status_payload("offline"),
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(user) = &m.username {
        let password = match &m.password_file {
            Some(f) => String::from_utf8(read(id, f, "password_file")?)
                .map_err(|_| UplinkError::Config("mqtt.password_file is not UTF-8".into()))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            None => String::new(),
        };
        o.set_credentials(user.clone(), password);
    }
    if tls {
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
        o.set_transport(Transport::Tls(TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth,
        }));
    }
    Ok(o)
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
