//! Who is asking: password checks (argon2), sessions (an HttpOnly SameSite=Strict
//! cookie naming a session kept in the store, so a gateway restart logs nobody
//! out), login rate limiting, roles, and the CSRF checks on every write.
//!
//! A write must carry the session's token in `X-CSRF-Token` (a cross-site page
//! cannot read it), and must not come from another origin (`Origin`,
//! `Sec-Fetch-Site`). The cookie's SameSite=Strict is a third layer.
//!
//! - `password`: user names, password rules, argon2 hashes.
//! - `session`: sessions in the store (under the sha256 of their token).
//! - `limiter`: failed-login throttling per user and per address.
//! - `guard`: who is asking (the `Session` and `Admin` extractors, CSRF and
//!   origin checks) and the layer that refuses every route not on the public
//!   list without a session (deny by default).
//! - `handlers`: `/api/login`, `/api/logout`, `/api/me`.

mod guard;
mod handlers;
mod limiter;
mod password;
mod session;

pub use guard::{require_session, same_origin, Admin, Session};
pub use handlers::{login, logout, me, Me};
pub use limiter::LoginLimiter;
pub use password::{check_new_password, check_user_name, hash_password, verify_password};
pub use session::{SessionData, Sessions};

/// The session cookie.
pub const COOKIE: &str = "gw_session";
/// The header that must carry the session's CSRF token on writes.
pub const CSRF_HEADER: &str = "x-csrf-token";
