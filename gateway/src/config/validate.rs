//! Checks across sections that serde cannot make: unique ids, references between
//! sections, files that must exist, values that must make sense together.

use std::collections::HashSet;
use std::path::Path;

use super::{Config, KeyPath};
use crate::engine::{Group, Schedule};
use drivers::Credential;

/// Characters that would break an MQTT topic level.
fn topic_safe(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '+', '#', '\0']) && s.len() <= 64
}

pub(super) fn check(c: &Config) -> Vec<(KeyPath, String)> {
    let mut out = Vec::new();
    let root = KeyPath::root();
    let gw = root.key("gateway");
    if !topic_safe(&c.gateway.id) {
        out.push((gw.key("id"), "must be 1-64 characters without / + #".into()));
    }
    if !topic_safe(&c.gateway.estate) {
        out.push((
            gw.key("estate"),
            "must be 1-64 characters without / + #".into(),
        ));
    }

    if let Some(m) = &c.mqtt {
        let p = root.key("mqtt");
        if !(m.url.starts_with("mqtt://") || m.url.starts_with("mqtts://")) {
            out.push((
                p.key("url"),
                format!("`{}` must start with mqtt:// or mqtts://", m.url),
            ));
        }
        if !topic_safe(&m.topic_prefix) {
            out.push((
                p.key("topic_prefix"),
                "must be 1-64 characters without / + #".into(),
            ));
        }
        let files = [
            ("password_file", &m.password_file),
            ("ca_file", &m.ca_file),
            ("cert_file", &m.cert_file),
            ("key_file", &m.key_file),
        ];
        for (key, file) in files {
            if let Some(f) = file {
                check_file(&mut out, p.key(key), &c.resolve(f));
            }
        }
        if m.cert_file.is_some() != m.key_file.is_some() {
            out.push((
                p.key("cert_file"),
                "cert_file and key_file go together".into(),
            ));
        }
        if m.password_file.is_some() && m.username.is_none() {
            out.push((p.key("password_file"), "a password needs `username`".into()));
        }
        if m.inflight == 0 {
            out.push((p.key("inflight"), "must be at least 1".into()));
        }
        for (i, name) in m.commands.iter().enumerate() {
            if !super::ALL_COMMANDS.contains(&name.as_str()) {
                out.push((
                    p.key("commands").index(i),
                    format!(
                        "unknown command `{name}` (known: {})",
                        super::ALL_COMMANDS.join(", ")
                    ),
                ));
            }
        }
    }

    let mut users = HashSet::new();
    for (i, u) in c.console.users.iter().enumerate() {
        let p = root.key("console").key("users").index(i);
        if !users.insert(u.name.as_str()) {
            out.push((p.key("name"), format!("duplicate user `{}`", u.name)));
        }
        if !u.password_hash.starts_with("$argon2") {
            out.push((
                p.key("password_hash"),
                "must be an argon2 hash from `gatewayd hash-password`".into(),
            ));
        }
    }

    let mut doors = HashSet::new();
    for (i, d) in c.doors.iter().enumerate() {
        let p = root.key("doors").index(i);
        if !doors.insert(d.id.as_str()) {
            out.push((p.key("id"), format!("duplicate door id `{}`", d.id)));
        }
        if d.open_ms == 0 || d.open_ms > 60_000 {
            out.push((p.key("open_ms"), "must be between 1 and 60000".into()));
        }
        if d.held_open_s == 0 {
            out.push((p.key("held_open_s"), "must be at least 1".into()));
        }
    }
    let zones: HashSet<&str> = c.doors.iter().map(|d| d.zone.as_str()).collect();

    let mut devices = HashSet::new();
    for (i, d) in c.devices.iter().enumerate() {
        let p = root.key("devices").index(i);
        if !devices.insert(d.id.as_str()) {
            out.push((p.key("id"), format!("duplicate device id `{}`", d.id)));
        }
        if !topic_safe(d.id.as_str()) {
            out.push((p.key("id"), "must be 1-64 characters without / + #".into()));
        }
        if let Some(door) = &d.door {
            if !doors.contains(door.as_str()) {
                out.push((p.key("door"), format!("no door `{door}` in [[doors]]")));
            }
        }
        for problem in d.driver.validate(&c.base_dir) {
            let key = p.join_dotted(&problem.key);
            // Files named by drivers are relative to the config file too.
            out.push((key, problem.message));
        }
    }
    for (i, d) in c.doors.iter().enumerate() {
        if let Some(lock) = &d.lock {
            if !devices.contains(lock.as_str()) {
                out.push((
                    root.key("doors").index(i).key("lock"),
                    format!("no device `{lock}` in [[devices]]"),
                ));
            }
        }
    }

    let mut schedules = HashSet::new();
    for (i, s) in c.schedules.iter().enumerate() {
        let p = root.key("schedules").index(i);
        if !schedules.insert(s.id.as_str()) {
            out.push((p.key("id"), format!("duplicate schedule id `{}`", s.id)));
        }
        if let Err(e) = Schedule::parse(&s.windows) {
            out.push((p.key("windows"), e));
        }
    }
    for (i, r) in c.access.iter().enumerate() {
        let p = root.key("access").index(i);
        if r.group == Group::Watchlist {
            out.push((
                p.key("group"),
                "watchlist persons are never let through".into(),
            ));
        }
        for (j, z) in r.zones.iter().enumerate() {
            if z != "*" && !zones.contains(z.as_str()) {
                out.push((p.key("zones").index(j), format!("no door has zone `{z}`")));
            }
        }
        for (j, d) in r.doors.iter().enumerate() {
            if !doors.contains(d.as_str()) {
                out.push((
                    p.key("doors").index(j),
                    format!("no door `{d}` in [[doors]]"),
                ));
            }
        }
        if r.zones.is_empty() && r.doors.is_empty() {
            out.push((p.clone(), "needs `zones` or `doors`".into()));
        }
        if let Some(s) = &r.schedule {
            if !schedules.contains(s.as_str()) {
                out.push((
                    p.key("schedule"),
                    format!("no schedule `{s}` in [[schedules]]"),
                ));
            }
        }
    }

    if c.retention.check_every_s == 0 {
        out.push((
            root.key("retention").key("check_every_s"),
            "must be at least 1".into(),
        ));
    }
    if c.retention.max_disk_mb == 0 {
        out.push((
            root.key("retention").key("max_disk_mb"),
            "must be at least 1".into(),
        ));
    }

    let mut rule_types = HashSet::new();
    for (i, r) in c.rules.iter().enumerate() {
        use crate::journal::AlarmType as T;
        let p = root.key("rules").index(i);
        if !rule_types.insert(r.alarm_type) {
            out.push((
                p.key("type"),
                format!("a second rule for `{}`", r.alarm_type),
            ));
        }
        let only = |key: &str, set: bool, allowed: &[T], out: &mut Vec<(KeyPath, String)>| {
            if set && !allowed.contains(&r.alarm_type) {
                let names: Vec<&str> = allowed.iter().map(|t| t.as_str()).collect();
                out.push((
                    p.key(key),
                    format!("only applies to type {}", names.join(", ")),
                ));
            }
        };
        only(
            "hours",
            r.hours.is_some(),
            &[T::WelfareNoActivity],
            &mut out,
        );
        only("tags", r.tags.is_some(), &[T::WelfareNoActivity], &mut out);
        only("count", r.count.is_some(), &[T::UnknownFace], &mut out);
        only(
            "window_s",
            r.window_s.is_some(),
            &[T::UnknownFace],
            &mut out,
        );
        only("hold", r.hold.is_some(), &[T::EbikeInElevator], &mut out);
        only(
            "prompt",
            r.prompt.is_some(),
            &[T::EbikeInElevator],
            &mut out,
        );
        if r.hours.is_some_and(|h| !(h > 0.0 && h.is_finite())) {
            out.push((p.key("hours"), "must be a positive number of hours".into()));
        }
        if r.count == Some(0) {
            out.push((p.key("count"), "must be at least 1".into()));
        }
        if r.window_s == Some(0) {
            out.push((p.key("window_s"), "must be at least 1".into()));
        }
    }

    let mut persons = HashSet::new();
    for (i, s) in c.persons.iter().enumerate() {
        let p = root.key("persons").index(i);
        if !persons.insert(s.id.as_str()) {
            out.push((p.key("id"), format!("duplicate person id `{}`", s.id)));
        }
        for (j, cred) in s.credentials.iter().enumerate() {
            if let Err(e) = Credential::parse_shorthand(cred) {
                out.push((p.key("credentials").index(j), e.to_string()));
            }
        }
    }
    out
}

fn check_file(out: &mut Vec<(KeyPath, String)>, key: KeyPath, path: &Path) {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => out.push((key, format!("{} is not a file", path.display()))),
        Err(e) => out.push((key, format!("cannot read {}: {e}", path.display()))),
    }
}
