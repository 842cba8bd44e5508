//! Waiting for the signal to stop (SIGINT from a terminal, SIGTERM from systemd).
//! The handlers are installed before the gateway starts, so that a signal that
//! comes early still means "stop cleanly", never the default of dying at once.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Installed signal handlers.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Returns when SIGINT or SIGTERM arrives.
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
