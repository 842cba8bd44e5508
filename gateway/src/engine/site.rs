//! The site model: the doors and the devices as the engine sees them (where
//! they are, not how they talk), their link state, and the names a guard reads.

use drivers::{DeviceId, Direction};
use serde::Serialize;
use std::collections::HashMap;

use super::config::{DeviceConfig, DoorConfig, DoorKind};
use super::doors::{DoorView, Doors};
use crate::contract::{DoorId, ZoneId};

/// A device as the engine sees it: where it is, not how it talks.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub id: DeviceId,
    pub name: Option<String>,
    pub driver: &'static str,
    pub door: Option<DoorId>,
    pub direction: Option<Direction>,
    pub zone: Option<ZoneId>,
    pub online: Option<bool>,
}

/// A device for the console.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfoView {
    pub id: DeviceId,
    pub driver: &'static str,
    pub door: Option<DoorId>,
    pub zone: Option<ZoneId>,
    pub online: Option<bool>,
}

/// A door for the console: config, state, and its devices' link state.
#[derive(Debug, Clone, Serialize)]
pub struct DoorInfo {
    pub id: DoorId,
    pub name: String,
    pub zone: ZoneId,
    pub kind: DoorKind,
    #[serde(flatten)]
    pub view: DoorView,
    /// All devices of the door online (false if any is offline, null if unknown).
    pub online: Option<bool>,
}

/// The doors and devices of the estate, in config order.
pub struct Site {
    doors: HashMap<DoorId, DoorConfig>,
    door_order: Vec<DoorId>,
    devices: HashMap<DeviceId, DeviceInfo>,
    device_order: Vec<DeviceId>,
}

impl Site {
    pub fn new(doors: &[DoorConfig], devices: &[DeviceConfig]) -> Site {
        let by_id: HashMap<DoorId, DoorConfig> =
            doors.iter().map(|d| (d.id.clone(), d.clone())).collect();
        let infos = devices
            .iter()
            .map(|d| {
                // A device at a door is in the door's zone unless it says otherwise.
                let zone = d.zone.clone().or_else(|| {
                    d.door
                        .as_ref()
                        .and_then(|door| by_id.get(door))
                        .map(|door| door.zone.clone())
                });
                (
                    d.id.clone(),
                    DeviceInfo {
                        id: d.id.clone(),
                        name: d.name.clone(),
                        driver: d.driver.name(),
                        door: d.door.clone(),
                        direction: d.direction,
                        zone,
                        online: None,
                    },
                )
            })
            .collect();
        Site {
            door_order: doors.iter().map(|d| d.id.clone()).collect(),
            doors: by_id,
            device_order: devices.iter().map(|d| d.id.clone()).collect(),
            devices: infos,
        }
    }

    pub fn door(&self, id: &DoorId) -> Option<&DoorConfig> {
        self.doors.get(id)
    }

    pub fn device(&self, id: &DeviceId) -> Option<&DeviceInfo> {
        self.devices.get(id)
    }

    /// The door a device is at.
    pub fn door_of(&self, dev: &DeviceInfo) -> Option<&DoorConfig> {
        dev.door.as_ref().and_then(|d| self.doors.get(d))
    }

    pub fn set_online(&mut self, id: &DeviceId, up: bool) {
        if let Some(d) = self.devices.get_mut(id) {
            d.online = Some(up);
        }
    }

    /// The device named by the door's `lock`, or every device bound to the door.
    pub fn lock_devices(&self, door: &DoorConfig) -> Vec<DeviceId> {
        match &door.lock {
            Some(lock) => vec![lock.clone()],
            None => self
                .device_order
                .iter()
                .filter(|id| {
                    self.devices
                        .get(*id)
                        .is_some_and(|d| d.door.as_ref() == Some(&door.id))
                })
                .cloned()
                .collect(),
        }
    }

    /// Where a device is, in the words a guard reads.
    pub fn place_name(&self, dev: &DeviceInfo) -> String {
        match self.door_of(dev) {
            Some(door) => door.display_name().to_owned(),
            None => match (&dev.name, &dev.zone) {
                (Some(name), _) => name.clone(),
                (None, Some(z)) => format!("zone {z}"),
                (None, None) => format!("device {}", dev.id),
            },
        }
    }

    /// Every door with its state, in config order.
    pub fn door_infos(&self, states: &Doors) -> Vec<DoorInfo> {
        self.door_order
            .iter()
            .filter_map(|id| {
                let cfg = self.doors.get(id)?;
                let devs: Vec<Option<bool>> = self
                    .devices
                    .values()
                    .filter(|d| d.door.as_ref() == Some(id))
                    .map(|d| d.online)
                    .collect();
                let online = if devs.contains(&Some(false)) {
                    Some(false)
                } else if !devs.is_empty() && devs.iter().all(|o| *o == Some(true)) {
                    Some(true)
                } else {
                    None
                };
                Some(DoorInfo {
                    id: id.clone(),
                    name: cfg.display_name().to_owned(),
                    zone: cfg.zone.clone(),
                    kind: cfg.kind,
                    view: states.view(id)?,
                    online,
                })
            })
            .collect()
    }

    /// Every device with its link state, in config order.
    pub fn device_views(&self) -> Vec<DeviceInfoView> {
        self.device_order
            .iter()
            .filter_map(|id| self.devices.get(id))
            .map(|d| DeviceInfoView {
                id: d.id.clone(),
                driver: d.driver,
                door: d.door.clone(),
                zone: d.zone.clone(),
                online: d.online,
            })
            .collect()
    }
}
