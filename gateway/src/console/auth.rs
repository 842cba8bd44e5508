//! Who is asking: password checks (argon2), sessions (an HttpOnly SameSite=Strict
//! cookie naming a session kept in the store, so a gateway restart logs nobody
//! out), login rate limiting, roles, and the CSRF checks on every write.
//!
//! A write must carry the session's token in `X-CSRF-Token` (a cross-site page
//! cannot read it), and must not come from another origin (`Origin`,
//! `Sec-Fetch-Site`). The cookie's SameSite=Strict is a third layer.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::error::{parse_json, read_body, require_json, ApiError};
use super::tls::ClientAddr;
use super::AppState;
use crate::config::Role;

/// The session cookie.
pub const COOKIE: &str = "gw_session";
/// The header that must carry the session's CSRF token on writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

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
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let mut p = [0u8; 16];
        OsRng.fill_bytes(&mut p);
        hash_password(&hex::encode(p)).unwrap_or_default()
    })
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Compares without leaking where the first difference is.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A session as stored (under the sha256 of its token, never the token itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub user: String,
    pub csrf: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// The logged-in sessions, in the store.
pub struct Sessions {
    tree: sled::Tree,
    lifetime: ChronoDuration,
}

impl Sessions {
    pub fn open(db: &sled::Db, hours: u32) -> Result<Sessions, sled::Error> {
        Ok(Sessions {
            tree: db.open_tree("console_sessions")?,
            lifetime: ChronoDuration::hours(hours as i64),
        })
    }

    fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    pub fn lifetime(&self) -> ChronoDuration {
        self.lifetime
    }

    /// Starts a session; returns its cookie token.
    pub fn create(&self, user: &str) -> Result<(String, SessionData), ApiError> {
        self.purge_expired();
        let token = random_token();
        let now = Utc::now();
        let data = SessionData {
            user: user.to_owned(),
            csrf: random_token(),
            created: now,
            expires: now + self.lifetime,
        };
        let json = serde_json::to_vec(&data).map_err(|e| ApiError::internal(e.to_string()))?;
        self.tree.insert(Self::key(&token), json)?;
        Ok((token, data))
    }

    /// The session of a cookie token, if valid.
    pub fn get(&self, token: &str) -> Result<Option<([u8; 32], SessionData)>, ApiError> {
        let key = Self::key(token);
        let Some(raw) = self.tree.get(key)? else {
            return Ok(None);
        };
        match serde_json::from_slice::<SessionData>(&raw) {
            Ok(s) if s.expires > Utc::now() => Ok(Some((key, s))),
            _ => {
                self.tree.remove(key)?;
                Ok(None)
            }
        }
    }

    /// Whether a session (by key) still exists: live feeds end at logout.
    pub fn alive(&self, key: &[u8; 32]) -> bool {
        match self.tree.get(key) {
            Ok(Some(raw)) => {
                serde_json::from_slice::<SessionData>(&raw).is_ok_and(|s| s.expires > Utc::now())
            }
            _ => false,
        }
    }

    pub fn remove(&self, key: &[u8; 32]) -> Result<(), ApiError> {
        self.tree.remove(key)?;
        Ok(())
    }

    /// Ends every session of a user, but `keep`.
    pub fn remove_user(&self, user: &str, keep: Option<&Session>) -> Result<(), ApiError> {
        for kv in self.tree.iter() {
            let (k, v) = kv?;
            let same_user = serde_json::from_slice::<SessionData>(&v).is_ok_and(|s| s.user == user);
            let kept = keep.is_some_and(|s| s.key.as_slice() == k.as_ref());
            if same_user && !kept {
                self.tree.remove(k)?;
            }
        }
        Ok(())
    }

    fn purge_expired(&self) {
        let now = Utc::now();
        for (k, v) in self.tree.iter().flatten() {
            let expired =
                serde_json::from_slice::<SessionData>(&v).map_or(true, |s| s.expires <= now);
            if expired {
                let _ = self.tree.remove(k);
            }
        }
    }

    /// Sessions not expired (for `/metrics`).
    pub fn count(&self) -> usize {
        let now = Utc::now();
        self.tree
            .iter()
            .values()
            .flatten()
            .filter(|v| serde_json::from_slice::<SessionData>(v).is_ok_and(|s| s.expires > now))
            .count()
    }
}

/// Failed logins per user and per client address within a sliding window.
/// An address gets four times the user's allowance: guards share one PC.
pub struct LoginLimiter {
    max_per_user: usize,
    max_per_addr: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Beyond this many keys, forgotten failures are swept out first.
const LIMITER_SWEEP_AT: usize = 10_000;

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_per_user: max_failures.max(1) as usize,
            max_per_addr: max_failures.max(1) as usize * 4,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(user: &str, addr: Option<IpAddr>) -> [(String, bool); 2] {
        [
            (format!("u:{user}"), true),
            (
                format!("a:{}", addr.map(|a| a.to_string()).unwrap_or_default()),
                false,
            ),
        ]
    }

    /// `Err(wait)` when the user or the address has failed too often lately.
    pub fn check(&self, user: &str, addr: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = Duration::ZERO;
        for (key, is_user) in Self::keys(user, addr) {
            let max = if is_user {
                self.max_per_user
            } else {
                self.max_per_addr
            };
            if let Some(q) = map.get_mut(&key) {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    q.pop_front();
                }
                if q.len() >= max {
                    if let Some(oldest) = q.front() {
                        wait = wait.max(self.window.saturating_sub(now.duration_since(*oldest)));
                    }
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait.max(Duration::from_secs(1)))
        }
    }

    pub fn failed(&self, user: &str, addr: Option<IpAddr>) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > LIMITER_SWEEP_AT {
            let window = self.window;
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        for (key, _) in Self::keys(user, addr) {
            map.entry(key).or_default().push_back(now);
        }
    }

    /// A good password clears the user's failures (not the address's).
    pub fn succeeded(&self, user: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("u:{user}"));
    }
}

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
    pub(super) key: [u8; 32],
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
            if !same_secret(sent, data.csrf.as_bytes()) {
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
        .get::<ConnectInfo<ClientAddr>>()
        .map(|c| c.0 .0.ip());
    if !same_origin(&parts.headers) {
        return Err(ApiError::forbidden("cross-origin logins are refused"));
    }
    require_json(&parts.headers)?;
    let body = read_body(&parts.headers, body, super::JSON_LIMIT).await?;
    let input: LoginIn = parse_json(&body)?;
    let user = input.user.trim().to_owned();
    if let Err(wait) = st.limiter.check(&user, addr) {
        st.metrics.login("limited");
        tracing::warn!(user = %user, addr = ?addr, "console: login refused, too many failures");
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many failed logins; try again in {} s",
                wait.as_secs().max(1)
            ),
        );
        e.retry_after = Some(wait.as_secs().max(1));
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
        tracing::warn!(user = %user, addr = ?addr, "console: failed login");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong user name or password",
        ));
    };
    st.limiter.succeeded(&user);
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

