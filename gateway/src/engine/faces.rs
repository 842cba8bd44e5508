//! Face reads from the vision task, turned into reasons. The vision task sends
//! its best candidate and the similarity; the thresholds are policy, so they
//! are applied here: at or above `match_threshold` the person is decided like
//! any credential, between the thresholds the read is `uncertain`, below it
//! (or with no candidate) the face is unknown, and a read without similarity
//! is a face that failed a quality or liveness gate (`no_usable_face`).
//! Repeated unknown faces at one door raise `unknown_face`
//! (`[[rules]] type = "unknown_face"`: how many within which window).

use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};

use super::site::DeviceInfo;
use super::{Effects, Engine};
use crate::contract::{AlarmType, DoorId, Reason};

/// What the face read says before the roster is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceVerdict {
    /// Decide the candidate like any credential.
    Candidate,
    /// Refuse with this reason (the candidate, if any, is named in the record
    /// only when `keep_person`).
    Refuse { reason: Reason, keep_person: bool },
}

/// The `[faces]` thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceRules {
    match_threshold: f32,
    unknown_threshold: f32,
}

impl FaceRules {
    pub fn new(match_threshold: f32, unknown_threshold: f32) -> Self {
        Self {
            match_threshold,
            unknown_threshold,
        }
    }

    pub fn match_threshold(&self) -> f32 {
        self.match_threshold
    }

    /// The same rules with another match threshold (never below the unknown one).
    pub fn with_match_threshold(self, t: f32) -> Self {
        Self {
            match_threshold: t.max(self.unknown_threshold),
            ..self
        }
    }

    /// Classifies a face read: `value` is the candidate person (empty: none).
    pub fn verdict(&self, value: &str, similarity: Option<f32>) -> FaceVerdict {
        let Some(s) = similarity else {
            return FaceVerdict::Refuse {
                reason: Reason::NoUsableFace,
                keep_person: false,
            };
        };
        if value.is_empty() || s < self.unknown_threshold {
            FaceVerdict::Refuse {
                reason: Reason::UnknownCredential,
                keep_person: false,
            }
        } else if s < self.match_threshold {
            FaceVerdict::Refuse {
                reason: Reason::Uncertain,
                keep_person: true,
            }
        } else {
            FaceVerdict::Candidate
        }
    }
}

/// Recent unknown faces per door.
#[derive(Default)]
pub struct UnknownFaces {
    seen: HashMap<DoorId, VecDeque<DateTime<Utc>>>,
}

impl Engine {
    /// Counts unknown faces at a door; enough of them in the window raise `unknown_face`.
    pub(super) fn unknown_face(
        &mut self,
        dev: &DeviceInfo,
        door: &DoorId,
        event: uuid::Uuid,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let window = self.params.unknown_window;
        let count = self.params.unknown_count as usize;
        let seen = self.unknown_faces.seen.entry(door.clone()).or_default();
        seen.push_back(now);
        while seen.front().is_some_and(|t| now - *t > window) {
            seen.pop_front();
        }
        if seen.len() < count {
            return;
        }
        seen.clear();
        let message = AlarmType::UnknownFace.message(&[
            ("count", &count),
            ("place", &self.site.place_name(dev)),
            ("window", &window.num_seconds()),
        ]);
        let mut spec = self.spec_for(dev, AlarmType::UnknownFace, door.as_str(), message);
        spec.event = Some(event);
        self.raise(fx, spec, now);
    }
}

