//! Stop requests: how `run` and the long-lived commands (watch, dashboards, `energy --watch`)
//! learn it is time to finish.

use anyhow::Context;

/// Registers SIGTERM and SIGINT now; the returned future names the first to arrive.
pub fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("watching SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("watching SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}
