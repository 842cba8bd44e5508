//! Reads of the engine's state for the console and `/metrics`: doors with
//! their state, devices with their link state, open alarms, persons.

use serde::Serialize;

use super::roster::Person;
use super::site::{DeviceInfoView, DoorInfo};
use super::Engine;
use crate::contract::{AlarmRecord, PersonId};

/// A read of the engine's state (console pages).
#[derive(Debug, Clone)]
pub enum Query {
    Doors,
    OpenAlarms,
    Person(PersonId),
    /// Persons sorted by id, from `after` (exclusive), at most `limit`.
    Persons {
        after: Option<PersonId>,
        limit: usize,
    },
    Devices,
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum QueryResult {
    Doors(Vec<DoorInfo>),
    Alarms(Vec<AlarmRecord>),
    Person(Option<Box<Person>>),
    Persons(Vec<Person>),
    Devices(Vec<DeviceInfoView>),
}

impl Engine {
    /// Answers a read of the state.
    pub fn query(&self, q: Query) -> QueryResult {
        match q {
            Query::Doors => QueryResult::Doors(self.site.door_infos(&self.doors)),
            Query::OpenAlarms => QueryResult::Alarms(self.open_alarms()),
            Query::Person(id) => QueryResult::Person(self.roster.get(&id).cloned().map(Box::new)),
            Query::Persons { after, limit } => {
                QueryResult::Persons(self.persons(after.as_ref(), limit))
            }
            Query::Devices => QueryResult::Devices(self.site.device_views()),
        }
    }

    /// Persons sorted by id, from `after` (exclusive), at most `limit`.
    pub fn persons(&self, after: Option<&PersonId>, limit: usize) -> Vec<Person> {
        let mut all: Vec<&Person> = self
            .roster
            .iter()
            .filter(|p| after.is_none_or(|a| &p.id > a))
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all.into_iter().take(limit).cloned().collect()
    }

    /// Open alarms, most severe first, then oldest first.
    pub fn open_alarms(&self) -> Vec<AlarmRecord> {
        let mut v: Vec<AlarmRecord> = self.alarms.iter().map(|o| o.record.clone()).collect();
        v.sort_by(|a, b| {
            a.severity
                .cmp(&b.severity)
                .then(a.raised_at.cmp(&b.raised_at))
        });
        v
    }
}
