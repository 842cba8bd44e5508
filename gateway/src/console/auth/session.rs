//! Sessions kept in the store, so a gateway restart logs nobody out.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::super::error::ApiError;
use super::guard::Session;
use super::password::random_token;

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

    pub(super) fn key(token: &str) -> [u8; 32] {
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

impl Sessions {
    pub(super) fn get_by_key(&self, key: &[u8; 32]) -> Result<Option<SessionData>, ApiError> {
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