impl Sessions {
    fn get_by_key(&self, key: &[u8; 32]) -> Result<Option<SessionData>, ApiError> {
        Ok(self
            .tree
            .get(key)?
            .and_then(|raw| serde_json::from_slice(&raw).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_counts_per_user_and_address() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check("guard1", Some(a)).is_ok());
            l.failed("guard1", Some(a));
        }
        // The user is locked, from any address; other users are not.
        assert!(l.check("guard1", Some(a)).is_err());
        assert!(l.check("guard1", Some(b)).is_err());
        assert!(l.check("guard2", Some(a)).is_ok());
        // An address trying many names is stopped at four times the allowance.
        for i in 0..12 {
            l.failed(&format!("x{i}"), Some(b));
        }
        assert!(l.check("someone", Some(b)).is_err());
        assert!(l.check("someone", Some(a)).is_ok());
        let wait = l.check("guard1", Some(a)).unwrap_err();
        assert!(wait <= Duration::from_secs(60) && wait >= Duration::from_secs(1));
    }

    #[test]
    fn limiter_window_slides() {
        let l = LoginLimiter::new(1, Duration::from_millis(50));
        l.failed("u", None);
        assert!(l.check("u", None).is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(l.check("u", None).is_ok());
        l.failed("u", None);
        l.succeeded("u");
        assert!(l.check("u", None).is_ok());
    }

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
        assert!(check_user_name("guard1").is_ok());
        assert!(check_user_name("王保安").is_ok());
        assert!(check_user_name("a b").is_err());
        assert!(check_user_name("").is_err());
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
    }

    #[test]
    fn passwords_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "wrong horse"));
        assert!(!verify_password("not a hash", "x"));
        assert!(check_new_password("short").is_err());
    }

    #[test]
    fn sessions_expire_and_are_removed_per_user() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let s = Sessions::open(&db, 1).unwrap();
        let (t1, _) = s.create("guard1").unwrap();
        let (t2, _) = s.create("guard1").unwrap();
        let (t3, _) = s.create("admin").unwrap();
        assert!(s.get(&t1).unwrap().is_some());
        assert!(s.get("nope").unwrap().is_none());
        assert_eq!(s.count(), 3);
        s.remove_user("guard1", None).unwrap();
        assert!(s.get(&t1).unwrap().is_none());
        assert!(s.get(&t2).unwrap().is_none());
        assert!(s.get(&t3).unwrap().is_some());
        // An expired session is refused and dropped.
        let (key, mut data) = s.get(&t3).unwrap().unwrap();
        data.expires = Utc::now() - ChronoDuration::seconds(1);
        s.tree
            .insert(key, serde_json::to_vec(&data).unwrap())
            .unwrap();
        assert!(s.get(&t3).unwrap().is_none());
        assert_eq!(s.count(), 0);
    }
}
