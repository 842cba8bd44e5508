//! Failed-login throttling.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
}
