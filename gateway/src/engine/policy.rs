//! Access decisions: who may pass which door, when. Pure logic over the roster
//! entry, the place and the time; no I/O, so every case is a plain unit test.

use chrono::{DateTime, FixedOffset, Utc};
use drivers::Direction;
use std::collections::{HashMap, HashSet};

use super::config::EngineConfig;
use super::roster::Person;
use super::schedule::Schedule;
pub use crate::contract::Reason;
use crate::contract::{DoorId, Group, PersonId, ZoneId};

/// Where a credential was presented.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub door: &'a DoorId,
    pub zone: &'a ZoneId,
    pub direction: Option<Direction>,
    pub anti_passback: bool,
}

struct Rule {
    group: Group,
    all_zones: bool,
    zones: HashSet<ZoneId>,
    doors: HashSet<DoorId>,
    schedule: Option<Schedule>,
}

impl Rule {
    fn covers(&self, place: &Place) -> bool {
        self.all_zones || self.zones.contains(place.zone) || self.doors.contains(place.door)
    }
}

/// The compiled `[[access]]` rules.
pub struct Policy {
    rules: Vec<Rule>,
    offset: FixedOffset,
}

impl Policy {
    /// Compiles the rules. Without any rule, residents, staff and visitors may pass
    /// every door at any time within their validity (a sensible start for a new site).
    pub fn from_config(cfg: &EngineConfig) -> Result<Policy, String> {
        let schedules: HashMap<&str, Schedule> = cfg
            .schedules
            .iter()
            .map(|s| Schedule::parse(&s.windows).map(|p| (s.id.as_str(), p)))
            .collect::<Result<_, _>>()?;
        let mut rules = Vec::new();
        for r in &cfg.access {
            let schedule = match &r.schedule {
                Some(id) => Some(
                    schedules
                        .get(id.as_str())
                        .cloned()
                        .ok_or_else(|| format!("no schedule `{id}`"))?,
                ),
                None => None,
            };
            rules.push(Rule {
                group: r.group,
                all_zones: r.zones.iter().any(|z| z == "*"),
                zones: r.zones.iter().map(|z| ZoneId::new(z.as_str())).collect(),
                doors: r.doors.iter().cloned().collect(),
                schedule,
            });
        }
        if rules.is_empty() {
            for group in [Group::Resident, Group::Staff, Group::Visitor] {
                rules.push(Rule {
                    group,
                    all_zones: true,
                    zones: HashSet::new(),
                    doors: HashSet::new(),
                    schedule: None,
                });
            }
        }
        Ok(Policy {
            rules,
            offset: cfg.utc_offset,
        })
    }

    /// The estate's local time offset.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// Decides for a known person. `late` reads are never granted.
    pub fn decide(
        &self,
        person: &Person,
        place: &Place,
        now: DateTime<Utc>,
        apb: &AntiPassback,
        late: bool,
    ) -> Reason {
        if person.group == Group::Watchlist {
            return Reason::Watchlist;
        }
        if late {
            return Reason::StaleRead;
        }
        if person.valid_until.is_some_and(|u| now >= u) {
            return Reason::Expired;
        }
        if person.valid_from.is_some_and(|f| now < f) {
            return Reason::NotYetValid;
        }
        let local = now.with_timezone(&self.offset);
        let mut covered = false;
        let mut in_time = false;
        for r in self.rules.iter().filter(|r| r.group == person.group) {
            if r.covers(place) {
                covered = true;
                if r.schedule.as_ref().is_none_or(|s| s.is_open(&local)) {
                    in_time = true;
                    break;
                }
            }
        }
        if !covered {
            return Reason::NotAllowedHere;
        }
        if !in_time {
            return Reason::OutsideSchedule;
        }
        if place.anti_passback {
            if let Some(dir) = place.direction {
                if apb.last(&person.id, place.zone) == Some(dir) {
                    return Reason::AntiPassback;
                }
            }
        }
        Reason::Granted
    }
}

/// The last direction each person passed per zone (doors with `anti_passback`).
/// Persisted so that a restart does not reset it.
pub struct AntiPassback {
    last: HashMap<(PersonId, ZoneId), Direction>,
    tree: sled::Tree,
}

impl AntiPassback {
    pub fn open(tree: sled::Tree) -> AntiPassback {
        let mut last = HashMap::new();
        for (k, v) in tree.iter().flatten() {
            let key = String::from_utf8_lossy(&k).into_owned();
            if let Some((p, z)) = key.split_once('\u{1f}') {
                let dir = if v.as_ref() == b"in" {
                    Direction::In
                } else {
                    Direction::Out
                };
                last.insert((PersonId::new(p), ZoneId::new(z)), dir);
            }
        }
        AntiPassback { last, tree }
    }

    pub fn last(&self, person: &PersonId, zone: &ZoneId) -> Option<Direction> {
        self.last.get(&(person.clone(), zone.clone())).copied()
    }

    pub fn record(&mut self, person: &PersonId, zone: &ZoneId, dir: Direction) {
        self.last.insert((person.clone(), zone.clone()), dir);
        let key = format!("{person}\u{1f}{zone}");
        if let Err(e) = self.tree.insert(key, dir.to_string().as_bytes()) {
            tracing::error!("anti-passback state not saved: {e}");
        }
    }

