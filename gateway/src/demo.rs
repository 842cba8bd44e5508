//! `gatewayd demo`: the simulated estate (config/demo.toml) on the real engine,
//! journal and uplink, with a local mosquitto started if none is listening.

use anyhow::{Context, Result};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::broker::{BrokerOptions, Mosquitto};
use crate::config::Config;
use crate::daemon::Gateway;

/// The demo estate's config, built into the binary so `gatewayd demo` needs no file.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");

/// The console users of the built-in demo (user, role, password); their hashes
/// are in config/demo.toml (a unit test checks that they match).
pub const DEMO_USERS: [(&str, &str, &str); 2] = [
    ("guard1", "guard", "guard-demo-1"),
    ("admin", "admin", "admin-demo-1"),
];

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Use this config instead of the built-in demo estate.
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Where the demo keeps its journal (default: ./data/demo).
    #[arg(long, default_value = "data/demo")]
    pub data_dir: PathBuf,
    /// Do not start a mosquitto even if none is listening.
    #[arg(long)]
    pub no_broker: bool,
    /// Serve the guards' console here instead (e.g. 127.0.0.1:8081 when 8080 is taken).
    #[arg(long, value_name = "IP:PORT")]
    pub console: Option<String>,
}

fn listening(addr: &SocketAddr) -> bool {
    TcpStream::connect_timeout(addr, Duration::from_millis(300)).is_ok()
}

/// Starts mosquitto on the loopback port `addr` when nothing listens there.
fn ensure_broker(addr: SocketAddr) -> Result<Option<Mosquitto>> {
    if listening(&addr) {
        println!("Using the MQTT broker already listening on {addr}.");
        return Ok(None);
    }
    let broker = Mosquitto::start(BrokerOptions {
        port: addr.port(),
        ..Default::default()
    })
    .context("no MQTT broker is listening and mosquitto could not be started (apt-get install mosquitto)")?;
    println!("Started a local mosquitto on {addr} (it stops with the demo).");
    Ok(Some(broker))
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let mut cfg = match &args.config {
        Some(path) => Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => {
            let cwd = std::env::current_dir()?;
            Config::parse(DEMO_CONFIG, &cwd).map_err(|errors| {
                anyhow::anyhow!(
                    "built-in demo config: {}",
                    errors
                        .iter()
                        .map(|e| format!("{}: {}", e.path, e.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            })?
        }
    };
    if args.config.is_none() {
        cfg.gateway.data_dir = std::env::current_dir()?.join(&args.data_dir);
    }
    if let Some(listen) = &args.console {
        cfg.console.get_or_insert_with(Default::default).listen = listen.clone();
    }
    let _broker = match (&cfg.mqtt, args.no_broker) {
        (Some(m), false) => {
            let (host, port, _) = crate::uplink::parse_url(&m.url)?;
            let ip = if host == "localhost" {
                "127.0.0.1".to_owned()
            } else {
                host
            };
            match format!("{ip}:{port}").parse::<SocketAddr>() {
                Ok(addr) if addr.ip().is_loopback() => ensure_broker(addr)?,
                _ => None,
            }
        }
        _ => None,
    };
    let mut signals = crate::shutdown::Signals::install()?;
    let gw = Gateway::start(cfg).await?;
    let c = &gw.config;
    println!();
    println!(
        "Demo estate `{}` running (gateway `{}`), journal in {}.",
        c.gateway.estate,
        c.gateway.id,
        c.data_dir().display()
    );
    if let Some(m) = &c.mqtt {
        println!(
            "Events and alarms on MQTT:  mosquitto_sub -h 127.0.0.1 -p {} -t '{}/{}/{}/#' -v",
            crate::uplink::parse_url(&m.url)
                .map(|u| u.1)
                .unwrap_or(1883),
            m.topic_prefix,
            c.gateway.estate,
            c.gateway.id
        );
    }
    if let (Some(addr), Some(console)) = (gw.console_addr, &c.console) {
        let scheme = if console.tls_cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        println!("Guards' console:            {scheme}://{addr}/");
        if args.config.is_none() {
            for (user, role, password) in DEMO_USERS {
                println!("  {role:<6} user `{user}`, password `{password}`");
            }
        }
    }
    println!("The first alarms come within a minute (a forced door, an SOS call, an e-bike in the elevator).");
    println!("Stop with Ctrl-C.");
    println!();
    signals.wait().await;
    gw.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_users_match_the_demo_config() {
        let cfg = Config::parse(DEMO_CONFIG, std::path::Path::new(".")).unwrap();
        let console = cfg.console.expect("the demo has a console");
        assert_eq!(console.users.len(), DEMO_USERS.len());
        for (user, role, password) in DEMO_USERS {
            let u = console.users.iter().find(|u| u.name == user).unwrap();
            assert_eq!(serde_json::to_value(u.role).unwrap(), role);
            assert!(
                crate::console::auth::verify_password(&u.password_hash, password),
                "{user}"
            );
        }
    }
}
