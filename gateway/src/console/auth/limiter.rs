//! Failed-login throttling per (user, client address), never a lockout: the
//! failures of one address slow down that address only, so a stranger
//! guessing `guard1`'s password cannot keep the real guard out, and a right
//! password from an address without recent failures is always taken.
//!
//! - A (user, address) pair has `free` failures; each one after that makes
//!   the pair wait 1 s, 2 s, 4 s, ... up to `max_delay` before its next try.
//! - An address has four times as many over all user names (a guard room
//!   shares one PC), then waits the same way: one address spraying names is
//!   slowed too.
//! - Failures older than `forget` no longer count. Both maps hold at most
//!   [`MAX_TRACKED`] entries; when full, the forgotten ones go first, then the
//!   one not heard from longest.
//! - An IPv6 client counts by its /64 (one host gets a whole /64).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries per map (pairs, addresses); bounds the memory a spray can take.
pub const MAX_TRACKED: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Track {
    failures: u32,
    last: Instant,
    until: Instant,
}

#[derive(Default)]
struct State {
    pairs: HashMap<(String, IpAddr), Track>,
    addrs: HashMap<IpAddr, Track>,
}

pub struct LoginLimiter {
    free_per_pair: u32,
    free_per_addr: u32,
    forget: Duration,
    max_delay: Duration,
    state: Mutex<State>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, forget: Duration, max_delay: Duration) -> Self {
        let free = max_failures.max(1);
        Self {
            free_per_pair: free,
            free_per_addr: free.saturating_mul(4),
            forget,
            max_delay: max_delay.max(Duration::from_secs(1)),
            state: Mutex::new(State::default()),
        }
    }

    fn key(addr: Option<IpAddr>) -> IpAddr {
        drivers::httpserve::client_key(addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
    }

    /// `Err(wait)` while this user from this address, or this address, must wait.
    pub fn check(&self, user: &str, addr: Option<IpAddr>) -> Result<(), Duration> {
        self.check_at(user, addr, Instant::now())
    }

    fn check_at(&self, user: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let ip = Self::key(addr);
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let pair = st.pairs.get(&(user.to_owned(), ip)).map(|t| t.until);
        let addr = st.addrs.get(&ip).map(|t| t.until);
        let until = pair.into_iter().chain(addr).max();
        match until {
            Some(u) if u > now => Err(u - now),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, user: &str, addr: Option<IpAddr>) {
        self.failed_at(user, addr, Instant::now())
    }

    fn failed_at(&self, user: &str, addr: Option<IpAddr>, now: Instant) {
        let ip = Self::key(addr);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (free_pair, free_addr) = (self.free_per_pair, self.free_per_addr);
        let st = &mut *st;
        self.record(&mut st.pairs, (user.to_owned(), ip), free_pair, now);
        self.record(&mut st.addrs, ip, free_addr, now);
    }

    /// A right password forgets this user's failures from this address (the
    /// address's own count stays: it may be spraying other names).
    pub fn succeeded(&self, user: &str, addr: Option<IpAddr>) {
        let ip = Self::key(addr);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.pairs.remove(&(user.to_owned(), ip));
    }

    fn record<K: Hash + Eq + Clone>(
        &self,
        map: &mut HashMap<K, Track>,
        key: K,
        free: u32,
        now: Instant,
    ) {
        if !map.contains_key(&key) && map.len() >= MAX_TRACKED {
            self.make_room(map, now);
        }
        let t = map.entry(key).or_insert(Track {
            failures: 0,
            last: now,
            until: now,
        });
        if now.duration_since(t.last) >= self.forget {
            t.failures = 0;
        }
        t.failures = t.failures.saturating_add(1);
        t.last = now;
        if t.failures >= free {
            t.until = now + self.delay(t.failures - free);
        }
    }

    /// 1 s after the last free failure, doubling with each one after it.
    fn delay(&self, over: u32) -> Duration {
        let secs = 1u64.checked_shl(over.min(32)).unwrap_or(u64::MAX);
        Duration::from_secs(secs).min(self.max_delay)
    }

    fn make_room<K: Hash + Eq + Clone>(&self, map: &mut HashMap<K, Track>, now: Instant) {
        let forget = self.forget;
        map.retain(|_, t| now.duration_since(t.last) < forget || t.until > now);
        while map.len() >= MAX_TRACKED {
            let oldest = map
                .iter()
                .min_by_key(|(_, t)| t.last)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let st = self.state.lock().unwrap();
        (st.pairs.len(), st.addrs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn failures_slow_down_their_own_address_only() {
        let l = LoginLimiter::new(5, Duration::from_secs(900), MIN);
        let t0 = Instant::now();
        let (attacker, guard_pc) = (ip("10.0.0.66"), ip("10.0.0.5"));
        for i in 0..4 {
            l.failed_at("guard1", attacker, t0 + Duration::from_millis(i));
            assert!(
                l.check_at("guard1", attacker, t0).is_ok(),
                "free failure {i}"
            );
        }
        l.failed_at("guard1", attacker, t0);
        assert_eq!(
            l.check_at("guard1", attacker, t0),
            Err(Duration::from_secs(1))
        );
        // The guard at their own PC is not slowed at all.
        assert!(l.check_at("guard1", guard_pc, t0).is_ok());
        // Each further failure doubles the wait, up to the cap.
        let mut t = t0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            t += l.check_at("guard1", attacker, t).err().unwrap_or_default();
            l.failed_at("guard1", attacker, t);
            waits.push(l.check_at("guard1", attacker, t).unwrap_err().as_secs());
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert!(l.check_at("guard1", guard_pc, t).is_ok());
        // Once the wait is over the attacker may try again (and a right
        // password would be taken).
        assert!(l.check_at("guard1", attacker, t + MIN).is_ok());
    }

    #[test]
    fn one_address_spraying_names_is_slowed() {
        let l = LoginLimiter::new(5, Duration::from_secs(900), MIN);
        let t0 = Instant::now();
        let a = ip("192.168.1.9");
        for i in 0..19 {
            l.failed_at(&format!("user{i}"), a, t0);
        }
        assert!(l.check_at("someone", a, t0).is_ok());
        l.failed_at("user19", a, t0);
        assert_eq!(l.check_at("someone", a, t0), Err(Duration::from_secs(1)));
        assert!(l.check_at("someone", ip("192.168.1.10"), t0).is_ok());
        // An IPv6 client cannot dodge by changing its interface id.
        let v6 = ip("2001:db8::1");
        for i in 0..20 {
            let addr = Some(format!("2001:db8::{:x}", i + 1).parse().unwrap());
            l.failed_at(&format!("u{i}"), addr, t0);
        }
        assert!(l.check_at("x", v6, t0).is_err());
    }

    #[test]
    fn success_and_time_forget_failures() {
        let l = LoginLimiter::new(2, Duration::from_secs(300), MIN);
        let t0 = Instant::now();
        let a = ip("10.1.1.1");
        l.failed_at("u", a, t0);
        l.succeeded("u", a);
        l.failed_at("u", a, t0);
        assert!(l.check_at("u", a, t0).is_ok(), "the success reset the pair");
        // Failures older than `forget` start the count again.
        l.failed_at("u", a, t0 + Duration::from_secs(301));
        assert!(l.check_at("u", a, t0 + Duration::from_secs(301)).is_ok());
        l.failed_at("u", a, t0 + Duration::from_secs(302));
        assert!(l.check_at("u", a, t0 + Duration::from_secs(302)).is_err());
    }

    #[test]
    fn the_maps_are_bounded() {
        let l = LoginLimiter::new(5, Duration::from_secs(900), MIN);
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 500) {
            let addr = Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
            l.failed_at("guard1", addr, t0 + Duration::from_micros(i as u64));
        }
        let (pairs, addrs) = l.tracked();
        assert!(
            pairs <= MAX_TRACKED && addrs <= MAX_TRACKED,
            "{pairs} {addrs}"
        );
        // The oldest went first; the newest is still tracked.
        let newest = Some(IpAddr::V4(Ipv4Addr::from(
            0x0a00_0000 + MAX_TRACKED as u32 + 499,
        )));
        for _ in 0..4 {
            l.failed_at("guard1", newest, t0 + MIN);
        }
        assert!(l.check_at("guard1", newest, t0 + MIN).is_err());
    }
}
