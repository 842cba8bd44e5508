//! Console users: those of `[[console.users]]` (fixed by the installer) and
//! those an admin adds on the console (kept in the store, `console_users`).
//! A name in the config file always wins; the console cannot change it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use super::auth::{self, Admin};
use super::config::{ConsoleSection, Role};
use super::error::{parse_json, read_body, require_json, ApiError};
use super::AppState;

/// Where a user is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UserSource {
    Config,
    Console,
}

/// A user as listed to admins (never the hash).
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub name: String,
    pub role: Role,
    pub source: UserSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize)]
struct StoredUser {
    role: Role,
    password_hash: String,
    by: String,
    updated: DateTime<Utc>,
}

/// Both kinds of users.
pub struct Users {
    config: HashMap<String, (Role, String)>,
    tree: sled::Tree,
}

impl Users {
    pub fn open(section: &ConsoleSection, db: &sled::Db) -> Result<Users, sled::Error> {
        Ok(Users {
            config: section
                .users
                .iter()
                .map(|u| (u.name.clone(), (u.role, u.password_hash.clone())))
                .collect(),
            tree: db.open_tree("console_users")?,
        })
    }

    fn stored(&self, name: &str) -> Result<Option<StoredUser>, ApiError> {
        match self.tree.get(name.as_bytes())? {
            None => Ok(None),
            Some(v) => match serde_json::from_slice(&v) {
                Ok(u) => Ok(Some(u)),
                Err(e) => {
                    tracing::error!(user = name, "console: unreadable stored user: {e}");
                    Ok(None)
                }
            },
        }
    }

    /// The role and password hash of a user, if there is one.
    pub fn credentials(&self, name: &str) -> Result<Option<(Role, String)>, ApiError> {
        if let Some((role, hash)) = self.config.get(name) {
            return Ok(Some((*role, hash.clone())));
        }
        Ok(self.stored(name)?.map(|u| (u.role, u.password_hash)))
    }

    /// The current role of a user (a session follows changes and removals).
    pub fn role_of(&self, name: &str) -> Result<Option<Role>, ApiError> {
        Ok(self.credentials(name)?.map(|(role, _)| role))
    }

    pub fn list(&self) -> Result<Vec<UserView>, ApiError> {
        let mut out: Vec<UserView> = self
            .config
            .iter()
            .map(|(name, (role, _))| UserView {
                name: name.clone(),
                role: *role,
                source: UserSource::Config,
                by: None,
                updated: None,
            })
            .collect();
        for kv in self.tree.iter() {
            let (k, v) = kv?;
            let name = String::from_utf8_lossy(&k).into_owned();
            if self.config.contains_key(&name) {
                continue;
            }
            if let Ok(u) = serde_json::from_slice::<StoredUser>(&v) {
                out.push(UserView {
                    name,
                    role: u.role,
                    source: UserSource::Console,
                    by: Some(u.by),
                    updated: Some(u.updated),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn refuse_config(&self, name: &str) -> Result<(), ApiError> {
        if self.config.contains_key(name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("user `{name}` is defined in the config file; change it there"),
            ));
        }
        Ok(())
    }

    /// Adds or changes a console user; `password_hash` None keeps the old one.
    /// Returns whether the user is new.
    pub fn put(
        &self,
        name: &str,
        role: Role,
        password_hash: Option<String>,
        by: &str,
    ) -> Result<bool, ApiError> {
        self.refuse_config(name)?;
        let old = self.stored(name)?;
        let created = old.is_none();
        let password_hash = match (password_hash, old) {
            (Some(h), _) => h,
            (None, Some(old)) => old.password_hash,
            (None, None) => return Err(ApiError::invalid("password: a new user needs one")),
        };
        let u = StoredUser {
            role,
            password_hash,
            by: by.to_owned(),
            updated: Utc::now(),
        };
        let json = serde_json::to_vec(&u).map_err(|e| ApiError::internal(e.to_string()))?;
        self.tree.insert(name.as_bytes(), json)?;
        self.tree.flush()?;
        Ok(created)
    }

    pub fn delete(&self, name: &str) -> Result<(), ApiError> {
        self.refuse_config(name)?;
        if self.tree.remove(name.as_bytes())?.is_none() {
            return Err(ApiError::not_found(format!("no console user `{name}`")));
        }
        self.tree.flush()?;
        Ok(())
    }
}

/// `GET /api/users`
pub async fn list(
    _admin: Admin,
    State(st): State<AppState>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    Ok(Json(st.users.list()?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserIn {
    role: Role,
    #[serde(default)]
    password: Option<String>,
}

/// `PUT /api/users/{name}` `{"role", "password"}` (password optional when changing a role).
pub async fn put(
    Admin(me): Admin,
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    require_json(&headers)?;
    auth::check_user_name(&name).map_err(|e| ApiError::invalid(format!("name: {e}")))?;
    // Only ASCII: no look-alike of another user (a Cyrillic а, a zero-width space).
    crate::contract::ids::check_id("name", &name).map_err(|e| ApiError::invalid(e.to_string()))?;
    let body = read_body(&headers, body, super::JSON_LIMIT).await?;
    let u: UserIn = parse_json(&body)?;
    if name == me.user && u.role != Role::Admin {
        return Err(ApiError::invalid(
            "you cannot take the admin role from yourself",
        ));
    }
    let hash = match u.password {
        Some(p) => {
            auth::check_new_password(&p)
                .map_err(|e| ApiError::invalid(format!("password: {e}")))?;
            Some(
                tokio::task::spawn_blocking(move || auth::hash_password(&p))
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))?
                    .map_err(ApiError::internal)?,
            )
        }
        None => None,
    };
    let changed_password = hash.is_some();
    let created = st.users.put(&name, u.role, hash, &me.actor())?;
    if changed_password && !created {
        // A new password ends the user's other sessions.
        st.sessions.remove_user(&name, Some(&me))?;
    }
    st.journal_action(
        &me,
        format!(
            "{} console user `{name}` ({})",
            if created { "added" } else { "changed" },
            match u.role {
                Role::Admin => "admin",
                Role::Guard => "guard",
            }
        ),
    )
    .await;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(UserView {
            name,
            role: u.role,
            source: UserSource::Console,
            by: Some(me.actor()),
            updated: Some(Utc::now()),
        }),
    ))
}

/// `DELETE /api/users/{name}`
pub async fn delete(
    Admin(me): Admin,
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if name == me.user {
        return Err(ApiError::invalid("you cannot remove yourself"));
    }
    st.users.delete(&name)?;
    st.sessions.remove_user(&name, None)?;
    st.journal_action(&me, format!("removed console user `{name}`"))
        .await;
    Ok(StatusCode::NO_CONTENT)
}
