//! External mode: the bridge is a client of mosquitto, EMQX or any broker. Its session is
//! persistent (fixed client id, no clean start) and each message is acknowledged only after
//! zenoh has taken it, so a bridge restart loses nothing the broker held for it.

use crate::config::{BridgeConfig, MqttVersion};
use crate::mesh::{Downlink, Next, Uplink};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error("bridge.broker `{0}` is not host:port")]
    Address(String),
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Requests queued towards the event loop; acks are queued without waiting, so this bounds
/// messages in flight between the broker and zenoh.
const REQUESTS: usize = 4096;

pub fn parse_broker(text: &str) -> Result<(String, u16), ExternalError> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| ExternalError::Address(text.into()))?;
    let port = port
        .parse()
        .map_err(|_| ExternalError::Address(text.into()))?;
    if host.is_empty() {
        return Err(ExternalError::Address(text.into()));
    }
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

/// `will`: a topic the broker sets retained to `offline` if the bridge vanishes (Home
/// Assistant's gateway availability).
pub fn start(
    settings: &BridgeConfig,
    swarm: &str,
    filters: Vec<String>,
    will: Option<String>,
    uplink: Uplink,
    downlink: mpsc::Receiver<Downlink>,
) -> Result<tokio::task::JoinHandle<()>, ExternalError> {
    let broker = settings.broker.clone().unwrap_or_default();
    let (host, port) = parse_broker(&broker)?;
    let client_id = settings
        .client_id
        .clone()
        .unwrap_or_else(|| format!("swarm-bridge-{swarm}"));
    let login = settings
        .broker_username
        .clone()
        .map(|u| (u, settings.broker_password.clone().unwrap_or_default()));
    tracing::info!(%broker, %client_id, version = ?settings.broker_version, "connecting to the MQTT broker");
    let who = Client {
        client_id,
        host,
        port,
        login,
        will,
    };
    Ok(match settings.broker_version {
        MqttVersion::V5 => tokio::spawn(v5::run(who, filters, uplink, downlink)),
        MqttVersion::V4 => tokio::spawn(v4::run(who, filters, uplink, downlink)),
    })
}

/// Who the bridge is to the broker, and where.
struct Client {
    client_id: String,
    host: String,
    port: u16,
    login: Option<(String, String)>,
    will: Option<String>,
}

/// rumqttc gives the topic as `String` (3.1.1) or `Bytes` (5).
fn topic_text(topic: &(impl AsRef<[u8]> + ?Sized)) -> String {
    String::from_utf8_lossy(topic.as_ref()).into_owned()
}

fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(BACKOFF_MAX)
}

// One client loop for both protocol versions: rumqttc has a module per version with the same
// names in each.
macro_rules! client_loop {
    ($module:ident, [$($client:ident)::+], [$($qos:ident)::+], $persist:expr, $will:expr) => {
        mod $module {
            use super::*;
            use $($client)::+::{AsyncClient, Event, Incoming, MqttOptions};
            use $($qos)::+::QoS;

            pub async fn run(
                who: Client,
                filters: Vec<String>,
                mut uplink: Uplink,
                mut downlink: mpsc::Receiver<Downlink>,
            ) {
                let Client { client_id, host, port, login, will } = who;
                let mut options = MqttOptions::new(client_id, host, port);
                options.set_keep_alive(Duration::from_secs(10));
                options.set_manual_acks(true);
                let persist: fn(&mut MqttOptions) = $persist;
                persist(&mut options);
                if let Some(topic) = will {
                    let set_will: fn(&mut MqttOptions, String) = $will;
                    set_will(&mut options, topic);
                }
                if let Some((user, pass)) = login {
                    options.set_credentials(user, pass);
                }
                let (client, mut events) = AsyncClient::new(options, REQUESTS);
                let mut backoff = BACKOFF_MIN;
                let mut sleepers = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tokio::select! {
                        _ = sleepers.tick() => uplink.check_sleepers().await,
                        event = events.poll() => match event {
                            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                                backoff = BACKOFF_MIN;
                                tracing::info!("connected to the MQTT broker");
                                for f in &filters {
                                    if let Err(e) = client.try_subscribe(f.clone(), QoS::AtLeastOnce) {
                                        tracing::warn!(filter = %f, "subscribing: {e}");
                                    }
                                }
                            }
                            Ok(Event::Incoming(Incoming::Publish(p))) => {
                                let topic = topic_text(&p.topic);
                                if uplink.ha_availability_seen(&topic, p.retain) {
                                    if let Err(e) = client.try_ack(&p) {
                                        tracing::warn!("acknowledging to the broker: {e}");
                                    }
                                    continue;
                                }
                                // rumqttc reads many packets at once and queues the rest as events.
                                let next = if events.state.events.is_empty() { Next::Idle } else { Next::More };
                                // Refused messages are acknowledged too: they would only come back.
                                uplink.carry_then(&topic, p.payload.clone(), next).await;
                                if let Err(e) = client.try_ack(&p) {
                                    tracing::warn!("acknowledging to the broker: {e}");
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!("MQTT broker connection: {e}; retrying in {backoff:?}");
                                uplink.broker_lost().await;
                                tokio::time::sleep(backoff).await;
                                backoff = next_backoff(backoff);
                            }
                        },
                        down = downlink.recv() => match down {
                            Some(d) => {
                                if let Err(e) = client.try_publish(d.topic.clone(), QoS::AtLeastOnce, d.retain, d.payload) {
                                    tracing::warn!(topic = d.topic, "message not handed to the broker: {e}");
                                }
                            }
                            None => {
                                let _ = client.try_disconnect();
                                return;
                            }
                        },
                    }
                }
            }
        }
    };
}

// MQTT 3.1.1 keeps the session with clean_session = false; MQTT 5 with clean_start = false and a
// session that does not expire when the connection drops.
fn persist_v4(o: &mut rumqttc::MqttOptions) {
    o.set_clean_session(false);
}

fn persist_v5(o: &mut rumqttc::v5::MqttOptions) {
    o.set_clean_start(false);
    o.set_session_expiry_interval(Some(u32::MAX));
}

fn will_v4(o: &mut rumqttc::MqttOptions, topic: String) {
    o.set_last_will(rumqttc::LastWill::new(
        topic,
        "offline",
        rumqttc::QoS::AtLeastOnce,
        true,
    ));
}

fn will_v5(o: &mut rumqttc::v5::MqttOptions, topic: String) {
    o.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
        topic,
        "offline",
        rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        true,
        None,
    ));
}

client_loop!(v4, [rumqttc], [rumqttc], super::persist_v4, super::will_v4);
client_loop!(
    v5,
    [rumqttc::v5],
    [rumqttc::v5::mqttbytes],
    super::persist_v5,
    super::will_v5
);
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses() {
        assert_eq!(
            parse_broker("localhost:1883").unwrap(),
            ("localhost".into(), 1883)
        );
        assert_eq!(parse_broker("[::1]:1883").unwrap(), ("::1".into(), 1883));
        assert!(parse_broker("localhost").is_err());
        assert!(parse_broker(":1883").is_err());
        assert!(parse_broker("h:99999").is_err());
    }
}
