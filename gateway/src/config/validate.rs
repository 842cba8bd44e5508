//! The sections' own checks (each component's), placed under their keys, and
//! what only the whole file can check: unique ids and references between
//! sections (doors, devices, zones, schedules, plate cameras).

use std::collections::HashSet;

use super::{Config, KeyPath};
use crate::contract::ids::check_id;
use crate::settings::{topic_safe, Problem, TOPIC_SAFE};

/// Every problem, with its full key path.
pub(super) fn check(c: &Config) -> Vec<(KeyPath, String)> {
    let mut out = Vec::new();
    let root = KeyPath::root();
    let mut section = |path: KeyPath, problems: Vec<Problem>| {
        for p in problems {
            out.push((path.join_dotted(&p.key), p.message));
        }
    };
    let gw = root.key("gateway");
    if !topic_safe(&c.gateway.id) {
        section(gw.clone(), vec![Problem::new("id", TOPIC_SAFE)]);
    }
    if !topic_safe(&c.gateway.estate) {
        section(gw, vec![Problem::new("estate", TOPIC_SAFE)]);
    }
    if let Some(m) = &c.mqtt {
        section(root.key("mqtt"), m.check(&c.base_dir));
    }
    if let Some(console) = &c.console {
        section(root.key("console"), console.check(&c.base_dir));
    }
    if let Some(f) = &c.faces {
        section(root.key("faces"), f.check(&c.base_dir));
    }
    if let Some(pl) = &c.plates {
        section(root.key("plates"), pl.check());
    }
    section(root.key("retention"), c.retention.check());
    for (i, d) in c.doors.iter().enumerate() {
        section(root.key("doors").index(i), d.check());
    }
    for (i, d) in c.devices.iter().enumerate() {
        // Files named by drivers are relative to the config file too.
        section(root.key("devices").index(i), d.driver.validate(&c.base_dir));
    }
    for (i, s) in c.schedules.iter().enumerate() {
        section(root.key("schedules").index(i), s.check());
    }
    for (i, r) in c.access.iter().enumerate() {
        section(root.key("access").index(i), r.check());
    }
    for (i, r) in c.rules.iter().enumerate() {
        section(root.key("rules").index(i), r.check());
    }
    section(root.key("roster"), c.roster.check());
    for (i, p) in c.persons.iter().enumerate() {
        let mut problems = p.check();
        let max = c.roster.max_credentials_per_person;
        if p.credentials.len() > max {
            problems.push(Problem::new(
                "credentials",
                format!("at most {max} per person ([roster] max_credentials_per_person)"),
            ));
        }
        section(root.key("persons").index(i), problems);
    }
    identifiers(c, &mut out);
    references(c, &mut out);
    out
}

/// Ids of doors, zones, devices and persons: the safe character set (see
/// `contract::ids::check_id`), so that no look-alike can name them.
fn identifiers(c: &Config, out: &mut Vec<(KeyPath, String)>) {
    let root = KeyPath::root();
    let mut check = |path: KeyPath, id: &str| {
        if let Err(e) = check_id("id", id) {
            // The key path names the field; the message says what is allowed.
            let msg = e.to_string();
            out.push((
                path,
                msg.split_once(": ")
                    .map_or(msg.clone(), |(_, m)| m.to_owned()),
            ));
        }
    };
    for (i, d) in c.doors.iter().enumerate() {
        check(root.key("doors").index(i).key("id"), d.id.as_str());
        check(root.key("doors").index(i).key("zone"), d.zone.as_str());
    }
    for (i, d) in c.devices.iter().enumerate() {
        check(root.key("devices").index(i).key("id"), d.id.as_str());
    }
    for (i, p) in c.persons.iter().enumerate() {
        check(root.key("persons").index(i).key("id"), &p.id);
    }
}

