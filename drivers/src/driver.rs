//! The context every driver uses, whatever its protocol: the [`DriverContext`]
//! its task gets (where to send events and frames, where commands arrive, the
//! shutdown token, its folders), the [`EventSink`] that reports link state the
//! same way for all, the [`FrameSink`] of cameras, and the errors of building
//! ([`BuildError`]) and checking ([`ConfigProblem`]) a driver's config.
//!
//! Drivers import this; it imports no driver. The list of drivers (the
//! `DriverConfig` enum tagged by `driver`) is in `registry`.

use futures::future::BoxFuture;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::event::{Action, DeviceEvent, DeviceId, EventBody, Frame, NotDurable, Receipt};

/// The task a driver runs: it returns only when shutdown is requested.
pub type DriverTask = BoxFuture<'static, ()>;

/// A config problem found by a driver, reported by `gatewayd check` with the key's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key inside the device's table (`port`, `scbk_file`).
    pub key: String,
    pub message: String,
}

impl ConfigProblem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Why a driver could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("device {device}: {message}")]
    Config { device: DeviceId, message: String },
    #[error("device {device}: {source}")]
    Io {
        device: DeviceId,
        #[source]
        source: std::io::Error,
    },
}

/// Everything a running driver needs from the gateway.
pub struct DriverContext {
    pub id: DeviceId,
    pub events: EventSink,
    pub commands: mpsc::Receiver<Action>,
    pub frames: FrameSink,
    pub shutdown: CancellationToken,
    /// Where a driver may keep state of its own (e.g. an OSDP key set by KEYSET).
    pub state_dir: PathBuf,
    /// The folder of the config file: relative paths in driver keys start here.
    pub config_dir: PathBuf,
}

/// Where a driver sends its events. It stamps each with the device id and time,
/// and turns `set_online`/`set_offline` into events only on a change, so that
/// every driver reports link state the same way.
#[derive(Clone)]
pub struct EventSink {
    device: DeviceId,
    tx: mpsc::Sender<DeviceEvent>,
    online: Arc<std::sync::Mutex<Option<bool>>>,
}

impl EventSink {
    pub fn new(device: DeviceId, tx: mpsc::Sender<DeviceEvent>) -> Self {
        Self {
            device,
            tx,
            online: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// Sends an event; waits while the engine is busy (backpressure), and gives up
    /// silently only when the gateway is shutting down.
    pub async fn emit(&self, body: EventBody) {
        self.send(body, Receipt::default()).await;
    }

    /// Sends an event and waits, up to `limit`, until the records it led to
    /// are durable: what a driver does before it acknowledges a device that
    /// will not send again ("ok" means stored).
    pub async fn emit_durable(
        &self,
        body: EventBody,
        limit: std::time::Duration,
    ) -> Result<(), NotDurable> {
        let (receipt, answer) = Receipt::new();
        let sent = async {
            self.send(body, receipt).await;
            answer.await
        };
        match tokio::time::timeout(limit, sent).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(NotDurable("the gateway is shutting down".into())),
            Err(_) => Err(NotDurable(format!(
                "not stored within {} s (the journal's disk is slow or failing)",
                limit.as_secs_f32()
            ))),
        }
    }

    async fn send(&self, body: EventBody, receipt: Receipt) {
        let event = DeviceEvent {
            device: self.device.clone(),
            at: chrono::Utc::now(),
            body,
            receipt,
        };
        if self.tx.send(event).await.is_err() {
            tracing::debug!(device = %self.device, "event dropped: gateway is shutting down");
        }
    }

    /// Reports the link up, once per change.
    pub async fn set_online(&self, detail: Option<String>) {
        if self.swap_state(true) {
            self.emit(EventBody::Online { detail }).await;
        }
    }

    /// Reports the link down, once per change (also when it was never up).
    pub async fn set_offline(&self, reason: impl Into<String>) {
        if self.swap_state(false) {
            self.emit(EventBody::Offline {
                reason: reason.into(),
            })
            .await;
        }
    }

    /// Whether the link was last reported up.
    pub fn is_online(&self) -> bool {
        self.online
            .lock()
            .map(|g| *g == Some(true))
            .unwrap_or(false)
    }

    /// Records the new state; true when it changed.
    fn swap_state(&self, up: bool) -> bool {
        match self.online.lock() {
            Ok(mut state) => state.replace(up) != Some(up),
            Err(_) => true,
        }
    }
}

/// Where a camera sends frames. Frames are heavy and only the newest matter, so a
/// full queue drops the frame (counted) instead of queueing without bound.
#[derive(Clone)]
pub struct FrameSink {
    tx: Option<mpsc::Sender<Frame>>,
    dropped: Arc<AtomicU64>,
}

impl FrameSink {
    pub fn new(tx: mpsc::Sender<Frame>) -> Self {
        Self {
            tx: Some(tx),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A sink for devices that produce no frames; anything sent is dropped.
    pub fn none() -> Self {
        Self {
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Offers a frame; returns false (and counts it) when it was dropped.
    pub fn offer(&self, frame: Frame) -> bool {
        let sent = match &self.tx {
            Some(tx) => tx.try_send(frame).is_ok(),
            None => false,
        };
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// The drop counter alone (shared by the sink's clones), for figures that
    /// must not keep the frame channel open.
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }
}
