//! The `Host` check (DNS rebinding defence): a page on `evil.example` whose
//! name an attacker re-points at the gateway's address could otherwise read
//! the console as a same-origin page of its own (`/metrics`, `/healthz`, and
//! a login typed there). Browsers send that name as `Host`, so the console
//! answers only to IP literals, `localhost` and the names in
//! `[console] allowed_hosts`; anything else gets 421, no request without a
//! `Host` gets past either.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use drivers::logsafe::Escaped;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::ApiError;
use super::AppState;

/// Checks an `allowed_hosts` entry: a DNS name, or `*.` and one.
pub fn check_pattern(p: &str) -> Result<(), String> {
    let name = p.strip_prefix("*.").unwrap_or(p);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a host name (letters, digits, `-` and dots, without port; `*.name` for its subdomains)",
            Escaped(p)
        ))
    }
}

/// The host of a `Host` value, lowercased, without port or final dot; `None`
/// when it is not a host at all.
fn host_part(value: &str) -> Option<String> {
    let v = value.trim();
    if let Some(rest) = v.strip_prefix('[') {
        // An IPv6 literal, with an optional port after the bracket.
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
        return (port_ok && inside.parse::<Ipv6Addr>().is_ok()).then(|| format!("[{inside}]"));
    }
    let host = match v.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        Some(_) => return None,
        None => v,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Whether the console answers to `value` (a `Host` header).
pub fn allowed(value: &str, allowed_hosts: &[String]) -> bool {
    let Some(host) = host_part(value) else {
        return false;
    };
    if host.starts_with('[') || host.parse::<Ipv4Addr>().is_ok() || host == "localhost" {
        return true;
    }
    allowed_hosts.iter().any(|p| {
        let p = p.to_ascii_lowercase();
        match p.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => host == p,
        }
    })
}

/// The layer in front of every route, public ones included.
pub async fn check(State(st): State<AppState>, req: Request, next: Next) -> Response {
    // An absolute-form request target names its host too; it must agree.
    let from_uri = req.uri().authority().map(|a| a.as_str().to_owned());
    let value = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(from_uri.clone());
    let Some(value) = value else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_host",
            "the request has no Host header",
        )
        .into_response();
    };
    let uri_ok = from_uri.is_none_or(|u| allowed(&u, &st.section.allowed_hosts));
    if !allowed(&value, &st.section.allowed_hosts) || !uri_ok {
        tracing::debug!(host = %Escaped(&value), "console: request for another host refused");
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "bad_host",
            "this console does not answer to that host name; an installer can add it to [console] allowed_hosts",
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_and_localhost_are_always_allowed() {
        for h in [
            "127.0.0.1:8080",
            "192.168.1.20",
            "[::1]:8080",
            "[fe80::1]",
            "localhost",
            "LOCALHOST:443",
            "localhost.",
        ] {
            assert!(allowed(h, &[]), "{h}");
        }
    }

    #[test]
    fn other_names_only_when_listed() {
        let list = vec!["console.estate.lan".to_owned(), "*.gw.example".to_owned()];
        assert!(allowed("console.estate.lan", &list));
        assert!(allowed("Console.Estate.LAN:8443", &list));
        assert!(allowed("a.gw.example", &list));
        assert!(!allowed("gw.example", &list));
        assert!(!allowed("evilgw.example", &list));
        assert!(!allowed("evil.example", &list));
        assert!(!allowed("evil.example", &[]));
        assert!(!allowed("localhost.evil.example", &list));
        assert!(!allowed("127.0.0.1.evil.example", &list));
        assert!(!allowed("", &list));
        assert!(!allowed("[::1", &list));
        assert!(!allowed("a:b:c", &list));
        assert!(!allowed("[::1]x", &list));
    }

    #[test]
    fn patterns_are_checked() {
        assert!(check_pattern("console.estate.lan").is_ok());
        assert!(check_pattern("*.estate.lan").is_ok());
        for bad in ["", "*.", "a..b", "host:8080", "http://x", "a b", "*"] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }
}
