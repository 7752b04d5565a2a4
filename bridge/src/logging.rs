//! Logging for both binaries (`swarm-bridge`, and `swarm-node`, which embeds the bridge):
//! stderr, filtered by `SWARM_LOG`, with the chatty zenoh and MQTT crates held to warnings.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub fn init() {
    let filter = EnvFilter::try_from_env("SWARM_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,zenoh=warn,rumqttd=warn,rumqttc=warn"));
    subscriber(filter, std::io::stderr).init();
}

fn subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::filter::filter_fn(|meta| {
            !is_per_message_span(meta)
        }))
        .with(tracing_subscriber::fmt::layer().with_writer(writer))
}

/// rumqttd opens `error_span!`s for every publication it routes, with the topic as a Debug
/// field; formatting them took a quarter of the bridge's CPU under a flood (perf, 4-client
/// QoS 0 flood). Its events still get through; they only lose that span context.
fn is_per_message_span(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span() && meta.target().starts_with("rumqttd")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rumqttd_spans_are_dropped_but_its_events_and_our_spans_are_not() {
        let out = Captured::default();
        let writer = out.clone();
        let sub = subscriber(EnvFilter::new("info,rumqttd=warn"), move || writer.clone());
        tracing::subscriber::with_default(sub, || {
            tracing::error_span!(target: "rumqttd::router::routing", "publish", topic = "t-in-span")
                .in_scope(|| tracing::error!(target: "rumqttd::router::routing", "router trouble"));
            tracing::info_span!("gate", device = "board-7")
                .in_scope(|| tracing::warn!("bridge trouble"));
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("router trouble"), "{text}");
        assert!(!text.contains("t-in-span"), "{text}");
        assert!(
            text.contains("bridge trouble") && text.contains("board-7"),
            "{text}"
        );
    }
}
