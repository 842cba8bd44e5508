//! Wires the gateway together for `gatewayd run` and `gatewayd demo`: builds
//! each component from its config section in dependency order, hands each one
//! what it needs (nothing is patched in afterwards), and stops them in order on
//! shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use drivers::driver::{EventSink, FrameSink};
use drivers::{DeviceEvent, DriverContext, Frame};

use crate::config::Config;
use crate::console::{Deps, Listener};
use crate::control::{Controller, FaceEnroller};
use crate::engine::run::{GrantStats, Router, Wiring};
use crate::engine::{Engine, EngineHandle, Input, LossCause};
use crate::journal::{retention, Journal};
use crate::uplink::{self, UplinkState};
use crate::vision::{Stats as VisionStats, Vision};

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

/// A running gateway, built whole by [`Gateway::start`]. The fields are the
/// running components, for the binary, the benches and the tests to watch.
pub struct Gateway {
    pub config: Arc<Config>,
    pub journal: Journal,
    pub engine: EngineHandle,
    /// Runs platform and console commands.
    pub controller: Controller,
    pub uplink: Option<UplinkState>,
    /// Where the console listens (the bound address, also when `listen` asked for port 0).
    pub console_addr: Option<std::net::SocketAddr>,
    /// Where device events go (drivers and the face matcher send here).
    pub events: mpsc::Sender<DeviceEvent>,
    /// Face matching and enrollment, when `[faces]` or `[plates]` is configured.
    pub vision: Option<Arc<Vision>>,
    /// The vision's figures (also on /metrics); zero without a vision.
    pub vision_stats: Arc<VisionStats>,
    shutdown: CancellationToken,
    /// Drivers, matcher, uplink, console, retention: stopped first.
    tasks: JoinSet<()>,
    /// The engine: stopped after the drivers, so their last events are decided.
    engine_task: Option<tokio::task::JoinHandle<()>>,
    engine_stop: CancellationToken,
    /// The main store (roster, alarms, users); the journal has its own.
    store: sled::Db,
    restart: CancellationToken,
}

impl Gateway {
    /// Starts everything the config describes, in dependency order: store and
    /// journal, vision, engine, controller, drivers, uplink, console, retention.
    pub async fn start(config: Config) -> Result<Gateway, StartError> {
        let config = Arc::new(config);
        let data_dir = config.data_dir();
        std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let db_path = data_dir.join("db");
        let gallery = match &config.faces {
            Some(faces) if db_path.exists() => Some(read_gallery(&db_path, faces).await?),
            _ => None,
        };
        let db = open_store(&db_path, config.gateway.store_cache_mb).await?;
        // The journal has a database of its own, which its writer can reopen
        // after a write error (a full disk) without stopping the gateway.
        let journal = Journal::open_dir(
            &data_dir.join("journal"),
            config.gateway.store_cache_mb,
            Some(&db),
            &config.gateway.estate,
            &config.gateway.id,
            config.retention.limits(),
        )
        .await?;
        // Bound before any device starts: a taken port stops the start cleanly.
        let console = match &config.console {
            Some(section) => Some(Listener::bind(section, &config.base_dir).await?),
            None => None,
        };

        // Frames from every camera go through one sink: its drop counter is the vision's.
        let (frame_tx, frame_rx) = mpsc::channel::<Frame>(2);
        let frame_sink = FrameSink::new(frame_tx);
        let vision_stats = Arc::new(VisionStats::new(frame_sink.dropped_counter()));
        let vision = crate::vision::load(
            config.faces.as_ref(),
            config.plates.as_ref(),
            &config.base_dir,
            &db,
            gallery,
            vision_stats.clone(),
        )?
        .map(Arc::new);

        let mut engine_config = config.engine();
        // A threshold from `false_accept_rate` follows the gallery's size.
        if let (Some(rules), Some(t)) = (
            engine_config.faces,
            vision.as_ref().and_then(|v| v.calibrated_threshold()),
        ) {
            engine_config.faces = Some(rules.with_match_threshold(t));
        }
        let engine = Engine::new(&engine_config, &db)?;
        let (in_tx, in_rx) = mpsc::channel::<Input>(256);
        let handle = EngineHandle::new(in_tx);
        let enroller = match (&vision, &config.faces) {
            (Some(v), Some(_)) => {
                Some(Arc::new(crate::vision::enroll::Enroller::new(v.clone()))
                    as Arc<dyn FaceEnroller>)
            }
            _ => None,
        };
        let controller = Controller::new(handle.clone(), enroller)
            .with_max_credentials(config.roster.max_credentials_per_person);

        let shutdown = CancellationToken::new();
        let engine_stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let (ev_tx, ev_rx) = mpsc::channel::<DeviceEvent>(4096);
        let mut router = Router::default();
        let state_root = data_dir.join("devices");
        for dev in &config.devices {
            let (cmd_tx, cmd_rx) = mpsc::channel(64);
            router.add(dev.id.clone(), cmd_tx);
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
                state_dir: state_root.join(dev.id.as_str()),
                config_dir: config.base_dir.clone(),
            };
            if let Err(e) = dev.driver.build(ctx).map(|task| tasks.spawn(task)) {
                shutdown.cancel();
                tasks.shutdown().await;
                return Err(e.into());
            }
        }
        drop(frame_sink);
        let cameras = config.cameras();
        if let (Some(v), true) = (&vision, cameras > 0) {
            tasks.spawn(crate::vision::matcher::run(
                v.clone(),
                config.faces.is_some(),
                cameras,
                frame_rx,
                ev_tx.clone(),
                shutdown.child_token(),
            ));
        }

