//! Reconnect pacing shared by every driver: exponential backoff with jitter, and
//! a sleep that ends early on shutdown.

use rand::Rng;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Exponential backoff between `min` and `max`, with ±20 % jitter so that many
/// devices that lost the same switch do not reconnect in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            next: min,
        }
    }

    /// The delay to wait before the next attempt; each call doubles it up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rand::thread_rng().gen_range(0.8..1.2);
        base.mul_f64(jitter)
    }

    /// Call after a successful connection: the next failure starts from `min` again.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(200), Duration::from_secs(30))
    }
}

/// Sleeps for `d`; returns false when shutdown came first.
pub async fn sleep_or_shutdown(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_max_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let d: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert!((80..=120).contains(&d[0]), "{d:?}");
        assert!((160..=240).contains(&d[1]), "{d:?}");
        assert!((320..=480).contains(&d[2]), "{d:?}");
        assert!((320..=480).contains(&d[4]), "{d:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }
}
