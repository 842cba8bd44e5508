//! Weekly time windows in the estate's local time: `"mon-fri 07:00-22:00"`,
//! `"sat,sun 08:00-20:00"`, `"daily 22:00-06:00"` (a window past midnight belongs
//! to the day it starts on).

use chrono::{Datelike, Timelike, Weekday};

/// One window: the days it starts on, and minutes of the day.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Window {
    /// Bit i set: the window starts on weekday i (Monday = 0).
    days: u8,
    start: u16,
    end: u16,
}

/// A set of weekly windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    windows: Vec<Window>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(s: &str) -> Result<u8, String> {
    DAYS.iter()
        .position(|d| *d == s)
        .map(|i| i as u8)
        .ok_or_else(|| format!("`{s}` is not a day (mon, tue, wed, thu, fri, sat, sun)"))
}

fn minutes(s: &str) -> Result<u16, String> {
    let bad = || format!("`{s}` is not a time HH:MM");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl Schedule {
    /// Parses windows; the error names the window that is wrong.
    pub fn parse(windows: &[String]) -> Result<Schedule, String> {
        let mut out = Vec::new();
        if windows.is_empty() {
            return Err("a schedule needs at least one window".into());
        }
        for w in windows {
            let (days, times) = w
                .trim()
                .split_once(' ')
                .ok_or_else(|| format!("`{w}`: expected `DAYS HH:MM-HH:MM`"))?;
            let mut mask = 0u8;
            for part in days.split(',') {
                let part = part.trim().to_ascii_lowercase();
                if part == "daily" {
                    mask = 0x7f;
                } else if let Some((a, b)) = part.split_once('-') {
                    let (a, b) = (day(a)?, day(b)?);
                    let mut d = a;
                    loop {
                        mask |= 1 << d;
                        if d == b {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                } else {
                    mask |= 1 << day(&part).map_err(|e| format!("`{w}`: {e}"))?;
                }
            }
            let (start, end) = times
                .trim()
                .split_once('-')
                .ok_or_else(|| format!("`{w}`: expected a time range HH:MM-HH:MM"))?;
            let (start, end) = (
                minutes(start.trim()).map_err(|e| format!("`{w}`: {e}"))?,
                minutes(end.trim()).map_err(|e| format!("`{w}`: {e}"))?,
            );
            if start == end {
                return Err(format!("`{w}`: empty window"));
            }
            out.push(Window {
                days: mask,
                start,
                end,
            });
        }
        Ok(Schedule { windows: out })
    }

    /// Whether a local time falls in a window.
    pub fn is_open<T: Datelike + Timelike>(&self, local: &T) -> bool {
        let wd = local.weekday().num_days_from_monday() as u8;
        let yesterday = (wd + 6) % 7;
        let m = (local.hour() * 60 + local.minute()) as u16;
        self.windows.iter().any(|w| {
            if w.start < w.end {
                w.days & (1 << wd) != 0 && m >= w.start && m < w.end
            } else {
                // Past midnight: the evening part today, or the morning part of
                // a window that started yesterday.
                (w.days & (1 << wd) != 0 && m >= w.start)
                    || (w.days & (1 << yesterday) != 0 && m < w.end)
            }
        })
    }
}

/// For tests and docs: the weekday of a local time.
pub fn weekday_name(d: Weekday) -> &'static str {
    DAYS[d.num_days_from_monday() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> chrono::NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    #[test]
    fn weekday_ranges() {
        let s = Schedule::parse(&["mon-fri 07:00-22:00".into()]).unwrap();
        // 2026-11-23 is a Monday.
        assert!(s.is_open(&at(2026, 11, 23, 7, 0)));
        assert!(!s.is_open(&at(2026, 11, 23, 22, 0)));
        assert!(!s.is_open(&at(2026, 11, 28, 12, 0)));
        assert_eq!(weekday_name(at(2026, 11, 28, 0, 0).weekday()), "sat");
    }

    #[test]
    fn overnight_and_lists() {
        let s = Schedule::parse(&["sat,sun 22:00-06:00".into()]).unwrap();
        assert!(s.is_open(&at(2026, 11, 28, 23, 0))); // Saturday night
        assert!(s.is_open(&at(2026, 11, 29, 5, 59))); // Sunday morning (from Saturday)
        assert!(s.is_open(&at(2026, 11, 30, 5, 0))); // Monday morning (from Sunday)
        assert!(!s.is_open(&at(2026, 12, 1, 5, 0))); // Tuesday morning
        let all = Schedule::parse(&["daily 00:00-24:00".into()]).unwrap();
        assert!(all.is_open(&at(2026, 12, 1, 23, 59)));
        let wrap = Schedule::parse(&["fri-mon 10:00-11:00".into()]).unwrap();
        assert!(wrap.is_open(&at(2026, 11, 29, 10, 30)));
        assert!(!wrap.is_open(&at(2026, 11, 25, 10, 30)));
    }

    #[test]
    fn errors_name_the_window() {
        assert!(Schedule::parse(&["funday 07:00-08:00".into()])
            .unwrap_err()
            .contains("funday"));
        assert!(Schedule::parse(&["mon 7-8".into()]).is_err());
        assert!(Schedule::parse(&["mon 25:00-26:00".into()]).is_err());
        assert!(Schedule::parse(&["mon 08:00-08:00".into()]).is_err());
        assert!(Schedule::parse(&[]).is_err());
    }
}
