//! The HTTP listener for `/metrics`: bound before the node joins, so a taken port stops it
//! with a clear error instead of a node that silently serves nothing.

use super::exposition::{Snapshot, render};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use std::net::SocketAddr;
use std::sync::Arc;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
#[error("metrics listener on {addr}: {source}")]
pub struct ListenError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Serves `/metrics` on `addr` until the returned task is aborted; `snapshot` is called once per
/// scrape. Returns the address bound (port 0 picks a free one).
pub async fn serve(
    addr: SocketAddr,
    snapshot: impl Fn() -> Snapshot + Send + Sync + 'static,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ListenError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ListenError { addr, source })?;
    let snapshot = Arc::new(snapshot);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let snapshot = snapshot.clone();
            async move { scrape(&snapshot()) }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("metrics listener stopped: {e}");
        }
    });
    Ok((bound, task))
}

fn scrape(snapshot: &Snapshot) -> axum::response::Response {
    match render(snapshot) {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
