//! E-bike tags (UHF RFID): at a gate (bike shed, car park) a tag is a
//! credential like a card; in an elevator or lobby it raises
//! `ebike_in_elevator`, holds the car and plays the prompt until it leaves.

use chrono::{DateTime, Utc};
use drivers::{Action, Credential, CredentialKind, CredentialRead, Output, Presence};

use super::config::DoorKind;
use super::site::DeviceInfo;
use super::{person_ref, Effects, Engine};
use crate::contract::{AlarmType, EventAction, EventKind, EventRecord, TagRef};

/// What a tag reader reported about one tag.
pub(super) struct TagSeen {
    pub epc: String,
    pub presence: Presence,
    pub antenna: Option<u16>,
    pub rssi: Option<f32>,
}

impl Engine {
    pub(super) fn on_tag(
        &mut self,
        dev: &DeviceInfo,
        tag: TagSeen,
        ts: DateTime<Utc>,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let TagSeen {
            epc,
            presence,
            antenna,
            rssi,
        } = tag;
        let credential = Credential::parse(CredentialKind::Tag, &epc).unwrap_or(Credential {
            kind: CredentialKind::Tag,
            value: epc.clone(),
        });
        let door = self.site.door_of(dev).cloned();
        let elevator = door
            .as_ref()
            .is_some_and(|d| matches!(d.kind, DoorKind::Elevator | DoorKind::Lobby));
        if presence == Presence::Arrived && !elevator && door.is_some() {
            // An e-bike at a gate (bike shed, car park): an access decision like a card.
            let mut read = CredentialRead::new(credential);
            read.format = Some("uhf".into());
            self.on_credential(dev, read, ts, now, fx);
            return;
        }
        let person = self.roster.by_credential(&credential).map(person_ref);
        let mut e = EventRecord::new(EventKind::Tag, EventAction::TagSeen, dev.id.clone());
        e.door = dev.door.clone();
        e.zone = dev.zone.clone();
        e.credential = Some(credential.clone());
        e.person = person.clone();
        e.tag = Some(TagRef {
            epc: credential.value.clone(),
            presence,
            antenna,
            rssi,
        });
        let event = fx.event(ts, e);
        if !elevator {
            return;
        }
        let subject = format!(
            "{}/{}",
            dev.door.as_ref().map(|d| d.as_str()).unwrap_or(""),
            credential.value
        );
        let hold = |on: bool| Action::Hold {
            output: Output::ElevatorHold,
            on,
        };
        match presence {
            Presence::Arrived => {
                let owner = person
                    .as_ref()
                    .map(|p| format!(" (owner {})", p.id))
                    .unwrap_or_default();
                let message = AlarmType::EbikeInElevator.message(&[
                    ("tag", &credential.value),
                    ("place", &self.site.place_name(dev)),
                    ("owner", &owner),
                ]);
                let mut spec = self.spec_for(dev, AlarmType::EbikeInElevator, &subject, message);
                spec.person = person;
                spec.event = Some(event);
                spec.lasting = true;
                self.raise(fx, spec, now);
                if let (Some(door), true) = (&door, self.params.ebike_hold) {
                    for lock in self.site.lock_devices(door) {
                        fx.command(&lock, hold(true));
                        fx.command(
                            &lock,
                            Action::Voice {
                                prompt: self.params.ebike_prompt.clone(),
                            },
                        );
                    }
                }
            }
            Presence::Departed => {
                self.end(fx, AlarmType::EbikeInElevator, &subject, now);
                if let (Some(door), true) = (&door, self.params.ebike_hold) {
                    for lock in self.site.lock_devices(door) {
                        fx.command(&lock, hold(false));
                    }
                }
            }
            Presence::Moved => {}
        }
    }
}
