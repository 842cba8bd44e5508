//! The engine's task: takes device events and commands one at a time, in order,
//! and carries out the effects: device commands first (a resident is waiting at
//! the door), then records to the journal (which makes them durable before
//! anyone forwards or shows them).

use chrono::Utc;
use drivers::{Action, DeviceCommand, DeviceEvent, DeviceId};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Command, CommandError, CommandOk, Effects, Engine, ErrorCode, Query, QueryResult};
use crate::journal::{EventAction, Journal};

/// Inputs other than device events.
pub enum Input {
    Command {
        cmd: Command,
        reply: oneshot::Sender<Result<CommandOk, CommandError>>,
    },
    Query {
        q: Query,
        reply: oneshot::Sender<QueryResult>,
    },
    /// The platform link went up or down.
    Link(bool),
    /// Retention evicted records the platform never got.
    DataLoss(u64),
    /// Records waiting to be forwarded.
    Backlog(u64),
}

/// How the rest of the gateway talks to the engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Input>,
}

impl EngineHandle {
    pub fn new(tx: mpsc::Sender<Input>) -> Self {
        Self { tx }
    }

    pub async fn command(&self, cmd: Command) -> Result<CommandOk, CommandError> {
        let (reply, rx) = oneshot::channel();
        let stopped = || CommandError::new(ErrorCode::Internal, "the gateway is stopping");
        self.tx
            .send(Input::Command { cmd, reply })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    pub async fn query(&self, q: Query) -> Option<QueryResult> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Input::Query { q, reply }).await.ok()?;
        rx.await.ok()
    }

    pub async fn send(&self, input: Input) {
        let _ = self.tx.send(input).await;
    }
}

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

/// Runs the engine until shutdown.
pub async fn run(
    mut engine: Engine,
    mut events: mpsc::Receiver<DeviceEvent>,
    mut inputs: mpsc::Receiver<Input>,
    journal: Journal,
    router: Router,
    buffer_high: u64,
    shutdown: CancellationToken,
) {
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
                Input::Query { q, reply } => {
                    let _ = reply.send(engine.query(q));
                    continue;
                }
                Input::Link(up) => {
                    engine.set_link(up);
                    continue;
                }
                Input::DataLoss(n) => engine.on_data_loss(n, Utc::now()),
                Input::Backlog(n) => engine.on_backlog(n, buffer_high, Utc::now()),
            },
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
