//! `[bridge]` settings, shared by `swarm-bridge` and `swarm-node run --bridge`.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use swarm_bus::NodeId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MqttMode {
    /// A broker inside the bridge process.
    #[default]
    Embedded,
    /// Connect to mosquitto, EMQX or any MQTT broker.
    External,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MqttVersion {
    V4,
    #[default]
    V5,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeConfig {
    /// `swarm-node run` starts the bridge in-process (also `--bridge`); `swarm-bridge` ignores it.
    pub enabled: bool,
    pub mode: MqttMode,
    /// Embedded mode: where devices connect (MQTT 3.1.1 and 5 on the same port).
    pub listen: SocketAddr,
    /// External mode: `host:port` of the broker.
    pub broker: Option<String>,
    /// External mode: protocol spoken to the broker.
    pub broker_version: MqttVersion,
    /// External mode: the bridge's MQTT client id; fixed, so the broker keeps its session.
    pub client_id: Option<String>,
    /// External mode: credentials for the broker.
    pub broker_username: Option<String>,
    pub broker_password: Option<String>,
    /// Embedded mode: `username:argon2-hash` lines (`swarm-bridge passwd`). Unset: no login,
    /// and no per-device ACL, since nothing proves who a client is.
    pub users_file: Option<PathBuf>,
    /// Largest MQTT payload accepted, bytes.
    pub max_payload_bytes: usize,
    /// Largest number of device connections at once.
    pub max_connections: usize,
    /// Embedded mode: MiB of messages the broker may hold ahead of the bridge (allocated as
    /// used); a QoS 0 flood beyond it loses the oldest.
    pub buffer_mib: usize,
    /// Key expressions (zenoh syntax) the bridge carries; default `swarm/<s>/node/**`.
    pub scope: Vec<String>,
    /// If not empty, only keys matching one of these are carried.
    pub allow: Vec<String>,
    /// Keys matching one of these are never carried.
    pub deny: Vec<String>,
    /// Devices that send JSON instead of CBOR.
    pub json_devices: Vec<NodeId>,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            mode: MqttMode::Embedded,
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            broker: None,
            broker_version: MqttVersion::V5,
            client_id: None,
            broker_username: None,
            broker_password: None,
            users_file: None,
            max_payload_bytes: 4096,
            max_connections: 2000,
            buffer_mib: 512,
            scope: Vec::new(),
            allow: Vec::new(),
            deny: Vec::new(),
            json_devices: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("bridge.mode = \"external\" needs bridge.broker = \"host:port\" (or --mqtt-broker)")]
    NoBroker,
    #[error("bridge.max_payload_bytes must be between 64 and 268435455, got {0}")]
    PayloadLimit(usize),
    #[error("bridge.max_connections must be at least 1")]
    NoConnections,
}

impl BridgeConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.mode == MqttMode::External && self.broker.is_none() {
            return Err(ConfigError::NoBroker);
        }
        if !(64..=268_435_455).contains(&self.max_payload_bytes) {
            return Err(ConfigError::PayloadLimit(self.max_payload_bytes));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::NoConnections);
        }
        Ok(())
    }
}
