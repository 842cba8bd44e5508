//! Who is asking: the session extractors, CSRF and origin checks, and the
//! deny-by-default layer.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::super::config::Role;
use super::super::error::ApiError;
use super::super::AppState;
use super::{COOKIE, CSRF_HEADER};

/// The value of a cookie in the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// False when a browser says the request comes from another site or origin.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true; // not a browser, or a same-origin GET
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = origin.to_str().unwrap_or("null");
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// A logged-in user, checked on every request.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    pub(in crate::console) key: [u8; 32],
}

impl Session {
    /// As journaled in `by`: `console/guard1`.
    pub fn actor(&self) -> String {
        crate::engine::Actor::console(&self.user).to_string()
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        // Checked once by `require_session` already for every protected route.
        if let Some(s) = parts.extensions.get::<Session>() {
            return Ok(s.clone());
        }
        let token = cookie(&parts.headers, COOKIE).ok_or_else(ApiError::unauthenticated)?;
        let (key, data) = st
            .sessions
            .get(token)?
            .ok_or_else(ApiError::unauthenticated)?;
        // The user may have been removed or changed role since logging in.
        let Some(role) = st.users.role_of(&data.user)? else {
            st.sessions.remove(&key)?;
            return Err(ApiError::unauthenticated());
        };
        if !parts.method.is_safe() {
            if !same_origin(&parts.headers) {
                return Err(ApiError::forbidden("cross-origin writes are refused"));
            }
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !drivers::ct::ct_eq(sent, data.csrf.as_bytes()) {
                return Err(ApiError::forbidden(
                    "missing or wrong X-CSRF-Token header (reload the page)",
                ));
            }
        }
        Ok(Session {
            user: data.user,
            role,
            csrf: data.csrf,
            key,
        })
    }
}

/// The layer on every route but the explicit public ones (the page, its
/// assets, login, health, metrics: see `console::router`): a request without
/// a live session, or a write without its CSRF token, stops here, whatever
/// the handler asks for. A new route is protected unless it is added to the
/// public list on purpose.
pub async fn require_session(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match Session::from_request_parts(&mut parts, &st).await {
        Ok(session) => {
            parts.extensions.insert(session);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => e.into_response(),
    }
}

/// A logged-in admin.
pub struct Admin(pub Session);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let s = Session::from_request_parts(parts, st).await?;
        if s.role != Role::Admin {
            return Err(ApiError::forbidden("this needs the admin role"));
        }
        Ok(Admin(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn origin_checks() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn cookies_and_names() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; gw_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
