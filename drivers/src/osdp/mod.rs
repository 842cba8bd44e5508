//! OSDP (`driver = "osdp"`): the gateway is the Control Panel of card readers
//! and door panels on an RS-485 bus, with the AES secure channel.
//!
//! - `phy`: packets, CRC-16 / checksum, cutting a byte stream into packets.
//! - `sc`: the secure channel (session keys, cryptograms, MAC chain, encryption).
//! - `command`: commands and replies, their codes and payloads.
//! - `card`: Wiegand 26/34 card data.
//! - `pd`: the CP's state machine for one PD (no I/O).
//! - `bus`: the task that owns a port and polls every PD on it; devices on
//!   the same port share it.
//! - `keystore`: the key set by install mode, kept in the device's state folder.
//! - `config`: the device's keys.

pub mod bus;
pub mod card;
pub mod command;
pub mod config;
pub mod keystore;
pub mod pd;
pub mod phy;
pub mod sc;

pub use config::{InputUse, OsdpConfig};

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

use crate::driver::{BuildError, DriverContext, DriverTask};
use crate::serial::SerialSettings;
use bus::BusMsg;
use keystore::KeyStore;
use pd::Pd;

impl OsdpConfig {
    pub fn build(&self, ctx: DriverContext) -> Result<DriverTask, BuildError> {
        let key = self
            .read_key(&ctx.config_dir)
            .map_err(|message| BuildError::Config {
                device: ctx.id.clone(),
                message: format!("scbk_file: {message}"),
            })?;
        let stored = !KeyStore::new(&ctx.state_dir).keys().is_empty();
        if self.secure_channel && key.is_none() && !stored && !self.install_mode {
            return Err(BuildError::Config {
                device: ctx.id.clone(),
                message: "scbk_file: the secure channel needs a key (or install_mode = true)"
                    .into(),
            });
        }
        Ok(Box::pin(run(Arc::new(self.clone()), key, ctx)))
    }
}

/// The device's task: joins its port's bus and forwards the engine's actions
/// to it until shutdown; the bus does the talking.
async fn run(cfg: Arc<OsdpConfig>, key: Option<sc::Key>, mut ctx: DriverContext) {
    let address = cfg.address;
    let pd = Pd::new(
        cfg.clone(),
        key,
        KeyStore::new(&ctx.state_dir),
        tokio::time::Instant::now(),
    );
    let bus = bus::attach(
        SerialSettings::new(&cfg.port, cfg.baud),
        BusMsg::Join {
            pd: Box::new(pd),
            events: ctx.events.clone(),
            reply_timeout: cfg.reply_timeout(),
            poll_interval: Duration::from_millis(cfg.poll_interval_ms),
        },
    );
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            action = ctx.commands.recv() => match action {
                Some(action) => {
                    let _ = bus.send(BusMsg::Action { address, action });
                }
                None => {
                    ctx.shutdown.cancelled().await;
                    break;
                }
            },
        }
    }
    let (done, left) = oneshot::channel();
    if bus.send(BusMsg::Leave { address, done }).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), left).await;
    }
}
