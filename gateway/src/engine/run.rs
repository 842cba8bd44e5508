//! The engine's task: takes device events and commands one at a time, in order,
//! and carries out the effects: records to the journal (which makes them
//! durable before anyone forwards or shows them) and device commands. A door
//! is released once its pass's record is durable, or after [`GRANT_WAIT`] at
//! most (a resident is waiting): every pass leaves a trace (卡过留痕), and a
//! door opened for a pass whose record could not be kept is itself journaled.

use chrono::Utc;
use drivers::{Action, DeviceCommand, DeviceEvent, DeviceId, NotDurable, Output, Receipt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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

/// The longest a door release waits for its pass's record to be durable.
pub const GRANT_WAIT: Duration = Duration::from_millis(20);

/// How door releases met the journal, for `/metrics`.
#[derive(Debug, Default)]
pub struct GrantStats {
    /// Released after [`GRANT_WAIT`], before the record was durable.
    pub before_durable: AtomicU64,
    /// Released for a pass whose record the journal refused (journaled as such).
    pub unrecorded: AtomicU64,
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
    pub grants: Arc<GrantStats>,
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
        grants,
    } = wiring;
    let sink = Sink {
        journal: journal.clone(),
        router,
        grants,
    };
    // Of the doors released for refused records (`GrantStats::unrecorded`),
    // how many a journaled warning has already told.
    let mut told = 0u64;
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
    sink.apply(
        Effects {
            records: vec![started],
            commands: vec![],
        },
        Receipt::default(),
    )
    .await;
    loop {
        let mut receipt = Receipt::default();
        let fx = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(input) = inputs.recv() => match input {
                Input::Command { cmd, reply } => {
                    let (fx, result) = engine.on_command(cmd, Utc::now());
                    sink.apply(fx, receipt).await;
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
                Input::DataLoss(n, cause) => engine.on_data_loss(n, cause, Utc::now()),
                Input::Backlog(n) => engine.on_backlog(n, buffer_high, Utc::now()),
            },
            changed = link.changed(), if link_open => {
                match changed {
                    Ok(()) => engine.set_link(*link.borrow_and_update()),
                    Err(_) => link_open = false,
                }
                continue;
            }
            Some(mut ev) = events.recv() => {
                receipt = std::mem::take(&mut ev.receipt);
                engine.on_device_event(ev, Utc::now())
            }
            _ = tick.tick() => {
                let mut fx = engine.on_tick(Utc::now());
                let unrecorded = sink.grants.unrecorded.load(Ordering::Relaxed) - told;
                if unrecorded > 0 {
                    fx.records.push(engine.gateway_event(
                        EventAction::GatewayWarning,
                        &format!(
                            "{unrecorded} doors were released for passes whose record the \
                             journal could not keep (its disk failed)"
                        ),
                        Utc::now(),
                    ));
                    told += unrecorded;
                }
                fx
            }
        };
        sink.apply(fx, receipt).await;
    }
    let stopped = engine.gateway_event(EventAction::GatewayStopped, "gatewayd stopped", Utc::now());
    if let Err(e) = journal.append(vec![stopped]).await {
        tracing::error!("journal at shutdown: {e}");
    }
}

/// Where effects go: the journal and the devices.
struct Sink {
    journal: Journal,
    router: Router,
    grants: Arc<GrantStats>,
}

impl Sink {
    /// Journals the records and delivers the commands; a door release waits
    /// for its record up to [`GRANT_WAIT`]. Settles `receipt` once the records
    /// are durable (without blocking the engine for it).
    async fn apply(&self, fx: Effects, receipt: Receipt) {
        if fx.records.is_empty() {
            self.deliver(fx.commands);
            receipt.settle(Ok(()));
            return;
        }
        let releases = fx.commands.iter().any(|c| releases(&c.action));
        let durable = match self.journal.append_notify(fx.records) {
            Ok(rx) => rx,
            Err(e) => {
                tracing::error!("journal: {e}");
                self.deliver(fx.commands);
                receipt.settle(Err(NotDurable(e.to_string())));
                if releases {
                    self.grants.unrecorded.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        };
        if !releases {
            self.deliver(fx.commands);
            settle_when_durable(durable, receipt);
            return;
        }
        let mut durable = durable;
        match tokio::time::timeout(GRANT_WAIT, &mut durable).await {
            Ok(result) => {
                self.deliver(fx.commands);
                receipt.settle(result.map(|_| ()).map_err(|_| stopped()));
            }
            Err(_) => {
                // The resident does not wait for a slow disk; the record is
                // still queued and becomes durable when the disk takes it.
                self.grants.before_durable.fetch_add(1, Ordering::Relaxed);
                self.deliver(fx.commands);
                settle_when_durable(durable, receipt);
            }
        }
    }

    /// Never waits: a driver whose queue is full is stuck, and the engine must not be.
    fn deliver(&self, commands: Vec<DeviceCommand>) {
        for cmd in commands {
            self.router.deliver(cmd);
        }
    }
}

/// Whether an action lets someone through (a door, barrier or turnstile released).
fn releases(action: &Action) -> bool {
    matches!(
        action,
        Action::Pulse {
            output: Output::Lock,
            ..
        } | Action::Hold {
            output: Output::Lock,
            on: true
        }
    )
}

fn stopped() -> NotDurable {
    NotDurable("the journal stopped before the record was stored".into())
}

/// Settles a receipt once the records are durable, off the engine's task.
fn settle_when_durable(
    durable: tokio::sync::oneshot::Receiver<Vec<crate::contract::Record>>,
    receipt: Receipt,
) {
    if receipt.is_wanted() {
        tokio::spawn(async move {
            receipt.settle(durable.await.map(|_| ()).map_err(|_| stopped()));
        });
    }
}
