//! The estate's roster: persons, their group and tags, credentials and validity.
//! Kept in memory with an index by credential, written through to sled so it
//! survives restarts and platform outages.

use chrono::{DateTime, Utc};
use drivers::{Credential, CredentialKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub use crate::contract::Group;
use crate::contract::PersonId;

/// One person of the roster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: PersonId,
    pub name: String,
    pub group: Group,
    /// Free-form tags, e.g. `elderly_alone` (welfare checks).
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    /// Visitor passes expire here.
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub credentials: Vec<Credential>,
    /// Number of enrolled face templates (kept by the face gallery).
    #[serde(default)]
    pub faces: u32,
}

/// Why a roster change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    #[error("person id must be 1-128 characters")]
    BadId,
    #[error("name must be 1-200 characters")]
    BadName,
    #[error("valid_until is before valid_from")]
    BadValidity,
    #[error("credential {credential} already belongs to person {owner}")]
    CredentialInUse {
        credential: Credential,
        owner: PersonId,
    },
    #[error("face credentials are enrolled from photos, not given as values")]
    FaceValue,
    #[error("no person {0}")]
    NotFound(PersonId),
    #[error("roster storage: {0}")]
    Storage(String),
}

/// The persons and the credential index.
pub struct Roster {
    persons: HashMap<PersonId, Person>,
    by_credential: HashMap<Credential, PersonId>,
    tree: sled::Tree,
}

impl Roster {
    /// Loads the roster from its tree; unreadable entries are skipped and logged.
    pub fn open(tree: sled::Tree) -> Result<Roster, RosterError> {
        let mut roster = Roster {
            persons: HashMap::new(),
            by_credential: HashMap::new(),
            tree,
        };
        for kv in roster.tree.iter() {
            let (k, v) = kv.map_err(|e| RosterError::Storage(e.to_string()))?;
            match serde_json::from_slice::<Person>(&v) {
                Ok(p) => roster.index(p),
                Err(e) => tracing::error!(
                    key = %String::from_utf8_lossy(&k),
                    "roster: unreadable person skipped: {e}"
                ),
            }
        }
        Ok(roster)
    }

    pub fn len(&self) -> usize {
        self.persons.len()
    }

    pub fn is_empty(&self) -> bool {
        self.persons.is_empty()
    }

    pub fn get(&self, id: &PersonId) -> Option<&Person> {
        self.persons.get(id)
    }

    pub fn by_credential(&self, c: &Credential) -> Option<&Person> {
        self.by_credential
            .get(c)
            .and_then(|id| self.persons.get(id))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Person> {
        self.persons.values()
    }

    /// Whether `upsert` would take the person (nothing is changed).
    pub fn check(&self, person: &Person) -> Result<(), RosterError> {
        if person.id.as_str().is_empty() || person.id.as_str().len() > 128 {
            return Err(RosterError::BadId);
        }
        if person.name.trim().is_empty() || person.name.chars().count() > 200 {
            return Err(RosterError::BadName);
        }
        if let (Some(from), Some(until)) = (person.valid_from, person.valid_until) {
            if until < from {
                return Err(RosterError::BadValidity);
            }
        }
        for c in &person.credentials {
            if c.kind == CredentialKind::Face {
                return Err(RosterError::FaceValue);
            }
            if let Some(owner) = self.by_credential.get(c) {
                if owner != &person.id {
                    return Err(RosterError::CredentialInUse {
                        credential: c.clone(),
                        owner: owner.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Adds or replaces a person. Refused when a credential belongs to someone else.
    pub fn upsert(&mut self, person: Person) -> Result<(), RosterError> {
        self.check(&person)?;
        let json = serde_json::to_vec(&person).map_err(|e| RosterError::Storage(e.to_string()))?;
        self.tree
            .insert(person.id.as_str(), json)
            .map_err(|e| RosterError::Storage(e.to_string()))?;
        self.unindex(&person.id);
        self.index(person);
        Ok(())
    }

    pub fn delete(&mut self, id: &PersonId) -> Result<Person, RosterError> {
        if !self.persons.contains_key(id) {
            return Err(RosterError::NotFound(id.clone()));
        }
        self.tree
            .remove(id.as_str())
            .map_err(|e| RosterError::Storage(e.to_string()))?;
        self.unindex(id)
            .ok_or_else(|| RosterError::NotFound(id.clone()))
    }

    /// Records the number of face templates a person has (the gallery owns them).
    pub fn set_faces(&mut self, id: &PersonId, faces: u32) -> Result<(), RosterError> {
        let mut p = self
            .persons
            .get(id)
            .cloned()
            .ok_or_else(|| RosterError::NotFound(id.clone()))?;
        p.faces = faces;
        self.upsert(p)
    }

    fn index(&mut self, p: Person) {
        for c in &p.credentials {
            self.by_credential.insert(c.clone(), p.id.clone());
        }
        self.persons.insert(p.id.clone(), p);
    }

    fn unindex(&mut self, id: &PersonId) -> Option<Person> {
        let old = self.persons.remove(id)?;
        for c in &old.credentials {
            if self.by_credential.get(c) == Some(id) {
                self.by_credential.remove(c);
            }
        }
        Some(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, cards: &[&str]) -> Person {
        Person {
            id: PersonId::new(id),
            name: format!("Person {id}"),
            group: Group::Resident,
            tags: vec![],
            valid_from: None,
            valid_until: None,
            credentials: cards
                .iter()
                .map(|c| Credential::parse(CredentialKind::Card, c).unwrap())
                .collect(),
            faces: 0,
        }
    }

    fn tree() -> sled::Tree {
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.open_tree("persons").unwrap()
    }

    #[test]
    fn upsert_index_and_reload() {
        let t = tree();
        let mut r = Roster::open(t.clone()).unwrap();
        r.upsert(person("p1", &["100", "101"])).unwrap();
        let card = Credential::parse(CredentialKind::Card, "101").unwrap();
        assert_eq!(r.by_credential(&card).unwrap().id.as_str(), "p1");
        // Replacing drops the old credentials from the index.
        r.upsert(person("p1", &["100"])).unwrap();
        assert!(r.by_credential(&card).is_none());
        let r2 = Roster::open(t).unwrap();
        assert_eq!(r2.len(), 1);
        assert!(r2
            .by_credential(&Credential::parse(CredentialKind::Card, "100").unwrap())
            .is_some());
    }

    #[test]
    fn credential_of_another_person_is_refused() {
        let mut r = Roster::open(tree()).unwrap();
        r.upsert(person("p1", &["100"])).unwrap();
        let err = r.upsert(person("p2", &["100"])).unwrap_err();
        assert!(matches!(err, RosterError::CredentialInUse { .. }));
        assert!(r.get(&PersonId::new("p2")).is_none());
    }

    #[test]
    fn delete_and_bad_input() {
        let mut r = Roster::open(tree()).unwrap();
        r.upsert(person("p1", &["100"])).unwrap();
        r.delete(&PersonId::new("p1")).unwrap();
        assert!(r.is_empty());
        assert!(matches!(
            r.delete(&PersonId::new("p1")),
            Err(RosterError::NotFound(_))
        ));
        assert_eq!(r.upsert(person("", &[])), Err(RosterError::BadId));
        let mut p = person("p3", &[]);
        p.name = " ".into();
        assert_eq!(r.upsert(p), Err(RosterError::BadName));
    }
}
