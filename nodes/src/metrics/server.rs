//! The HTTP listener for `/metrics`: bound before the node joins, so a taken port stops it
//! with a clear error instead of a node that silently serves nothing.

use super::exposition::{Format, Snapshot, render};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use std::net::SocketAddr;
use std::sync::Arc;

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
        axum::routing::get(move |headers: HeaderMap| {
            let snapshot = snapshot.clone();
            async move { scrape(&snapshot(), negotiate(&headers)) }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("metrics listener stopped: {e}");
        }
    });
    Ok((bound, task))
}

fn scrape(snapshot: &Snapshot, format: Format) -> axum::response::Response {
    match render(snapshot, format) {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, format.content_type()),
                // The body depends on Accept: a cache must not hand one scraper's to another.
                (header::VARY, "accept"),
            ],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// OpenMetrics only for a scraper that names it in Accept at least as keenly as anything else
/// it takes; a wildcard, no Accept at all, or a header that cannot be read get the text format,
/// which every Prometheus-speaking tool reads.
fn negotiate(headers: &HeaderMap) -> Format {
    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    negotiate_accept(&accept.join(","))
}

fn negotiate_accept(accept: &str) -> Format {
    let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let (mut q, mut version) = (1.0_f32, None);
        for (key, value) in parts.filter_map(|p| p.split_once('=')) {
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                // An unreadable weight takes nothing, rather than everything.
                "q" => {
                    q = value
                        .parse()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(0.0)
                }
                "version" => version = Some(value),
                _ => {}
            }
        }
        match media.as_str() {
            // Another version of OpenMetrics is not this one.
            "application/openmetrics-text" if version.is_none_or(|v| v == "1.0.0") => {
                openmetrics = openmetrics.max(q)
            }
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_asked_for() {
        use Format::{OpenMetrics, Text};
        for (accept, format) in [
            ("", Text),
            ("*/*", Text),
            ("text/plain", Text),
            ("text/plain;version=0.0.4", Text),
            ("application/json", Text),
            ("application/openmetrics-text", OpenMetrics),
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                OpenMetrics,
            ),
            (
                "Application/OpenMetrics-Text;Version=\"1.0.0\"",
                OpenMetrics,
            ),
            // Prometheus 2.x's scrape header.
            (
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                 version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                OpenMetrics,
            ),
            // Prometheus told to prefer the text format.
            (
                "text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5",
                Text,
            ),
            ("application/openmetrics-text;q=0.5,*/*", Text),
            ("application/openmetrics-text;q=0", Text),
            ("application/openmetrics-text;q=high", Text),
            ("application/openmetrics-text;version=2.0.0", Text),
        ] {
            assert_eq!(negotiate_accept(accept), format, "{accept:?}");
        }
    }

    #[test]
    fn accept_headers_are_read_together() {
        let mut headers = HeaderMap::new();
        assert_eq!(negotiate(&headers), Format::Text);
        headers.append(header::ACCEPT, "text/plain;q=0.5".parse().unwrap());
        headers.append(
            header::ACCEPT,
            "application/openmetrics-text".parse().unwrap(),
        );
        assert_eq!(negotiate(&headers), Format::OpenMetrics);
    }
}
