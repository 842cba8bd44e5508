//! A real camera for tests: GStreamer's RTSP server (python3-gi) streaming
//! H.264 from a still image or a video file, started and stopped by the test
//! (the [`Peer`] of the camera's conformance test, and the door camera of the
//! gateway's face tests). The script is `drivers/tests/peers/rtsp_server.py`,
//! run by the venv's Python like the other peers.

use futures::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::peers::{free_port, peers_dir, python};
use super::Peer;

/// What the server streams.
#[derive(Clone, Debug)]
pub enum Feed {
    Image(PathBuf),
    Video(PathBuf),
}

pub struct RtspServer {
    port: u16,
    feed: Feed,
    child: Option<Child>,
}

impl RtspServer {
    pub fn new(feed: Feed) -> Self {
        Self {
            port: free_port().unwrap_or(18554),
            feed,
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.port)
    }

    /// Starts the server; panics (it is a test) when it does not come up in 10 s.
    pub async fn spawn(&mut self) {
        let (flag, file): (&str, &Path) = match &self.feed {
            Feed::Image(p) => ("--image", p),
            Feed::Video(p) => ("--video", p),
        };
        let mut child = Command::new(python())
            .arg(peers_dir().join("rtsp_server.py"))
            .args(["--port", &self.port.to_string(), flag])
            .arg(file)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0)");
        let out = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(out).lines();
        let ready = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await;
        assert!(
            matches!(ready, Ok(Ok(Some(ref l))) if l == "ready"),
            "RTSP server did not start: {ready:?}"
        );
        self.child = Some(child);
    }

    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}

impl Peer for RtspServer {
    fn start(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.spawn())
    }
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.kill())
    }
}
