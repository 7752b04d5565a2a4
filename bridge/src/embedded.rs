//! Embedded mode: rumqttd inside the process, behind the gate, with a local link feeding the
//! mesh. Devices reach it at `bridge.listen` with MQTT 3.1.1 or 5.

use crate::auth::Users;
use crate::config::BridgeConfig;
use crate::gate::{self, Gate, Handoff};
use crate::homeassistant::HomeAssistantConfig;
use crate::mesh::{Downlink, Next, Uplink};
use crate::mesh_readers::MeshReaders;
use rumqttd::{Broker, Config, ConnectionSettings, Notification, RouterConfig, ServerSettings};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::time::Duration;
use swarm_bus::{Leaf, NodeId, SwarmKeys};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("listening for MQTT on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the embedded broker: {0}")]
    Broker(String),
    #[error(transparent)]
    Users(#[from] crate::auth::AuthError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// The gate's listener is bound before anything else, so a busy port is reported at once.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, EmbeddedError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| EmbeddedError::Listen { addr, source })
}

/// Two loopback ports for rumqttd's internal listeners, told apart: each probe is held until
/// both are picked. Dropped one by one, the kernel could hand out the same port twice; the 5.0
/// listener then failed to bind (its error only logged), the 3.1.1 one held the port, and every
/// MQTT 5 device was refused for its protocol level (seen in CI).
fn free_loopback_ports() -> Result<(SocketAddr, SocketAddr), EmbeddedError> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let probe = || {
        let listener =
            StdListener::bind(any).map_err(|source| EmbeddedError::Listen { addr: any, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmbeddedError::Listen { addr: any, source })?;
        Ok::<_, EmbeddedError>((listener, addr))
    };
    let (_held_v4, v4) = probe()?;
    let (_held_v5, v5) = probe()?;
    Ok((v4, v5))
}

fn random_secret() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..32)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)]))
        .collect()
}

