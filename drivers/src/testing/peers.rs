//! Start and stop helpers for the real third-party programs the drivers are
//! tested and benchmarked against: socat pty pairs, libosdp PDs, pymodbus
//! servers, llrpkit's reader emulator. The Python peers live in
//! `drivers/tests/peers/` and run in the workspace's `.venv`
//! (`bash deploy/dev.sh setup`). Every child is killed when dropped.

use futures::future::BoxFuture;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::Peer;

/// Why a peer could not be started or talked to.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PeerError(pub String);

/// The checkout's root (where `.venv` and `models/files` are).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The workspace's Python venv, else python3.
pub fn python() -> PathBuf {
    for root in [repo_root(), PathBuf::from(".")] {
        let venv = root.join(".venv/bin/python");
        if venv.exists() {
            return venv;
        }
    }
    PathBuf::from("python3")
}

/// Where the Python peers are.
pub fn peers_dir() -> PathBuf {
    let built = repo_root().join("drivers/tests/peers");
    if built.exists() {
        built
    } else {
        PathBuf::from("drivers/tests/peers")
    }
}

/// Waits until `path` exists (bounded).
pub async fn wait_path(path: &Path, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16, PeerError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| PeerError(format!("no free port: {e}")))
}

/// Waits until something accepts on `127.0.0.1:port`.
pub async fn wait_listening(port: u16, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A socat pty pair with stable names: `cp-tty` for the driver, `dev-tty` for the peer.
pub struct PtyPair {
    child: Child,
    pub cp: PathBuf,
    pub dev: PathBuf,
}

impl PtyPair {
    pub async fn start(dir: &Path) -> Result<PtyPair, PeerError> {
        let cp = dir.join("cp-tty");
        let dev = dir.join("dev-tty");
        let child = Command::new("socat")
            .arg("-d")
            .arg("-d")
            .arg(format!("pty,raw,echo=0,link={}", cp.display()))
            .arg(format!("pty,raw,echo=0,link={}", dev.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| PeerError(format!("socat (Debian package socat): {e}")))?;
        let mut pair = PtyPair { child, cp, dev };
        if !(wait_path(&pair.cp, Duration::from_secs(5)).await
            && wait_path(&pair.dev, Duration::from_secs(5)).await)
        {
            pair.stop().await;
            return Err(PeerError("socat did not create its ptys".into()));
        }
        Ok(pair)
    }

    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
        // socat removes its links on exit; make sure, so a restart waits for new ones.
        let _ = std::fs::remove_file(&self.cp);
        let _ = std::fs::remove_file(&self.dev);
    }
}

/// A Python peer speaking JSON lines on stdin/stdout.
pub struct JsonPeer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    pub seen: Vec<Value>,
}

impl JsonPeer {
    pub async fn start(script: &str, args: &[String]) -> Result<JsonPeer, PeerError> {
        let mut child = Command::new(python())
            .arg("-u")
            .arg(peers_dir().join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| PeerError(format!("python for {script}: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(PeerError(format!("{script}: no stdin/stdout")));
        };
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut r = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = r.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                    Err(_) => eprintln!("peer: {line}"),
                }
            }
        });
        let mut peer = JsonPeer {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        };
        if peer
            .wait_for(Duration::from_secs(20), |v| v["ready"] == true)
            .await
            .is_none()
        {
            peer.stop().await;
            return Err(PeerError(format!(
                "{script} did not start (is its Python package installed? run `bash deploy/dev.sh setup`)"
            )));
        }
        Ok(peer)
    }

    /// Sends one control line; a peer that died is reported on its next wait.
    pub async fn send(&mut self, v: Value) {
        let mut line = v.to_string();
        line.push('\n');
        if self.stdin.write_all(line.as_bytes()).await.is_err() || self.stdin.flush().await.is_err()
        {
            eprintln!("peer: stdin closed");
        }
    }

    /// Waits for a report matching `pred`; earlier ones are kept in `seen`.
    pub async fn wait_for(
        &mut self,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return Some(v);
                    }
                }
                _ => return None,
            }
        }
    }

    /// Reports received so far without waiting.
    pub fn collect(&mut self) -> &[Value] {
        while let Ok(v) = self.lines.try_recv() {
            self.seen.push(v);
        }
        &self.seen
    }

    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
    }
}

/// libosdp PDs on a socat pty bus. `specs`: `ADDR:KEYHEX`, `ADDR:install`, `ADDR:KEYHEX:plain`.
pub struct OsdpBus {
    dir: PathBuf,
    specs: Vec<String>,
    pub pty: Option<PtyPair>,
    pub pds: Option<JsonPeer>,
}

impl OsdpBus {
    pub fn new(dir: &Path, specs: &[&str]) -> OsdpBus {
        OsdpBus {
            dir: dir.to_owned(),
            specs: specs.iter().map(|s| s.to_string()).collect(),
            pty: None,
            pds: None,
        }
    }