impl Engine {
    /// A face match threshold computed for the gallery's size (`[faces]
    /// false_accept_rate`); ignored without `[faces]`.
    pub fn set_face_match_threshold(&mut self, t: f32) {
        if let Some(rules) = self.faces.as_mut() {
            *rules = rules.with_match_threshold(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calibrated_threshold_moves_the_match_line_only() {
        let r = FaceRules::new(0.5, 0.3).with_match_threshold(0.9);
        assert_eq!(r.match_threshold(), 0.9);
        assert!(matches!(
            r.verdict("p1", Some(0.8)),
            FaceVerdict::Refuse {
                reason: Reason::Uncertain,
                ..
            }
        ));
        assert_eq!(r.verdict("p1", Some(0.95)), FaceVerdict::Candidate);
        // Never below the unknown threshold.
        assert_eq!(
            FaceRules::new(0.5, 0.3)
                .with_match_threshold(0.1)
                .match_threshold(),
            0.3
        );
    }

    #[test]
    fn thresholds_split_the_reads() {
        let r = FaceRules::new(0.45, 0.30);
        assert_eq!(r.verdict("p1", Some(0.8)), FaceVerdict::Candidate);
        assert_eq!(
            r.verdict("p1", Some(0.35)),
            FaceVerdict::Refuse {
                reason: Reason::Uncertain,
                keep_person: true
            }
        );
        assert!(matches!(
            r.verdict("p1", Some(0.1)),
            FaceVerdict::Refuse {
                reason: Reason::UnknownCredential,
                ..
            }
        ));
        assert!(matches!(
            r.verdict("", None),
            FaceVerdict::Refuse {
                reason: Reason::NoUsableFace,
                ..
            }
        ));
    }

    /// The engine with [faces]: a camera at a door, a resident and a watchlist entry.
    fn engine() -> (crate::engine::Engine, sled::Db) {
        let text = r#"
[gateway]
id = "g"
estate = "e"
data_dir = "/tmp/unused"
[faces]
[[rules]]
type = "unknown_face"
count = 2
[[doors]]
id = "gate"
zone = "estate"
[[devices]]
id = "cam"
driver = "camera"
door = "gate"
url = "rtsp://127.0.0.1:1/x"
[[persons]]
id = "r1"
name = "Resident"
group = "resident"
[[persons]]
id = "w1"
name = "Wanted"
group = "watchlist"
"#;
        let cfg = crate::config::Config::parse(text, std::path::Path::new(".")).unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let e = crate::engine::Engine::new(&cfg.engine(), &db).unwrap();
        (e, db)
    }

    fn face(value: &str, similarity: Option<f32>) -> drivers::DeviceEvent {
        let mut read = drivers::CredentialRead::new(drivers::Credential {
            kind: drivers::CredentialKind::Face,
            value: value.into(),
        });
        read.similarity = similarity;
        drivers::DeviceEvent {
            device: drivers::DeviceId::new("cam"),
            at: chrono::Utc::now(),
            body: drivers::EventBody::Credential(read),
            receipt: Default::default(),
        }
    }

    fn outcome(fx: &crate::engine::Effects) -> (Option<String>, bool, bool, Vec<String>) {
        use crate::journal::RecordBody;
        let mut reason = None;
        let mut person = false;
        let mut alarms = Vec::new();
        for r in &fx.records {
            match &r.body {
                RecordBody::Event(e) => {
                    if let Some(d) = &e.decision {
                        reason = Some(d.reason.to_string());
                        person = e.person.is_some();
                    }
                }
                RecordBody::Alarm(a) => alarms.push(a.alarm_type.to_string()),
            }
        }
        let pulsed = fx
            .commands
            .iter()
            .any(|c| matches!(c.action, drivers::Action::Pulse { .. }));
        (reason, person, pulsed, alarms)
    }

    #[test]
    fn the_engine_decides_face_reads_by_the_thresholds() {
        let (mut e, _db) = engine();
        let now = chrono::Utc::now();
        let fx = e.on_device_event(face("r1", Some(0.8)), now);
        assert_eq!(outcome(&fx), (Some("granted".into()), true, true, vec![]));
        let fx = e.on_device_event(face("r1", Some(0.4)), now);
        assert_eq!(
            outcome(&fx),
            (Some("uncertain".into()), true, false, vec![])
        );
        let fx = e.on_device_event(face("", None), now);
        assert_eq!(
            outcome(&fx),
            (Some("no_usable_face".into()), false, false, vec![])
        );
        let fx = e.on_device_event(face("w1", Some(0.9)), now);
        let (reason, _, pulsed, alarms) = outcome(&fx);
        assert_eq!(reason.as_deref(), Some("watchlist"));
        assert!(!pulsed);
        assert_eq!(alarms, vec!["watchlist_face".to_string()]);
        // A low candidate is unknown and not named; the second unknown raises unknown_face.
        let fx = e.on_device_event(face("r1", Some(0.1)), now);
        assert_eq!(
            outcome(&fx),
            (Some("unknown_credential".into()), false, false, vec![])
        );
        let fx = e.on_device_event(face("", Some(0.05)), now);
        assert_eq!(outcome(&fx).3, vec!["unknown_face".to_string()]);
    }
}
