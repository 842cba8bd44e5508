//! Access decisions: a credential presented at a device (card, PIN, QR, plate,
//! face, an e-bike tag at a gate) decided against the roster and the policy,
//! the door released on a grant; door contacts (forced doors) and exit buttons.

use chrono::{DateTime, Utc};
use drivers::{Action, Credential, CredentialKind, CredentialRead, InputKind, Output};

use super::config::DoorConfig;
use super::doors::DoorSignal;
use super::faces::FaceVerdict;
use super::policy::Place;
use super::site::DeviceInfo;
use super::{person_ref, Effects, Engine};
use crate::contract::{
    AlarmType, DecisionRef, Draft, EventAction, EventKind, EventRecord, PersonId, Reason,
};

impl Engine {
    pub(super) fn on_credential(
        &mut self,
        dev: &DeviceInfo,
        read: CredentialRead,
        ts: DateTime<Utc>,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let kind = match read.credential.kind {
            CredentialKind::Plate => EventKind::Vehicle,
            CredentialKind::Tag => EventKind::Tag,
            CredentialKind::Face => EventKind::Face,
            _ => EventKind::Access,
        };
        // Re-normalise: a driver may have passed the value as the device spelled it.
        let credential = Credential::parse(read.credential.kind, &read.credential.value)
            .unwrap_or(read.credential);
        let face = match (&self.faces, kind) {
            (Some(rules), EventKind::Face) => rules.verdict(&credential.value, read.similarity),
            _ => FaceVerdict::Candidate,
        };
        let person = match credential.kind {
            CredentialKind::Face => self.roster.get(&PersonId::new(credential.value.as_str())),
            _ => self.roster.by_credential(&credential),
        }
        .filter(|_| {
            !matches!(
                face,
                FaceVerdict::Refuse {
                    keep_person: false,
                    ..
                }
            )
        })
        .cloned();
        let mut e = EventRecord::new(kind, EventAction::Decision, dev.id.clone());
        e.door = dev.door.clone();
        e.zone = dev.zone.clone();
        e.direction = dev.direction;
        e.similarity = read.similarity;
        e.confidence = read.confidence;
        e.colour = read.colour;
        e.late = read.late;
        e.offline = Some(!self.link_up);
        e.person = person.as_ref().map(person_ref);
        e.credential = Some(credential);
        let door = self.site.door_of(dev).cloned();
        let reason = match (face, &person, &door) {
            (FaceVerdict::Refuse { reason, .. }, _, _) => reason,
            (_, None, _) => Reason::UnknownCredential,
            (_, Some(_), None) => Reason::NotAllowedHere,
            (_, Some(p), Some(door)) => {
                let place = Place {
                    door: &door.id,
                    zone: &door.zone,
                    direction: dev.direction,
                    anti_passback: door.anti_passback,
                };
                self.policy.decide(p, &place, now, &self.apb, read.late)
            }
        };
        e.decision = Some(DecisionRef {
            granted: reason.granted(),
            reason,
        });
        let mut draft = Draft::event(ts, e);
        draft.snapshot = read.snapshot.clone();
        let event_id = draft.id;
        fx.records.push(draft);
        // Reader feedback first: the resident waits for the beep.
        fx.command(
            &dev.id,
            Action::Feedback {
                granted: reason.granted(),
            },
        );
        if let Some(p) = &person {
            self.seen(p, dev, now, fx);
        }
        // A face that failed a gate (`no_usable_face`) is not an unknown face.
        if kind == EventKind::Face && person.is_none() && reason == Reason::UnknownCredential {
            if let Some(door) = &dev.door {
                self.unknown_face(dev, door, event_id, now, fx);
            }
        }
        if let (Some(door), true) = (&door, reason.granted()) {
            self.open_door(door, now, fx);
            if let (Some(p), Some(dir), true) = (&person, dev.direction, door.anti_passback) {
                self.apb.record(&p.id, &door.zone, dir);
            }
        }
        if reason == Reason::Watchlist && kind == EventKind::Face {
            if let Some(p) = &person {
                let message = AlarmType::WatchlistFace
                    .message(&[("name", &p.name), ("place", &self.site.place_name(dev))]);
                let mut spec = self.spec_for(dev, AlarmType::WatchlistFace, p.id.as_str(), message);
                spec.person = Some(person_ref(p));
                spec.event = Some(event_id);
                spec.snapshot = read.snapshot;
                self.raise(fx, spec, now);
            }
        }
    }

    /// A door contact or an exit button.
    pub(super) fn on_input(
        &mut self,
        dev: &DeviceInfo,
        input: InputKind,
        active: bool,
        event: uuid::Uuid,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let Some(door) = self.site.door_of(dev).cloned() else {
            return;
        };
        match input {
            InputKind::DoorContact => match self.doors.contact(&door.id, active, now) {
                Some(DoorSignal::Forced) => {
                    let message = AlarmType::DoorForced.message(&[("place", &door.display_name())]);
                    let mut spec =
                        self.spec_for(dev, AlarmType::DoorForced, door.id.as_str(), message);
                    spec.event = Some(event);
                    self.raise(fx, spec, now);
                }
                _ if !active => {
                    // Also after a restart, when the door's opening was not seen.
                    self.end(fx, AlarmType::DoorHeldOpen, door.id.as_str(), now);
                }
                _ => {}
            },
            InputKind::ExitRequest if active && door.exit_request_opens => {
                let mut e =
                    EventRecord::new(EventKind::Access, EventAction::DoorRelease, dev.id.clone());
                e.door = Some(door.id.clone());
                e.zone = Some(door.zone.clone());
                e.detail = Some("exit request".into());
                fx.event(now, e);
                self.open_door(&door, now, fx);
            }
            _ => {}
        }
    }

    /// Releases a door's lock and notes the release for forced-door detection.
    pub(super) fn open_door(&mut self, door: &DoorConfig, now: DateTime<Utc>, fx: &mut Effects) {
        self.doors.release(&door.id, now, door.open_ms);
        for lock in self.site.lock_devices(door) {
            fx.command(
                &lock,
                Action::Pulse {
                    output: Output::Lock,
                    ms: door.open_ms,
                },
            );
        }
    }
}
