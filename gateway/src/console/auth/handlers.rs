//! Logging in and out.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::super::config::Role;
use super::super::error::{parse_json, read_body, require_json, ApiError};
use super::super::AppState;
use super::password::dummy_hash;
use super::*;
use drivers::logsafe::Escaped;

/// What the page learns about its user.
#[derive(Serialize)]
pub struct Me {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    pub expires: DateTime<Utc>,
    /// Largest upload accepted, so the page can refuse a big photo before sending it.
    pub max_upload_kib: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginIn {
    user: String,
    password: String,
}

fn session_cookie(st: &AppState, token: &str, max_age_s: i64) -> HeaderValue {
    let secure = if st.secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `POST /api/login` `{"user", "password"}`: sets the session cookie.
pub async fn login(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let addr = parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if !same_origin(&parts.headers) {
        return Err(ApiError::forbidden("cross-origin logins are refused"));
    }
    require_json(&parts.headers)?;
    let body = read_body(&parts.headers, body, super::super::JSON_LIMIT).await?;
    let input: LoginIn = parse_json(&body)?;
    let user = input.user.trim().to_owned();
    if let Err(wait) = st.limiter.check(&user, addr) {
        st.metrics.login("limited");
        let wait_s = wait.as_secs_f64().ceil().max(1.0) as u64;
        // Debug: a refused try costs nothing, so a flood of them would flood the log.
        tracing::debug!(user = %Escaped(&user), addr = ?addr, "console: login slowed down, recent failures");
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many failed logins from this address; try again in {} s",
                wait_s
            ),
        );
        e.retry_after = Some(wait_s);
        return Err(e);
    }
    let known = st.users.credentials(&user)?;
    let hash = known
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| dummy_hash().to_owned());
    let password = input.password;
    let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let Some((role, _)) = known.filter(|_| ok) else {
        st.limiter.failed(&user, addr);
        st.metrics.login("failed");
        tracing::warn!(user = %Escaped(&user), addr = ?addr, "console: failed login");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong user name or password",
        ));
    };
    st.limiter.succeeded(&user, addr);
    st.metrics.login("ok");
    let (token, data) = st.sessions.create(&user)?;
    let session = Session {
        user: user.clone(),
        role,
        csrf: data.csrf.clone(),
        key: Sessions::key(&token),
    };
    st.journal_action(
        &session,
        format!(
            "logged in{}",
            addr.map(|a| format!(" from {a}")).unwrap_or_default()
        ),
    )
    .await;
    let mut r = Json(Me {
        user,
        role,
        csrf: data.csrf,
        expires: data.expires,
        max_upload_kib: st.section.max_upload_kib,
    })
    .into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&st, &token, st.sessions.lifetime().num_seconds()),
    );
    Ok(r)
}

/// `POST /api/logout`: ends the session (and its live feeds).
pub async fn logout(session: Session, State(st): State<AppState>) -> Result<Response, ApiError> {
    st.sessions.remove(&session.key)?;
    st.journal_action(&session, "logged out".into()).await;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&st, "", 0));
    Ok(r)
}

/// `GET /api/me`: who is logged in, and the CSRF token for writes.
pub async fn me(session: Session, State(st): State<AppState>) -> Result<Json<Me>, ApiError> {
    let expires = st
        .sessions
        .get_by_key(&session.key)?
        .map(|s| s.expires)
        .ok_or_else(ApiError::unauthenticated)?;
    Ok(Json(Me {
        user: session.user,
        role: session.role,
        csrf: session.csrf,
        expires,
        max_upload_kib: st.section.max_upload_kib,
    }))
}
