//! The conformance test every driver passes (as Vector's `assert_source_compliance`
//! does for sources): it reports online when its peer is there, offline when the
//! peer goes away, online again when it returns, and it stops cleanly on shutdown.
//!
//! Drivers' integration tests call [`assert_driver_compliance`] with a [`Peer`]
//! that starts and stops the real third-party program the driver talks to;
//! [`peers`] has those for the drivers of this crate, [`rtsp`] the camera's;
//! [`layering`] checks that a crate's modules import each other in one direction.
//!
//! Only with the cargo feature `testing` (the edge binary carries none of it);
//! this crate's own tests get it through its dev-dependency on itself.

pub mod clients;
pub mod layering;
pub mod peers;
pub mod rtsp;

use futures::future::BoxFuture;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::driver::{BuildError, DriverContext, EventSink, FrameSink};
use crate::event::{Action, DeviceEvent, DeviceId, EventBody, Frame};
use crate::registry::DriverConfig;

/// A running driver with its channels, outside any gateway.
pub struct Harness {
    pub id: DeviceId,
    pub events: mpsc::Receiver<DeviceEvent>,
    pub commands: mpsc::Sender<Action>,
    pub frames: mpsc::Receiver<Frame>,
    pub shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
    /// Every event received so far, for failure messages.
    pub seen: Vec<DeviceEvent>,
}

impl Harness {
    /// Builds and spawns the driver.
    pub fn start(id: &str, config: &DriverConfig, state_dir: PathBuf) -> Result<Self, BuildError> {
        let id = DeviceId::new(id);
        let (ev_tx, mut raw) = mpsc::channel::<DeviceEvent>(1024);
        let (seen_tx, events) = mpsc::channel(1024);
        // The harness stands in for the engine and the journal: every event
        // is taken as stored at once, so a driver that waits for durability
        // (an HTTP push answered only then) answers.
        tokio::spawn(async move {
            while let Some(ev) = raw.recv().await {
                ev.receipt.settle(Ok(()));
                if seen_tx.send(ev).await.is_err() {
                    break;
                }
            }
        });
        let (commands, cmd_rx) = mpsc::channel(64);
        let (frame_tx, frames) = mpsc::channel(2);
        let shutdown = CancellationToken::new();
        let ctx = DriverContext {
            id: id.clone(),
            events: EventSink::new(id.clone(), ev_tx),
            commands: cmd_rx,
            frames: FrameSink::new(frame_tx),
            shutdown: shutdown.clone(),
            config_dir: state_dir.clone(),
            state_dir,
        };
        let task = tokio::spawn(config.build(ctx)?);
        Ok(Self {
            id,
            events,
            commands,
            frames,
            shutdown,
            task: Some(task),
            seen: Vec::new(),
        })
    }

    /// Waits up to `timeout` for an event whose body matches; earlier events are kept in `seen`.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&EventBody) -> bool,
    ) -> Option<DeviceEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => {
                    self.seen.push(ev.clone());
                    if pred(&ev.body) {
                        return Some(ev);
                    }
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Asks the driver to stop; true when its task ended within `timeout`.
    pub async fn stop(&mut self, timeout: Duration) -> bool {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => matches!(tokio::time::timeout(timeout, task).await, Ok(Ok(()))),
            None => true,
        }
    }

    /// The event types seen so far, for assertion messages.
    pub fn seen_summary(&self) -> String {
        self.seen
            .iter()
            .map(|e| e.body.type_name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The real program a driver talks to, which the conformance test takes away and brings back.
pub trait Peer: Send {
    fn start(&mut self) -> BoxFuture<'_, ()>;
    fn stop(&mut self) -> BoxFuture<'_, ()>;
}

/// How long each step of the conformance test may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub online: Duration,
    pub offline: Duration,
    pub stop: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            online: Duration::from_secs(15),
            offline: Duration::from_secs(15),
            stop: Duration::from_secs(5),
        }
    }
}

fn is_online(b: &EventBody) -> bool {
    matches!(b, EventBody::Online { .. })
}

fn is_offline(b: &EventBody) -> bool {
    matches!(b, EventBody::Offline { .. })
}

/// Runs the shared conformance test; panics with what was seen when a step fails.
pub async fn assert_driver_compliance(
    config: &DriverConfig,
    peer: &mut dyn Peer,
    state_dir: PathBuf,
    limits: Limits,
) {
    let name = config.name();
    peer.start().await;
    let mut h = match Harness::start(&format!("conformance-{name}"), config, state_dir) {
        Ok(h) => h,
        Err(e) => panic!("{name}: build failed: {e}"),
    };
    if h.wait_for(limits.online, is_online).await.is_none() {
        panic!("{name}: never reported online; saw [{}]", h.seen_summary());
    }
    peer.stop().await;
    if h.wait_for(limits.offline, is_offline).await.is_none() {
        panic!(
            "{name}: did not report offline after its peer went away; saw [{}]",
            h.seen_summary()
        );
    }
    peer.start().await;
    if h.wait_for(limits.online, is_online).await.is_none() {
        panic!(
            "{name}: did not reconnect after its peer came back; saw [{}]",
            h.seen_summary()
        );
    }
    if !h.stop(limits.stop).await {
        panic!("{name}: did not stop within {:?} of shutdown", limits.stop);
    }
    peer.stop().await;
}
