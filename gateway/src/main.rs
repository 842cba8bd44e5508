//! `gatewayd`: the estate gateway daemon and its installer tools.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

use gateway::config::Config;
use gateway::daemon::Gateway;

#[derive(Parser)]
#[command(
    name = "gatewayd",
    version,
    about = "Estate edge gateway: access control, journal, uplink, console"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway with a config file.
    Run {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Check a config file: exit 0 when valid, else print each problem with its key and line.
    Check {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Run the simulated demo estate (starts a local mosquitto if none is running).
    Demo(gateway::demo::DemoArgs),
    /// Print an argon2 hash for a console user's `password_hash` (password read from stdin).
    HashPassword,
    /// Measure the gateway's speed and print the figures.
    #[cfg(feature = "bench")]
    Bench(gateway::bench::BenchArgs),
    /// Measure the gateway's speed (needs a build with `--features bench`).
    #[cfg(not(feature = "bench"))]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
    /// Check face photos with the gateway's own pipeline and thresholds.
    #[command(subcommand)]
    Face(FaceCmd),
}

#[derive(Subcommand)]
enum FaceCmd {
    /// One JSON line per image: faces found and the embedding of the largest.
    Embed {
        /// Config file whose [faces] section to use (default: built-in defaults).
        #[arg(short, long)]
        config: Option<PathBuf>,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Similarity of the largest faces of two photos and the verdict.
    Compare {
        #[arg(short, long)]
        config: Option<PathBuf>,
        a: PathBuf,
        b: PathBuf,
    },
    /// The estate's impostor scores, and the match threshold a false-accept
    /// target gives for its gallery (reads the store: stop gatewayd first).
    Calibrate {
        #[arg(short, long)]
        config: PathBuf,
        /// Target per identification (default: [faces] false_accept_rate, else 1e-4).
        #[arg(long)]
        far: Option<f64>,
    },
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("GATEWAYD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // No colour codes where nobody looks through a terminal (journald, a
    // file): they would end up in the stored log as escape sequences.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
}

fn main() -> Result<()> {
    gateway::memory::tune_allocator();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { config } => check(&config),
        Cmd::HashPassword => hash_password(),
        Cmd::Run { config } => {
            init_logging();
            let cfg = load(&config)?;
            runtime()?.block_on(run(cfg))
        }
        Cmd::Demo(args) => {
            init_logging();
            runtime()?.block_on(gateway::demo::run(args))
        }
        #[cfg(feature = "bench")]
        Cmd::Bench(args) => runtime()?.block_on(gateway::bench::run(args)),
        #[cfg(not(feature = "bench"))]
        Cmd::Bench { .. } => anyhow::bail!(
            "this gatewayd was built without the benchmarks (an edge binary carries none); \
             run `bash deploy/dev.sh bench`, or build with `cargo build --release --features bench`"
        ),
        Cmd::Face(cmd) => face(cmd),
    }
}

/// The face pipeline with the `[faces]` of a config file, or the defaults.
fn face_vision(config: Option<&std::path::Path>) -> Result<gateway::vision::Vision> {
    let faces = match config {
        Some(path) => {
            let cfg = load(path)?;
            Some((cfg.faces.clone().unwrap_or_default(), cfg.base_dir))
        }
        None => None,
    };
    gateway::vision::cli::load(faces.as_ref().map(|(f, dir)| (f.clone(), dir.as_path())))
        .map_err(|e| anyhow::anyhow!(e))
}

fn face(cmd: FaceCmd) -> Result<()> {
    use gateway::vision::cli;
    match cmd {
        FaceCmd::Embed { config, images } => {
            let vision = face_vision(config.as_deref())?;
            let mut failed = false;
            for line in cli::embed(&vision, &images) {
                failed |= line.get("error").is_some();
                println!("{line}");
            }
            if failed {
                std::process::exit(1);
            }
            Ok(())
        }
        FaceCmd::Compare { config, a, b } => {
            let vision = face_vision(config.as_deref())?;
            let line = cli::compare(&vision, &a, &b).map_err(|e| anyhow::anyhow!(e))?;
            println!("{line}");
            Ok(())
        }
        FaceCmd::Calibrate { config, far } => {
            let cfg = load(&config)?;
            let faces = cfg.faces.clone().unwrap_or_default();
            let far = far.or(faces.false_accept_rate).unwrap_or(1e-4);
            let c = cli::calibrate(&cfg.data_dir().join("db"), &faces, far)
                .map_err(|e| anyhow::anyhow!(e))?;
            println!("{c}");
            let t = gateway::vision::calibrate::match_threshold(
                &c,
                faces.unknown_threshold,
                faces.match_threshold,
            );
            println!("match threshold the gateway uses: {t:.3}");
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn load(path: &std::path::Path) -> Result<Config> {
    Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn check(path: &std::path::Path) -> Result<()> {
    match Config::load(path) {
        Ok(cfg) => {
            println!(
                "{}: ok ({} doors, {} devices, {} console users{}{})",
                path.display(),
                cfg.doors.len(),
                cfg.devices.len(),
                cfg.console.as_ref().map_or(0, |c| c.users.len()),
                if cfg.mqtt.is_some() {
                    ", mqtt uplink"
                } else {
                    ", no mqtt uplink"
                },
                match &cfg.console {
                    Some(c) => format!(", console on {}", c.listen),
                    None => ", no console".into(),
                }
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

fn hash_password() -> Result<()> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("again: ")?;
        if p != again {
            bail!("the passwords differ");
        }
        p
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.len() < 8 {
        bail!("use at least 8 characters");
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    println!("{hash}");
    Ok(())
}

/// Runs until SIGINT/SIGTERM; tells systemd when ready and pets its watchdog
/// only while the engine answers.
async fn run(cfg: Config) -> Result<()> {
    let mut signals = gateway::shutdown::Signals::install()?;
    let gw = Gateway::start(cfg).await?;
    tracing::info!(
        gateway = %gw.config.gateway.id,
        estate = %gw.config.gateway.estate,
        "gatewayd running"
    );
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let watchdog = watchdog(gw.engine.clone());
    let restart = gw.restart_needed();
    let restarting = tokio::select! {
        _ = signals.wait() => false,
        _ = watchdog => false,
        _ = restart.cancelled() => true,
    };
    tracing::info!("stopping");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    gw.stop().await;
    if restarting {
        // Non-zero: systemd (Restart=always) starts the gateway again.
        anyhow::bail!("the store failed a write; stopped so that it is reopened at the next start");
    }
    Ok(())
}

async fn watchdog(engine: gateway::engine::EngineHandle) {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return std::future::pending().await;
    }
    let every = Duration::from_micros(usec / 2);
    loop {
        tokio::time::sleep(every).await;
        let alive = tokio::time::timeout(every, engine.query(gateway::engine::Query::Doors))
            .await
            .is_ok_and(|r| r.is_some());
        if alive {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        } else {
            tracing::error!("engine not answering; systemd's watchdog will restart the gateway");
        }
    }
}
