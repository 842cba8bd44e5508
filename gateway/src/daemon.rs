//! Wires the gateway together for `gatewayd run` and `gatewayd demo`: opens the
//! store, starts every driver, the engine, the uplink, the console and retention,
//! and stops them in order on shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use drivers::driver::{EventSink, FrameSink};
use drivers::{DeviceEvent, DriverContext, Frame};

use crate::config::Config;
use crate::control::Controller;
use crate::engine::{run::Router, Engine, EngineHandle, Input};
use crate::journal::{retention, Journal};
use crate::uplink::{self, UplinkState};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data_dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the store in {path} (is another gatewayd using it?): {source}")]
    Store { path: PathBuf, source: sled::Error },
    #[error("journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
    #[error("engine: {0}")]
    Engine(#[from] crate::engine::EngineError),
    #[error("{0}")]
    Driver(#[from] drivers::BuildError),
    #[error("uplink: {0}")]
    Uplink(#[from] uplink::UplinkError),
    #[error("{0}")]
    Vision(#[from] crate::vision::VisionError),
    #[error("{0}")]
    Console(#[from] crate::console::ConsoleError),
}

/// A running gateway.
pub struct Gateway {
    pub config: Arc<Config>,
    pub journal: Journal,
    pub engine: EngineHandle,
    /// Runs platform and console commands.
    pub controller: Controller,
    pub uplink: Option<UplinkState>,
    /// Where the console listens (the bound address, also when `listen` asked for port 0).
    pub console_addr: Option<std::net::SocketAddr>,
    /// Frames from cameras, for the face pipeline.
    pub frames: Option<mpsc::Receiver<Frame>>,
    /// Where the face pipeline sends its matches (as device events).
    pub events: mpsc::Sender<DeviceEvent>,
    pub db: sled::Db,
    /// Face matching and enrollment, when `[faces]` is configured.
    pub vision: Option<Arc<crate::vision::Vision>>,
    /// The vision's figures (also on /metrics), there before the vision starts.
    pub vision_stats: Arc<crate::vision::Stats>,
    shutdown: CancellationToken,
    /// Drivers, uplink, retention: stopped first.
    tasks: JoinSet<()>,
    /// The engine: stopped after the drivers, so their last events are decided.
    engine_task: Option<tokio::task::JoinHandle<()>>,
    engine_stop: CancellationToken,
}

impl Gateway {
    /// Starts everything the config describes.
    pub async fn start(config: Config) -> Result<Gateway, StartError> {
        let config = Arc::new(config);
        let data_dir = config.data_dir();
        std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let db_path = data_dir.join("db");
        // Face templates first, through an open of the store of their own that
        // is closed again: sled 0.34 keeps the pages it has read resident
        // whatever its cache_capacity (measured: reading 100k templates kept
        // ~34 MB, with a 1 MB cache as with 16 MB). Through the gateway's own
        // handle that memory would stay for the life of the process; closing
        // the store gives it back at once.
        let gallery = if crate::vision::wanted(&config) && db_path.exists() {
            let db = open_store(&db_path, 1).await?;
            let options = crate::vision::gallery_options(&config.faces.clone().unwrap_or_default());
            let g = crate::vision::store::FaceStore::open(&db)
                .and_then(|store| crate::vision::store::read_gallery(&store, options))
                .map_err(|e| StartError::Vision(e.into()))?;
            drop(db);
            models::runtime::release_freed_memory();
            Some(g)
        } else {
            None
        };
        let db = open_store(&db_path, config.gateway.store_cache_mb).await?;
        let journal = Journal::open(&db, &config.gateway.estate, &config.gateway.id)?;
        // Bound before any device starts: a taken port stops the start cleanly.
        let console = match &config.console {
            Some(_) => Some(crate::console::Listener::bind(&config).await?),
            None => None,
        };
        let engine = Engine::new(&config, &db)?;

        let shutdown = CancellationToken::new();
        let engine_stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let (ev_tx, ev_rx) = mpsc::channel::<DeviceEvent>(4096);
        let (in_tx, in_rx) = mpsc::channel::<Input>(256);
        let (frame_tx, frame_rx) = mpsc::channel::<Frame>(2);
        // One sink shared by every camera: its drop counter is the gateway's.
        let frame_sink = FrameSink::new(frame_tx);
        let vision_stats = Arc::new(crate::vision::Stats::new(frame_sink.dropped_counter()));
        let handle = EngineHandle::new(in_tx);
        let controller = Controller::new(handle.clone());

        let mut router = Router::default();
        let state_root = data_dir.join("devices");
        for dev in &config.devices {
            let (cmd_tx, cmd_rx) = mpsc::channel(64);
            router.add(dev.id.clone(), cmd_tx);
            let state_dir = state_root.join(dev.id.as_str());
            let ctx = DriverContext {
                id: dev.id.clone(),
                events: EventSink::new(dev.id.clone(), ev_tx.clone()),
                commands: cmd_rx,
                frames: if dev.driver.name() == "camera" {
                    frame_sink.clone()
                } else {
                    FrameSink::none()
                },
                shutdown: shutdown.child_token(),
                state_dir,
                config_dir: config.base_dir.clone(),
            };
            tasks.spawn(dev.driver.build(ctx)?);
        }
        drop(frame_sink);

        let engine_task = tokio::spawn(crate::engine::run::run(
            engine,
            ev_rx,
            in_rx,
            journal.clone(),
            router,
            config.retention.buffer_high,
            engine_stop.clone(),
        ));

        let uplink = match &config.mqtt {
            Some(m) => {
                let (state, task) = uplink::start(
                    m,
                    &config,
                    journal.clone(),
                    controller.clone(),
                    shutdown.child_token(),
                )?;
                tasks.spawn(task);
                Some(state)
            }
            None => None,
        };

        let console_addr = match console {
            Some(listener) => {
                let addr = listener.addr;
                tasks.spawn(listener.serve(
                    crate::console::Deps {
                        config: config.clone(),
                        journal: journal.clone(),
                        engine: handle.clone(),
                        controller: controller.clone(),
                        uplink: uplink.clone(),
                        db: db.clone(),
                        vision: vision_stats.clone(),
                    },
                    shutdown.child_token(),
                )?);
                Some(addr)
            }
            None => None,
        };

        tasks.spawn(retention_task(
            journal.clone(),
            retention::Policy::from(&config.retention),
            Duration::from_secs(config.retention.check_every_s.max(1)),
            uplink.clone(),
            handle.clone(),
            shutdown.child_token(),
        ));

        let mut gw = Gateway {
            config,
            journal,
            engine: handle,
            controller,
            uplink,
            console_addr,
            frames: Some(frame_rx),
            events: ev_tx,
            db,
            vision: None,
            vision_stats,
            shutdown,
            tasks,
            engine_task: Some(engine_task),
            engine_stop,
        };
        // Face matching: loads the models, plugs enrollment into the controller,
        // takes the camera frames.
        match crate::vision::start(&mut gw, gallery) {
            Ok(v) => gw.vision = v,
            Err(e) => {
                gw.stop().await;
                return Err(e.into());
            }
        }
        Ok(gw)
    }

    /// A token that is cancelled when the gateway stops (for tasks added by the caller).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Adds a task stopped with the gateway (console, face pipeline).
    pub fn spawn(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Stops drivers and uplink, then the engine, then flushes the store.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), drain)
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not stop within 10 s; aborting them");
            self.tasks.abort_all();
        }
        self.engine_stop.cancel();
        if let Some(t) = self.engine_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        // Let the writer drain what the engine queued last.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.journal.queued() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Err(e) = self.journal.flush().await {
            tracing::error!("final flush: {e}");
        }
        // The writer stores what is queued, flushes and lets go of the store, so
        // that it can be opened again at once (a restart in the same process).
        self.journal.close().await;
    }
}