        // The platform link: the uplink sets it, the engine flags decisions made while it is down.
        let (link_tx, link_rx) = watch::channel(false);
        let uplink = match &config.mqtt {
            Some(m) => {
                let (state, task) = uplink::start(
                    m,
                    &config.identity(),
                    journal.clone(),
                    controller.clone(),
                    link_tx,
                    shutdown.child_token(),
                )?;
                tasks.spawn(task);
                Some(state)
            }
            None => None,
        };

        let grants = Arc::new(GrantStats::default());
        let engine_task = tokio::spawn(crate::engine::run::run(
            engine,
            Wiring {
                events: ev_rx,
                inputs: in_rx,
                link: link_rx,
                journal: journal.clone(),
                router,
                buffer_high: config.retention.buffer_high,
                grants: grants.clone(),
            },
            engine_stop.clone(),
        ));

        let console_addr = match (console, &config.console) {
            (Some(listener), Some(section)) => {
                let addr = listener.addr;
                tasks.spawn(listener.serve(
                    Deps {
                        section: section.clone(),
                        journal: journal.clone(),
                        engine: handle.clone(),
                        controller: controller.clone(),
                        uplink: uplink.clone(),
                        db: db.clone(),
                        vision: vision_stats.clone(),
                        grants: grants.clone(),
                    },
                    shutdown.child_token(),
                )?);
                Some(addr)
            }
            _ => None,
        };

        let restart = CancellationToken::new();
        tasks.spawn(retention_task(
            journal.clone(),
            retention::Policy::from(&config.retention),
            Duration::from_secs(config.retention.check_every_s.max(1)),
            uplink.clone(),
            handle.clone(),
            StoreWatch {
                store: db.clone(),
                restart: restart.clone(),
                failed: false,
            },
            shutdown.child_token(),
        ));

        Ok(Gateway {
            config,
            journal,
            engine: handle,
            controller,
            uplink,
            console_addr,
            events: ev_tx,
            vision,
            vision_stats,
            shutdown,
            tasks,
            engine_task: Some(engine_task),
            engine_stop,
            store: db,
            restart,
        })
    }

    /// Cancelled when the gateway needs a restart to recover: its main store
    /// failed a write (sled fails every later write until reopened, and the
    /// engine, console and gallery hold it) and the disk takes writes again.
    /// The binary then stops and exits non-zero; systemd starts it again.
    pub fn restart_needed(&self) -> CancellationToken {
        self.restart.clone()
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
        if let Err(e) = self.store.flush_async().await {
            tracing::error!("final flush of the store: {e}");
        }
        // The writer stores what is queued, flushes and lets go of the store, so
        // that it can be opened again at once (a restart in the same process).
        // Bounded: a disk that takes nothing must not hold up a stop.
        self.journal.close(Duration::from_secs(5)).await;
    }
}

/// Face templates, read through an open of the store of their own that is
/// closed again: sled 0.34 keeps the pages it has read resident whatever its
/// cache_capacity (measured: reading 100k templates kept ~34 MB, with a 1 MB
/// cache as with 16 MB). Through the gateway's own handle that memory would
/// stay for the life of the process; closing the store gives it back at once.
async fn read_gallery(
    db_path: &std::path::Path,
    faces: &crate::vision::FacesSection,
) -> Result<models::Gallery, StartError> {
    let db = open_store(db_path, 1).await?;
    let g = crate::vision::store::FaceStore::open(&db)
        .and_then(|store| {
            crate::vision::store::read_gallery(&store, crate::vision::gallery_options(faces))
        })
        .map_err(|e| StartError::Vision(e.into()))?;
    drop(db);
    models::runtime::release_freed_memory();
    Ok(g)
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

/// The main store, watched for a failed write.
struct StoreWatch {
    store: sled::Db,
    restart: CancellationToken,
    /// A write has failed (said once).
    failed: bool,
}

impl StoreWatch {
    /// Flushes the main store (cheap when nothing changed): an error means
    /// sled has failed a write and will fail every later one. Said in the
    /// journal's health; a restart is asked for once the journal writes again
    /// (the disk has room), so that the journal keeps what waits meanwhile.
    async fn check(&mut self, journal: &Journal) {
        if let Err(e) = self.store.flush_async().await {
            if !self.failed {
                tracing::error!("store: cannot write ({e}); a restart is needed once the disk takes writes again");
                journal.set_store_error(Some(e.to_string()));
                self.failed = true;
            }
        }
        if self.failed
            && journal.writes_ok()
            && journal.queued() == 0
            && !self.restart.is_cancelled()
        {
            tracing::error!("store: the disk takes writes again; restarting to reopen the store");
            self.restart.cancel();
        }
    }
}

/// Runs retention every `every` (a minute by default), and reports the
/// unforwarded backlog; every 2 s, records the journal had to refuse and
/// whether the main store still writes.
async fn retention_task(
    journal: Journal,
    policy: retention::Policy,
    every: Duration,
    uplink: Option<UplinkState>,
    engine: EngineHandle,
    mut store: StoreWatch,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(every);
    let mut health = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = health.tick() => {
                report_refused(&journal, &engine).await;
                store.check(&journal).await;
                continue;
            }
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
                    engine.data_lost(out.unforwarded, LossCause::Evicted).await;
                }
            }
            Err(e) => tracing::error!("retention: {e}"),
        }
        if let Some(u) = &uplink {
            engine.backlog(u.backlog(&journal)).await;
        }
    }
}

/// Records the journal refused (its pending memory used up while the disk
/// failed) become a `data_loss` alarm, itself queued for the disk: alarms have
/// a reserve of their own, so it is kept and sent once the disk takes writes.
async fn report_refused(journal: &Journal, engine: &EngineHandle) {
    let refused = journal.take_refused();
    if refused > 0 {
        engine.data_lost(refused, LossCause::Refused).await;
    }
}
