//! Refused pushes: counted per camera and reason for `/metrics`, and
//! journaled as one summary per camera per minute (`refusal_summary_s`)
//! instead of one record per refusal (a camera with a wrong secret, or a stranger guessing, would
//! otherwise fill the journal and push door records out of its budget).

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// Refusals since the last summary of one camera.
#[derive(Debug, Default)]
pub struct Refusals {
    since: Option<Instant>,
    counts: BTreeMap<&'static str, u64>,
    last: String,
}

impl Refusals {
    pub fn add(&mut self, reason: &'static str, message: &str, now: Instant) {
        self.since.get_or_insert(now);
        *self.counts.entry(reason).or_default() += 1;
        // The newest reason in full helps the installer; it is cut like a log line.
        self.last = crate::logsafe::Escaped(message).to_string();
    }

    /// The summary, once `every` has passed since the first refusal it
    /// counts (or at once with `now_anyway`, when the camera stops); `None`
    /// while nothing was refused.
    pub fn take_due(&mut self, now: Instant, every: Duration, now_anyway: bool) -> Option<String> {
        let since = self.since?;
        let secs = now.duration_since(since).as_secs();
        if !now_anyway && now.duration_since(since) < every {
            return None;
        }
        let total: u64 = self.counts.values().sum();
        let by: Vec<String> = self
            .counts
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let text = format!(
            "{total} plate push{} refused in {secs} s ({}); last: {}",
            if total == 1 { "" } else { "es" },
            by.join(", "),
            self.last
        );
        *self = Refusals::default();
        Some(text)
    }
}

type Counts = BTreeMap<(String, &'static str), u64>;

fn counts() -> &'static Mutex<Counts> {
    static C: OnceLock<Mutex<Counts>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// Counts a refusal of a configured camera (never of a name a stranger sent,
/// so the number of series stays that of the cameras times the reasons).
pub fn count(device: &str, reason: &'static str) {
    let mut c = counts().lock().unwrap_or_else(|p| p.into_inner());
    *c.entry((device.to_owned(), reason)).or_default() += 1;
}

/// Every refused push since the process started, by camera and reason.
pub fn totals() -> Vec<(String, &'static str, u64)> {
    let c = counts().lock().unwrap_or_else(|p| p.into_inner());
    c.iter().map(|((d, r), n)| (d.clone(), *r, *n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY_EVERY: Duration = Duration::from_secs(60);

    #[test]
    fn one_summary_per_window() {
        let t0 = Instant::now();
        let mut r = Refusals::default();
        assert_eq!(r.take_due(t0, SUMMARY_EVERY, true), None);
        for i in 0..500 {
            r.add(
                "secret",
                "wrong or missing camera secret",
                t0 + Duration::from_millis(i),
            );
        }
        r.add(
            "malformed",
            "body is not valid JSON\n\x1b[2J",
            t0 + Duration::from_secs(1),
        );
        assert_eq!(
            r.take_due(t0 + Duration::from_secs(59), SUMMARY_EVERY, false),
            None
        );
        let s = r
            .take_due(t0 + SUMMARY_EVERY, SUMMARY_EVERY, false)
            .unwrap();
        assert_eq!(
            s,
            "501 plate pushes refused in 60 s (malformed 1, secret 500); last: body is not valid JSON\\n\\u{1b}[2J"
        );
        // The next window starts with the next refusal.
        assert_eq!(
            r.take_due(t0 + Duration::from_secs(200), SUMMARY_EVERY, false),
            None
        );
        r.add(
            "too_large",
            "body larger than 8 MiB",
            t0 + Duration::from_secs(300),
        );
        assert_eq!(
            r.take_due(t0 + Duration::from_secs(301), SUMMARY_EVERY, false),
            None
        );
        let s = r
            .take_due(t0 + Duration::from_secs(302), SUMMARY_EVERY, true)
            .unwrap();
        assert!(
            s.starts_with("1 plate push refused in 2 s (too_large 1)"),
            "{s}"
        );
    }

    #[test]
    fn totals_are_kept_per_camera_and_reason() {
        count("refused-test-cam", "secret");
        count("refused-test-cam", "secret");
        count("refused-test-cam", "too_large");
        let t = totals();
        let of = |r| {
            t.iter()
                .find(|(d, reason, _)| d == "refused-test-cam" && *reason == r)
                .map(|x| x.2)
        };
        assert_eq!(of("secret"), Some(2));
        assert_eq!(of("too_large"), Some(1));
    }
}
