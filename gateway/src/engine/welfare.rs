//! Welfare checks (`welfare_no_activity`): persons with a watched tag (an
//! elderly resident living alone) who have not passed anywhere for too long.
//! Their last activity is kept in sled, so a restart does not reset the clock;
//! a failing store is an error the engine journals, never silence.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

use super::alarms::AlarmSpec;
use super::roster::Person;
use super::site::DeviceInfo;
use super::{person_ref, Effects, Engine, EngineError};
use crate::contract::{AlarmType, PersonId};

/// Where and when a person was last seen (welfare checks).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastSeen {
    pub ts: DateTime<Utc>,
    /// The door or place; None when the person was never seen (watched since `ts`).
    pub place: Option<String>,
}

/// Who is watched, and their last activity (tree `activity`).
pub struct Welfare {
    watched: HashSet<PersonId>,
    activity: sled::Tree,
    last_check: Option<DateTime<Utc>>,
}

impl Welfare {
    pub fn new(activity: sled::Tree) -> Self {
        Self {
            watched: HashSet::new(),
            activity,
            last_check: None,
        }
    }

    fn get(&self, id: &PersonId) -> Result<Option<LastSeen>, EngineError> {
        match self.activity.get(id.as_str())? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| EngineError::Corrupt(format!("last activity of {id}: {e}"))),
        }
    }

    fn put(&self, id: &PersonId, last: &LastSeen) -> Result<(), EngineError> {
        let v = serde_json::to_vec(last)
            .map_err(|e| EngineError::Corrupt(format!("last activity of {id}: {e}")))?;
        self.activity.insert(id.as_str(), v)?;
        Ok(())
    }
}

impl Engine {
    /// Where and when a watched person was last seen.
    pub fn last_seen(&self, id: &PersonId) -> Result<Option<LastSeen>, EngineError> {
        self.welfare.get(id)
    }

    /// Starts (or stops) watching a person according to their tags; a person
    /// never seen is watched from now.
    pub(super) fn watch_if_tagged(
        &mut self,
        id: &PersonId,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let tagged = self
            .roster
            .get(id)
            .is_some_and(|p| p.tags.iter().any(|t| self.params.welfare_tags.contains(t)));
        if tagged {
            if self.welfare.watched.insert(id.clone()) && self.welfare.get(id)?.is_none() {
                let since = LastSeen {
                    ts: now,
                    place: None,
                };
                self.welfare.put(id, &since)?;
            }
        } else if self.welfare.watched.remove(id) {
            self.welfare.activity.remove(id.as_str())?;
        }
        Ok(())
    }

    /// Once a minute: persons with a watched tag and no activity for too long.
    pub(super) fn check_welfare(&mut self, now: DateTime<Utc>, fx: &mut Effects) {
        let due = self
            .welfare
            .last_check
            .is_none_or(|t| now - t >= chrono::Duration::seconds(60));
        if !due {
            return;
        }
        self.welfare.last_check = Some(now);
        let mut ids: Vec<PersonId> = self.welfare.watched.iter().cloned().collect();
        ids.sort();
        for id in ids {
            let Some(p) = self.roster.get(&id).cloned() else {
                continue;
            };
            let last = match self.welfare.get(&id) {
                Ok(Some(last)) => last,
                Ok(None) => continue,
                Err(e) => {
                    self.storage_failed(fx, "welfare check", &e, now);
                    continue;
                }
            };
            if now - last.ts < self.params.welfare_after {
                continue;
            }
            let hours = (now - last.ts).num_minutes() as f64 / 60.0;
            let local = last
                .ts
                .with_timezone(&self.policy.offset())
                .format("%Y-%m-%d %H:%M");
            let since = match &last.place {
                Some(place) => format!("last seen at {place} at {local}"),
                None => format!("never seen since watched from {local}"),
            };
            let hours = format!("{hours:.1}");
            let message = AlarmType::WelfareNoActivity.message(&[
                ("name", &p.name),
                ("person", &p.id),
                ("hours", &hours),
                ("last", &since),
            ]);
            let mut spec = AlarmSpec::new(AlarmType::WelfareNoActivity, id.as_str(), message);
            spec.person = Some(person_ref(&p));
            spec.lasting = true;
            self.raise(fx, spec, now);
        }
    }

    /// Notes where a watched person was seen; ends their welfare alarm.
    pub(super) fn seen(
        &mut self,
        p: &Person,
        dev: &DeviceInfo,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        if !self.welfare.watched.contains(&p.id) {
            return;
        }
        let last = LastSeen {
            ts: now,
            place: Some(self.site.place_name(dev)),
        };
        if let Err(e) = self.welfare.put(&p.id, &last) {
            self.storage_failed(fx, "last activity not saved", &e, now);
        }
        self.end(fx, AlarmType::WelfareNoActivity, p.id.as_str(), now);
    }
}