fn server(name: &str, listen: SocketAddr, settings: &BridgeConfig, secret: &str) -> ServerSettings {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: settings.max_payload_bytes + 1024,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let secret = secret.to_string();
    connections.set_auth_handler(move |_client, _user, password: String| {
        let ok = password == secret;
        async move { ok }
    });
    ServerSettings {
        name: name.into(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    }
}

/// The client id of the bridge's own link into rumqttd; the gate refuses it to devices.
pub const LINK_CLIENT_ID: &str = "swarm-bridge";

/// rumqttd keeps messages for its subscribers in a ring of segments.
const LOG_SEGMENTS: usize = 8;

/// Read chunks from devices waiting for the uplink; past this, device reads wait.
const HANDOFF_QUEUE: usize = 256;

fn router(settings: &BridgeConfig) -> RouterConfig {
    RouterConfig {
        max_connections: settings.max_connections + 16,
        max_outgoing_packet_count: 1000,
        // Device telemetry reaches the mesh through the gate, not this log; it holds messages
        // only for MQTT subscribers, and rumqttd does not slow QoS 0 publishers for them, so a
        // subscriber that falls further behind than this loses the oldest.
        max_segment_size: settings.buffer_mib.max(1) * 1024 * 1024 / LOG_SEGMENTS,
        max_segment_count: LOG_SEGMENTS,
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    }
}

/// Starts the broker and the gate; returns once both accept connections. The returned task
/// runs the local link until the downlink channel closes.
pub async fn start(
    settings: &BridgeConfig,
    keys: SwarmKeys,
    listener: TcpListener,
    tls: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    mut uplink: Uplink,
    mut downlink: mpsc::Receiver<Downlink>,
    home_assistant: Option<&HomeAssistantConfig>,
) -> Result<tokio::task::JoinHandle<()>, EmbeddedError> {
    let users = match &settings.users_file {
        Some(path) => Some(Arc::new(Users::load(path)?)),
        None => None,
    };
    let secret = random_secret();
    let (v4, v5) = free_loopback_ports()?;
    let config = Config {
        id: 0,
        router: router(settings),
        v4: Some(HashMap::from([(
            "1".into(),
            server("v4", v4, settings, &secret),
        )])),
        v5: Some(HashMap::from([(
            "1".into(),
            server("v5", v5, settings, &secret),
        )])),
        ..Config::default()
    };
    let mut broker = Broker::new(config);
    let (mut link_tx, mut link_rx) = broker
        .link(LINK_CLIENT_ID)
        .map_err(|e| EmbeddedError::Broker(e.to_string()))?;
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!("embedded MQTT broker stopped: {e}");
            }
        })
        .map_err(|e| EmbeddedError::Broker(e.to_string()))?;
    for addr in [v4, v5] {
        wait_listening(addr).await?;
    }

    // Last-Wills appear only inside rumqttd; everything else comes through the gate.
    let presence = crate::topic::key_expr_to_filter(&keys.all(Leaf::Status))
        .map_err(|e| EmbeddedError::Broker(format!("status filter: {e}")))?;
    // Home Assistant's births do not go to the mesh through the gate either.
    let births = home_assistant.map(|ha| ha.status_topic());
    for filter in std::iter::once(presence).chain(births) {
        link_tx
            .subscribe(filter.clone())
            .map_err(|e| EmbeddedError::Broker(format!("subscribing to {filter}: {e}")))?;
    }
    let ha_login = home_assistant.and_then(|ha| {
        let user = ha.user.as_deref()?;
        Some((NodeId::new(user).ok()?, ha.prefix.clone()))
    });
    let (handoff_tx, mut handoffs) = mpsc::channel::<Handoff>(HANDOFF_QUEUE);
    let gate = Arc::new(Gate {
        readers: Arc::new(MeshReaders::new(&keys)),
        keys,
        users,
        v4,
        v5,
        secret,
        max_payload: settings.max_payload_bytes,
        stats: uplink.stats().clone(),
        slots: Arc::new(Semaphore::new(settings.max_connections)),
        uplink: handoff_tx,
        home_assistant: ha_login,
    });
    tracing::info!(listen = %settings.listen, "MQTT broker ready (3.1.1 and 5)");
    if let Some((tls_listener, acceptor)) = tls {
        tracing::info!(listen = %settings.tls_listen.map(|a| a.to_string()).unwrap_or_default(), "MQTT over TLS ready");
        tokio::spawn(gate::serve(tls_listener, gate.clone(), Some(acceptor)));
    }
    tokio::spawn(gate::serve(listener, gate, None));

    Ok(tokio::spawn(async move {
        let mut sleepers = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = sleepers.tick() => uplink.check_sleepers().await,
                Some(handoff) = handoffs.recv() => {
                    let last = handoff.publications.len().saturating_sub(1);
                    for (i, p) in handoff.publications.into_iter().enumerate() {
                        let next = if i < last || !handoffs.is_empty() { Next::More } else { Next::Idle };
                        // The gate read the topic as UTF-8 before slicing it out.
                        if let Ok(topic) = std::str::from_utf8(&p.topic) {
                            uplink.carry_then(topic, p.payload, next).await;
                        }
                    }
                    if let Some(taken) = handoff.taken {
                        let _ = taken.send(());
                    }
                }
                n = link_rx.next() => match n {
                    Ok(Some(Notification::Forward(f))) => {
                        let topic = String::from_utf8_lossy(&f.publish.topic);
                        uplink.carry(&topic, f.publish.payload).await;
                    }
                    // The router paused us because our queue filled; we have drained it.
                    Ok(Some(Notification::Unschedule)) => {
                        if let Err(e) = link_rx.wake().await {
                            tracing::error!("embedded broker link closed: {e}");
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!("embedded broker link closed: {e}");
                        uplink.broker_lost().await;
                        return;
                    }
                },
                down = downlink.recv() => match down {
                    Some(d) => {
                        let topic = d.topic.clone();
                        let handed = if d.retain {
                            link_tx.send(retained(d)).await
                        } else {
                            link_tx.publish(d.topic, d.payload)
                        };
                        if let Err(e) = handed {
                            tracing::warn!(topic, "message not handed to the broker: {e}");
                        }
                    }
                    None => return,
                },
            }
        }
    }))
}

/// A retained QoS 0 publication from the bridge's own link (the link's `publish` cannot
/// retain).
fn retained(d: Downlink) -> rumqttd::protocol::Packet {
    let publish = rumqttd::protocol::Publish::new(
        bytes::Bytes::from(d.topic),
        bytes::Bytes::from(d.payload),
        true,
    );
    rumqttd::protocol::Packet::Publish(publish, None)
}

/// Waits until rumqttd holds the port (our own bind then fails), without connecting to it.
async fn wait_listening(addr: SocketAddr) -> Result<(), EmbeddedError> {
    for _ in 0..300 {
        if StdListener::bind(addr).is_err() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(EmbeddedError::Broker(format!(
        "internal listener {addr} did not come up"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_internal_listeners_get_two_ports() {
        for _ in 0..200 {
            let (v4, v5) = free_loopback_ports().expect("loopback ports");
            assert_ne!(v4.port(), v5.port());
            assert!(v4.ip().is_loopback() && v5.ip().is_loopback());
        }
    }
}
