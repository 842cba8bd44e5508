//! The engine's task: takes device events and commands one at a time, in order,
//! and carries out the effects: device commands first (a resident is waiting at
//! the door), then records to the journal (which makes them durable before
//! anyone forwards or shows them).

use chrono::Utc;
use drivers::{Action, DeviceCommand, DeviceEvent, DeviceId};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::handle::Input;
use super::{Effects, Engine};
use crate::contract::EventAction;
use crate::journal::Journal;

/// Delivers device commands to the drivers' queues.
#[derive(Clone, Default)]
pub struct Router {
    devices: HashMap<DeviceId, mpsc::Sender<Action>>,
}

impl Router {
    pub fn add(&mut self, id: DeviceId, tx: mpsc::Sender<Action>) {
        self.devices.insert(id, tx);
    }

    /// Never waits: a driver whose queue is full is stuck, and the engine must not be.
    pub fn deliver(&self, cmd: DeviceCommand) {
        match self.devices.get(&cmd.device) {
            Some(tx) => {
                if let Err(e) = tx.try_send(cmd.action) {
                    tracing::warn!(device = %cmd.device, "command not delivered: {e}");
                }
            }
            None => tracing::debug!(device = %cmd.device, "command for a device without a driver"),
        }
    }
}

/// What the engine task reads from and writes to.
pub struct Wiring {
    /// Events from every driver and from the vision.
    pub events: mpsc::Receiver<DeviceEvent>,
    /// Commands, reads and figures (see [`EngineHandle`](super::EngineHandle)).
    pub inputs: mpsc::Receiver<Input>,
    /// The platform link: up or down (set by the uplink; stays down without one).
    pub link: watch::Receiver<bool>,
    pub journal: Journal,
    pub router: Router,
    /// Backlog at which `buffer_high` is raised (`[retention] buffer_high`).
    pub buffer_high: u64,
}

/// Runs the engine until shutdown.
pub async fn run(mut engine: Engine, wiring: Wiring, shutdown: CancellationToken) {
    let Wiring {
        mut events,
        mut inputs,
        mut link,
        journal,
        router,
        buffer_high,
    } = wiring;
    // The uplink may be absent or gone: then the link stays as it was.
    let mut link_open = true;
    engine.set_link(*link.borrow_and_update());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = engine.gateway_event(
        EventAction::GatewayStarted,
        &format!("gatewayd {} started", env!("CARGO_PKG_VERSION")),
        Utc::now(),
    );
    apply(
        Effects {
            records: vec![started],
            commands: vec![],
        },
        &journal,
        &router,
    );
    loop {
        let fx = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(input) = inputs.recv() => match input {
                Input::Command { cmd, reply } => {
                    let (fx, result) = engine.on_command(cmd, Utc::now());
                    apply(fx, &journal, &router);
                    let _ = reply.send(result);
                    continue;
                }
                Input::Read(read) => {
                    read(&engine);
                    continue;
                }
                Input::FaceMatchThreshold(t) => {
                    engine.set_face_match_threshold(t);
                    continue;
                }
                Input::DataLoss(n) => engine.on_data_loss(n, Utc::now()),
                Input::Backlog(n) => engine.on_backlog(n, buffer_high, Utc::now()),
            },
            changed = link.changed(), if link_open => {
                match changed {
                    Ok(()) => engine.set_link(*link.borrow_and_update()),
                    Err(_) => link_open = false,
                }
                continue;
            }
            Some(ev) = events.recv() => engine.on_device_event(ev, Utc::now()),
            _ = tick.tick() => engine.on_tick(Utc::now()),
        };
        apply(fx, &journal, &router);
    }
    let stopped = engine.gateway_event(EventAction::GatewayStopped, "gatewayd stopped", Utc::now());
    if let Err(e) = journal.append(vec![stopped]).await {
        tracing::error!("journal at shutdown: {e}");
    }
}

fn apply(fx: Effects, journal: &Journal, router: &Router) {
    for cmd in fx.commands {
        router.deliver(cmd);
    }
    if let Err(e) = journal.append_nowait(fx.records) {
        tracing::error!("journal: {e}");
    }
}
