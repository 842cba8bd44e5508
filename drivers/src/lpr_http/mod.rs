//! Plate cameras pushing over HTTP (`driver = "lpr-http"`): barrier cameras
//! read plates themselves and push the result (JSON, or multipart JSON + JPEG)
//! to the gateway. The plate is normalised, colour and confidence kept, and the
//! JPEG becomes the event's snapshot.
//!
//! - `push`: the push formats and their parsing (pure, fuzzed).
//! - `server`: the shared HTTP listener and its handlers.
//! - `refused`: refused pushes, counted and summarised once a minute.
//! - `config`: the camera's keys.

pub mod config;
pub mod push;
pub mod refused;
pub mod server;

pub use config::LprHttpConfig;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backoff::{sleep_or_shutdown, Backoff};
use crate::driver::{BuildError, DriverContext, DriverTask, EventSink};
use crate::event::EventBody;

impl LprHttpConfig {
    pub fn build(&self, ctx: DriverContext) -> Result<DriverTask, BuildError> {
        let secret = self
            .read_secret(&ctx.config_dir)
            .map_err(|message| BuildError::Config {
                device: ctx.id.clone(),
                message: format!("secret_file: {message}"),
            })?;
        Ok(Box::pin(run(self.clone(), secret, ctx)))
    }
}

async fn run(cfg: LprHttpConfig, secret: String, mut ctx: DriverContext) {
    let id = ctx.id.to_string();
    let last_seen = Arc::new(Mutex::new(None));
    let camera = server::Camera {
        secret,
        events: ctx.events.clone(),
        max_body: cfg.max_body(),
        last_seen: last_seen.clone(),
        refusals: Arc::new(Mutex::new(refused::Refusals::default())),
    };
    let refusals = camera.refusals.clone();
    let mut backoff = Backoff::default();
    loop {
        match server::attach(&cfg.listen, &id, camera.clone(), cfg.limits()).await {
            Ok(()) => break,
            Err(e) => {
                ctx.events
                    .set_offline(format!("cannot listen on {}: {e}", cfg.listen))
                    .await;
                if !sleep_or_shutdown(&ctx.shutdown, backoff.next_delay()).await {
                    return;
                }
            }
        }
    }
    let timeout = cfg.heartbeat_timeout();
    if timeout.is_none() {
        ctx.events
            .set_online(Some(format!("listening on {}", cfg.listen)))
            .await;
    }
    let summary_every = Duration::from_secs(cfg.refusal_summary_s);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            // Cameras take no commands; the gate opens through its Modbus device.
            a = ctx.commands.recv() => if let Some(a) = a {
                tracing::debug!(?a, "a plate camera takes no commands");
            },
            _ = tick.tick() => {
                summarise_refusals(&refusals, &ctx.events, Some(summary_every)).await;
                if let Some(limit) = timeout {
                    let seen = *last_seen.lock().unwrap_or_else(|p| p.into_inner());
                    let silent = seen.is_none_or(|t| t.elapsed() > limit);
                    if silent && (ctx.events.is_online() || seen.is_none()) {
                        ctx.events
                            .set_offline(format!("nothing from the camera for {:.1} s", limit.as_secs_f64()))
                            .await;
                    }
                }
            }
        }
    }
    server::detach(&cfg.listen, &id);
    summarise_refusals(&refusals, &ctx.events, None).await;
}

/// Journals the refusals counted since the first one `every` ago as one
/// device error; with `None` (the camera stops) whatever there is.
async fn summarise_refusals(
    refusals: &Mutex<refused::Refusals>,
    events: &EventSink,
    every: Option<Duration>,
) {
    let due = refusals.lock().unwrap_or_else(|p| p.into_inner()).take_due(
        tokio::time::Instant::now(),
        every.unwrap_or_default(),
        every.is_none(),
    );
    if let Some(error) = due {
        tracing::warn!(device = %events.device(), "{error}");
        events.emit(EventBody::Fault { error }).await;
    }
}
