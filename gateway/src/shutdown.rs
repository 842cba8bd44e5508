//! Waiting for the signal to stop (SIGINT from a terminal, SIGTERM from systemd).

/// Returns when SIGINT or SIGTERM arrives.
pub async fn signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