    /// Forgets a person (deleted from the roster).
    pub fn forget(&mut self, person: &PersonId) {
        self.last.retain(|(p, _), _| p != person);
        let prefix = format!("{person}\u{1f}");
        for k in self.tree.scan_prefix(prefix).keys().flatten() {
            let _ = self.tree.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn config(extra: &str) -> EngineConfig {
        let text = format!(
            r#"
[gateway]
id = "g1"
estate = "e1"
data_dir = "/tmp/x"

[[doors]]
id = "main"
zone = "lobby"
[[doors]]
id = "gym"
zone = "club"
{extra}
"#
        );
        crate::config::Config::parse(&text, std::path::Path::new("."))
            .unwrap()
            .engine()
    }

    fn person(group: Group) -> Person {
        Person {
            id: PersonId::new("p1"),
            name: "P".into(),
            group,
            tags: vec![],
            valid_from: None,
            valid_until: None,
            credentials: vec![],
            faces: 0,
        }
    }

    fn apb() -> AntiPassback {
        let db = sled::Config::new().temporary(true).open().unwrap();
        AntiPassback::open(db.open_tree("apb").unwrap())
    }

    /// 2026-11-23 (Monday) at the given local hour, +08:00.
    fn monday(h: u32) -> DateTime<Utc> {
        FixedOffset::east_opt(8 * 3600)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 23, h, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn place<'a>(door: &'a DoorId, zone: &'a ZoneId) -> Place<'a> {
        Place {
            door,
            zone,
            direction: Some(Direction::In),
            anti_passback: false,
        }
    }

    #[test]
    fn default_policy_lets_residents_through_and_refuses_watchlist() {
        let p = Policy::from_config(&config("")).unwrap();
        let (d, z) = (DoorId::new("main"), ZoneId::new("lobby"));
        let a = apb();
        assert_eq!(
            p.decide(
                &person(Group::Resident),
                &place(&d, &z),
                monday(3),
                &a,
                false
            ),
            Reason::Granted
        );
        assert_eq!(
            p.decide(
                &person(Group::Watchlist),
                &place(&d, &z),
                monday(3),
                &a,
                false
            ),
            Reason::Watchlist
        );
        assert_eq!(
            p.decide(
                &person(Group::Resident),
                &place(&d, &z),
                monday(3),
                &a,
                true
            ),
            Reason::StaleRead
        );
    }

    #[test]
    fn zones_schedules_and_validity() {
        let p = Policy::from_config(&config(
            r#"
[[schedules]]
id = "day"
windows = ["mon-fri 08:00-18:00"]
[[access]]
group = "resident"
zones = ["*"]
[[access]]
group = "visitor"
zones = ["lobby"]
schedule = "day"
"#,
        ))
        .unwrap();
        let a = apb();
        let (main, lobby) = (DoorId::new("main"), ZoneId::new("lobby"));
        let (gym, club) = (DoorId::new("gym"), ZoneId::new("club"));
        let mut v = person(Group::Visitor);
        assert_eq!(
            p.decide(&v, &place(&main, &lobby), monday(9), &a, false),
            Reason::Granted
        );
        assert_eq!(
            p.decide(&v, &place(&main, &lobby), monday(19), &a, false),
            Reason::OutsideSchedule
        );
        assert_eq!(
            p.decide(&v, &place(&gym, &club), monday(9), &a, false),
            Reason::NotAllowedHere
        );
        v.valid_until = Some(monday(8));
        assert_eq!(
            p.decide(&v, &place(&main, &lobby), monday(9), &a, false),
            Reason::Expired
        );
        v.valid_until = None;
        v.valid_from = Some(monday(10));
        assert_eq!(
            p.decide(&v, &place(&main, &lobby), monday(9), &a, false),
            Reason::NotYetValid
        );
        assert_eq!(
            p.decide(
                &person(Group::Staff),
                &place(&main, &lobby),
                monday(9),
                &a,
                false
            ),
            Reason::NotAllowedHere
        );
        assert_eq!(
            p.decide(
                &person(Group::Resident),
                &place(&gym, &club),
                monday(2),
                &a,
                false
            ),
            Reason::Granted
        );
    }

    #[test]
    fn anti_passback_per_zone() {
        let p = Policy::from_config(&config("")).unwrap();
        let mut a = apb();
        let (d, z) = (DoorId::new("main"), ZoneId::new("lobby"));
        let mut pl = place(&d, &z);
        pl.anti_passback = true;
        let r = person(Group::Resident);
        assert_eq!(p.decide(&r, &pl, monday(9), &a, false), Reason::Granted);
        a.record(&r.id, &z, Direction::In);
        assert_eq!(
            p.decide(&r, &pl, monday(9), &a, false),
            Reason::AntiPassback
        );
        pl.direction = Some(Direction::Out);
        assert_eq!(p.decide(&r, &pl, monday(9), &a, false), Reason::Granted);
        // Survives a reload from sled.
        let reloaded = AntiPassback::open(a.tree.clone());
        assert_eq!(reloaded.last(&r.id, &z), Some(Direction::In));
    }
}