/// Opens the store, waiting up to 10 s while another holder lets go of its lock
/// (a previous run still exiting, or still dropping its last handles).
async fn open_store(path: &std::path::Path, cache_mb: u64) -> Result<sled::Db, StartError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(cache_mb.max(1) * 1024 * 1024)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.to_string().contains("could not acquire lock") =>
            {
                if tokio::time::Instant::now() >= deadline {
                    return Err(StartError::Store {
                        path: path.to_owned(),
                        source: sled::Error::Io(e),
                    });
                }
                tracing::debug!("store {} still locked; waiting", path.display());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(source) => {
                return Err(StartError::Store {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Runs retention every `every` (a minute by default), and reports the unforwarded backlog.
async fn retention_task(
    journal: Journal,
    policy: retention::Policy,
    every: Duration,
    uplink: Option<UplinkState>,
    engine: EngineHandle,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let forwarded = uplink.as_ref().map(|u| u.forwarded());
        match retention::run_once(&journal, &policy, chrono::Utc::now(), forwarded).await {
            Ok(out) => {
                if out.evicted.records > 0 {
                    tracing::info!(
                        records = out.evicted.records,
                        snapshots = out.evicted.snapshots,
                        unforwarded = out.unforwarded,
                        "retention evicted old records"
                    );
                }
                if out.unforwarded > 0 {
                    engine.send(Input::DataLoss(out.unforwarded)).await;
                }
            }
            Err(e) => tracing::error!("retention: {e}"),
        }
        if let Some(u) = &uplink {
            engine.send(Input::Backlog(u.backlog(&journal))).await;
        }
    }
}