/// Unique ids, and references from one section to another.
fn references(c: &Config, out: &mut Vec<(KeyPath, String)>) {
    let root = KeyPath::root();
    let mut doors = HashSet::new();
    for (i, d) in c.doors.iter().enumerate() {
        if !doors.insert(d.id.as_str()) {
            out.push((
                root.key("doors").index(i).key("id"),
                format!("duplicate door id `{}`", d.id),
            ));
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
            out.push((p.key("id"), TOPIC_SAFE.into()));
        }
        if let Some(door) = &d.door {
            if !doors.contains(door.as_str()) {
                out.push((p.key("door"), format!("no door `{door}` in [[doors]]")));
            }
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
    if let Some(pl) = &c.plates {
        for (i, cam) in pl.cameras.iter().enumerate() {
            if !c
                .devices
                .iter()
                .any(|d| &d.id == cam && d.driver.name() == "camera")
            {
                out.push((
                    root.key("plates").key("cameras").index(i),
                    format!("`{cam}` is not a device with driver = \"camera\""),
                ));
            }
        }
    }

    let mut schedules = HashSet::new();
    for (i, s) in c.schedules.iter().enumerate() {
        if !schedules.insert(s.id.as_str()) {
            out.push((
                root.key("schedules").index(i).key("id"),
                format!("duplicate schedule id `{}`", s.id),
            ));
        }
    }
    for (i, r) in c.access.iter().enumerate() {
        let p = root.key("access").index(i);
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
        if let Some(s) = &r.schedule {
            if !schedules.contains(s.as_str()) {
                out.push((
                    p.key("schedule"),
                    format!("no schedule `{s}` in [[schedules]]"),
                ));
            }
        }
    }

    let mut rule_types = HashSet::new();
    for (i, r) in c.rules.iter().enumerate() {
        if !rule_types.insert(r.alarm_type) {
            out.push((
                root.key("rules").index(i).key("type"),
                format!("a second rule for `{}`", r.alarm_type),
            ));
        }
    }

    let mut persons = HashSet::new();
    for (i, s) in c.persons.iter().enumerate() {
        if !persons.insert(s.id.as_str()) {
            out.push((
                root.key("persons").index(i).key("id"),
                format!("duplicate person id `{}`", s.id),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[gateway]\nid = \"gw\"\nestate = \"e\"\ndata_dir = \"d\"\n";

    fn errors(extra: &str, dir: &std::path::Path) -> Vec<String> {
        match Config::parse(&format!("{BASE}{extra}"), dir) {
            Ok(_) => vec![],
            Err(e) => e
                .into_iter()
                .map(|e| format!("{}: {}: {}", e.line.unwrap_or(0), e.path, e.message))
                .collect(),
        }
    }

    #[test]
    fn ids_must_be_safe() {
        let dir = tempfile::tempdir().unwrap();
        let e = errors(
            "[[doors]]\nid = \"ma in\"\nname = \"M\"\nzone = \"est\u{200b}ate\"\nopen_ms = 1000\nheld_open_s = 30\n[[persons]]\nid = \"r-\u{0430}1\"\nname = \"x\"\ngroup = \"resident\"\n[roster]\nmax_credentials_per_person = 0\n",
            dir.path(),
        );
        for key in [
            "doors[0].id",
            "doors[0].zone",
            "persons[0].id",
            "roster.max_credentials_per_person",
        ] {
            assert!(e.iter().any(|m| m.contains(key)), "{key} not in {e:?}");
        }
        assert!(
            e.iter()
                .any(|m| m.contains("ASCII letters, digits and - _ . : @")),
            "{e:?}"
        );
    }

    #[test]
    fn console_problems_name_key_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let e = errors("[console]\nlisten = \"localhost\"\n", dir.path());
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("6: console.listen"), "{e:?}");
        let e = errors(
            "[console]\ntls_cert_file = \"missing.pem\"\ntls_key_file = \"missing.key\"\n",
            dir.path(),
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("6: console.tls_cert_file") && m.contains("missing.pem")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.starts_with("7: console.tls_key_file")),
            "{e:?}"
        );
        let e = errors("[console]\ntls_cert_file = \"c.pem\"\n", dir.path());
        assert!(e[0].contains("go together"), "{e:?}");
        // Files that exist but hold no certificate or key.
        std::fs::write(dir.path().join("c.pem"), "not a certificate").unwrap();
        std::fs::write(dir.path().join("k.pem"), "not a key").unwrap();
        let e = errors(
            "[console]\ntls_cert_file = \"c.pem\"\ntls_key_file = \"k.pem\"\n",
            dir.path(),
        );
        assert!(
            e.iter()
                .any(|m| m.contains("console.tls_cert_file") && m.contains("no certificate")),
            "{e:?}"
        );
        let e = errors(
            "[console]\nsession_hours = 0\n[[console.users]]\nname = \"a b\"\nrole = \"guard\"\npassword_hash = \"$argon2id$nonsense\"\n",
            dir.path(),
        );
        assert!(
            e.iter().any(|m| m.contains("console.session_hours")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.contains("console.users[0].name")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("console.users[0].password_hash")),
            "{e:?}"
        );
        let e = errors("[console]\nport = 80\n", dir.path());
        assert!(e[0].contains("console.port"), "{e:?}");
        assert!(errors("", dir.path()).is_empty());
        let c = Config::parse(&format!("{BASE}[console]\n"), dir.path()).unwrap();
        assert_eq!(c.console.unwrap().listen, "127.0.0.1:8080");
        assert!(Config::parse(BASE, dir.path()).unwrap().console.is_none());
    }

    #[test]
    fn reference_and_demo_configs_parse() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        for file in ["gateway.toml", "demo.toml"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            if let Err(e) = Config::parse(&text, &root) {
                panic!("{file}: {e:?}");
            }
        }
    }
}
