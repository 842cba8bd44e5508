//! A private mosquitto, started with its own config on a loopback port, for the
//! demo, the benchmarks and the tests (which never rely on a broker of the
//! machine). Killed when dropped.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start it.
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// `password_file` for mosquitto (from `mosquitto_passwd`); anonymous when absent.
    pub password_file: Option<PathBuf>,
    /// TLS: (CA, server certificate, server key), PEM files.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// Require client certificates signed by the CA.
    pub require_certificate: bool,
    /// Keep sessions and queued messages across a restart (saved on SIGTERM).
    pub persistent: bool,
    /// A second, plain and anonymous listener (for test subscribers beside a
    /// TLS or password-protected one).
    pub plain_port: Option<u16>,
    /// Extra lines for mosquitto.conf.
    pub extra: Vec<String>,
}

/// A running mosquitto.
pub struct Mosquitto {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    options: BrokerOptions,
}

/// A free loopback TCP port (bound and released; good enough for tests).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

impl Mosquitto {
    /// Starts mosquitto and waits until it accepts connections.
    pub fn start(mut options: BrokerOptions) -> std::io::Result<Mosquitto> {
        if options.port == 0 {
            options.port = free_port()?;
        }
        let dir = tempfile::tempdir()?;
        let mut m = Mosquitto {
            child: None,
            port: options.port,
            dir,
            options,
        };
        m.spawn()?;
        Ok(m)
    }

    pub fn url(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "mqtts"
        } else {
            "mqtt"
        };
        let host = if self.options.tls.is_some() {
            "localhost"
        } else {
            "127.0.0.1"
        };
        format!("{scheme}://{host}:{}", self.port)
    }

    fn write_config(&self) -> std::io::Result<PathBuf> {
        let conf = self.dir.path().join("mosquitto.conf");
        let mut f = std::fs::File::create(&conf)?;
        if self.options.plain_port.is_some() {
            writeln!(f, "per_listener_settings true")?;
        }
        writeln!(f, "listener {} 127.0.0.1", self.port)?;
        if self.options.persistent {
            writeln!(f, "persistence true")?;
            writeln!(f, "persistence_location {}/", self.dir.path().display())?;
        } else {
            writeln!(f, "persistence false")?;
        }
        // The default of 1000 drops bursts to slow subscribers (the tests' subscribers).
        writeln!(f, "max_queued_messages 1000000")?;
        writeln!(f, "max_inflight_messages 0")?;
        match &self.options.password_file {
            Some(p) => {
                writeln!(f, "allow_anonymous false")?;
                writeln!(f, "password_file {}", p.display())?;
            }
            None => writeln!(f, "allow_anonymous true")?,
        }
        if let Some((ca, cert, key)) = &self.options.tls {
            writeln!(f, "cafile {}", ca.display())?;
            writeln!(f, "certfile {}", cert.display())?;
            writeln!(f, "keyfile {}", key.display())?;
            if self.options.require_certificate {
                writeln!(f, "require_certificate true")?;
            }
        }
        if let Some(port) = self.options.plain_port {
            writeln!(f, "listener {port} 127.0.0.1")?;
            writeln!(f, "allow_anonymous true")?;
        }
        if is_root() {
            writeln!(f, "user root")?;
        }
        for line in &self.options.extra {
            writeln!(f, "{line}")?;
        }
        Ok(conf)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let conf = self.write_config()?;
        let log = std::fs::File::create(self.dir.path().join("mosquitto.log"))?;
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot run mosquitto: {e}")))?;
        self.child = Some(child);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(std::io::Error::other(format!(
                    "mosquitto exited with {status}: {}",
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(std::io::Error::other(
            "mosquitto did not start listening within 10 s",
        ))
    }

    /// Stops the broker cleanly (SIGTERM: a persistent broker saves its sessions).
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the broker (an outage).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (after `stop` or `terminate`).
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        // The port may linger for a moment after the kill.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!("mosquitto restart: {e}");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The broker's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}
