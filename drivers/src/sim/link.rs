//! A switch per simulated device that plays the role of its cable: tests and the
//! demo cut it to see the device go offline and come back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::watch;

use crate::event::DeviceId;

/// The simulated link of one device; clones share the same switch.
#[derive(Clone)]
pub struct SimLink {
    tx: Arc<watch::Sender<bool>>,
}

fn registry() -> &'static Mutex<HashMap<DeviceId, SimLink>> {
    static LINKS: OnceLock<Mutex<HashMap<DeviceId, SimLink>>> = OnceLock::new();
    LINKS.get_or_init(|| Mutex::new(HashMap::new()))
}

impl SimLink {
    /// The link of a device in this process (up when first seen).
    pub fn for_device(id: &DeviceId) -> SimLink {
        let mut links = match registry().lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        links
            .entry(id.clone())
            .or_insert_with(|| SimLink {
                tx: Arc::new(watch::channel(true).0),
            })
            .clone()
    }

    pub fn set(&self, up: bool) {
        self.tx.send_replace(up);
    }

    pub fn is_up(&self) -> bool {
        *self.tx.borrow()
    }

    pub fn watch(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }
}