    /// The port the driver opens.
    pub fn port(&self) -> PathBuf {
        self.dir.join("cp-tty")
    }

    pub async fn try_up(&mut self) -> Result<(), PeerError> {
        let pty = PtyPair::start(&self.dir).await?;
        let mut args = vec![pty.dev.display().to_string()];
        args.extend(self.specs.iter().cloned());
        self.pty = Some(pty);
        self.pds = Some(JsonPeer::start("osdp_pd.py", &args).await?);
        Ok(())
    }

    /// Starts the bus; panics when it cannot (for tests).
    pub async fn up(&mut self) {
        if let Err(e) = self.try_up().await {
            panic!("OSDP peer: {e}");
        }
    }

    pub async fn down(&mut self) {
        if let Some(mut p) = self.pds.take() {
            p.stop().await;
        }
        if let Some(mut p) = self.pty.take() {
            p.stop().await;
        }
    }

    /// The running PDs; panics when the bus is down (a test's mistake).
    pub fn pds(&mut self) -> &mut JsonPeer {
        match self.pds.as_mut() {
            Some(p) => p,
            None => panic!("the PDs are not running"),
        }
    }
}

impl Peer for OsdpBus {
    fn start(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.up())
    }
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.down())
    }
}

/// A pymodbus device, over TCP on a loopback port or RTU on a socat pty.
pub struct ModbusPeer {
    dir: PathBuf,
    pub tcp_port: Option<u16>,
    pub pty: Option<PtyPair>,
    pub server: Option<JsonPeer>,
}

impl ModbusPeer {
    pub fn tcp(dir: &Path) -> Result<ModbusPeer, PeerError> {
        Ok(ModbusPeer {
            dir: dir.to_owned(),
            tcp_port: Some(free_port()?),
            pty: None,
            server: None,
        })
    }

    pub fn rtu(dir: &Path) -> ModbusPeer {
        ModbusPeer {
            dir: dir.to_owned(),
            tcp_port: None,
            pty: None,
            server: None,
        }
    }

    /// The serial port the driver opens (RTU).
    pub fn port(&self) -> PathBuf {
        self.dir.join("cp-tty")
    }

    pub async fn try_up(&mut self) -> Result<(), PeerError> {
        match self.tcp_port {
            Some(port) => {
                self.server = Some(
                    JsonPeer::start("modbus_server.py", &["tcp".into(), port.to_string()]).await?,
                );
                if !wait_listening(port, Duration::from_secs(10)).await {
                    return Err(PeerError("pymodbus did not listen".into()));
                }
            }
            None => {
                if self.pty.is_none() {
                    self.pty = Some(PtyPair::start(&self.dir).await?);
                }
                let dev = self.dir.join("dev-tty").display().to_string();
                self.server = Some(
                    JsonPeer::start("modbus_server.py", &["rtu".into(), dev, "19200".into()])
                        .await?,
                );
            }
        }
        Ok(())
    }

    pub async fn up(&mut self) {
        if let Err(e) = self.try_up().await {
            panic!("Modbus peer: {e}");
        }
    }

    /// Stops the server only (an RTU device that went silent on a live line).
    pub async fn silence(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.stop().await;
        }
    }

    pub async fn down(&mut self) {
        self.silence().await;
        if let Some(mut p) = self.pty.take() {
            p.stop().await;
        }
    }

    pub fn server(&mut self) -> &mut JsonPeer {
        match self.server.as_mut() {
            Some(s) => s,
            None => panic!("the Modbus server is not running"),
        }
    }
}

impl Peer for ModbusPeer {
    fn start(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.up())
    }
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.down())
    }
}

/// llrpkit's LLRP reader emulator with a tag population the test controls.
pub struct LlrpPeer {
    pub port: u16,
    pub reader: Option<JsonPeer>,
}

impl LlrpPeer {
    pub fn new() -> Result<LlrpPeer, PeerError> {
        Ok(LlrpPeer {
            port: free_port()?,
            reader: None,
        })
    }

    pub async fn up(&mut self) {
        match JsonPeer::start("llrp_reader.py", &[self.port.to_string()]).await {
            Ok(r) => self.reader = Some(r),
            Err(e) => panic!("LLRP peer: {e}"),
        }
    }

    pub async fn down(&mut self) {
        if let Some(mut r) = self.reader.take() {
            r.stop().await;
        }
    }

    pub fn reader(&mut self) -> &mut JsonPeer {
        match self.reader.as_mut() {
            Some(r) => r,
            None => panic!("the reader emulator is not running"),
        }
    }
}

impl Peer for LlrpPeer {
    fn start(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.up())
    }
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.down())
    }
}
