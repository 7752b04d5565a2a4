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
    /// Microcontrollers on UARTs (`[[bridge.serial]]`), one device per port.
    pub serial: Vec<SerialPort>,
}

/// One UART peripheral: COBS frames of swarm-bus CBOR messages, each with a CRC-16.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialPort {
    /// `/dev/ttyUSB0`, `/dev/serial0`, …
    pub port: PathBuf,
    /// The device's id in the mesh; whatever it sends is published under it.
    pub node_id: NodeId,
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Offline after this long without a good frame.
    #[serde(default = "default_silence_ms")]
    pub silence_ms: u64,
}

fn default_baud() -> u32 {
    115_200
}

fn default_silence_ms() -> u64 {
    10_000
}

impl SerialPort {
    pub fn new(port: impl Into<PathBuf>, node_id: NodeId) -> Self {
        Self {
            port: port.into(),
            node_id,
            baud: default_baud(),
            silence_ms: default_silence_ms(),
        }
    }
}

/// `PORT=ID` or `PORT=ID@BAUD`, as `swarm-bridge run --serial` takes it.
impl std::str::FromStr for SerialPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (port, rest) = s
            .rsplit_once('=')
            .filter(|(p, _)| !p.is_empty())
            .ok_or_else(|| format!("`{s}`: expected PORT=NODE_ID[@BAUD]"))?;
        let (id, baud) = match rest.split_once('@') {
            Some((id, baud)) => (
                id,
                baud.parse()
                    .map_err(|_| format!("`{baud}` is not a baud rate"))?,
            ),
            None => (rest, default_baud()),
        };
        let node_id = NodeId::new(id).map_err(|e| e.to_string())?;
        Ok(Self {
            baud,
            ..Self::new(port, node_id)
        })
    }
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
            serial: Vec::new(),
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
    #[error("bridge.serial: {0} is listed twice")]
    SerialTwice(String),
    #[error("bridge.serial {port}: baud must be between 300 and 4000000, got {baud}")]
    Baud { port: String, baud: u32 },
    #[error("bridge.serial {0}: silence_ms must be between 100 and 3600000")]
    Silence(String),
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
        let mut ports = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        for s in &self.serial {
            let port = s.port.display().to_string();
            if !ports.insert(&s.port) {
                return Err(ConfigError::SerialTwice(port));
            }
            if !ids.insert(&s.node_id) {
                return Err(ConfigError::SerialTwice(format!("node id {}", s.node_id)));
            }
            if !(300..=4_000_000).contains(&s.baud) {
                return Err(ConfigError::Baud { port, baud: s.baud });
            }
            if !(100..=3_600_000).contains(&s.silence_ms) {
                return Err(ConfigError::Silence(port));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_flags_parse_or_say_why() {
        let p: SerialPort = "/dev/ttyUSB0=uart-1@9600".parse().unwrap();
        assert_eq!(p.port, PathBuf::from("/dev/ttyUSB0"));
        assert_eq!(p.node_id.as_str(), "uart-1");
        assert_eq!(p.baud, 9600);
        assert_eq!("/dev/x=y".parse::<SerialPort>().unwrap().baud, 115_200);
        assert!(
            "/dev/x"
                .parse::<SerialPort>()
                .unwrap_err()
                .contains("PORT=NODE_ID")
        );
        assert!(
            "/dev/x=y@fast"
                .parse::<SerialPort>()
                .unwrap_err()
                .contains("baud")
        );
        assert!("/dev/x=Bad Id".parse::<SerialPort>().is_err());
    }

    #[test]
    fn serial_ports_are_checked() {
        let id = NodeId::new("uart-1").unwrap();
        let mut config = BridgeConfig {
            serial: vec![SerialPort::new("/dev/a", id.clone())],
            ..BridgeConfig::default()
        };
        assert!(config.validate().is_ok());
        config.serial.push(SerialPort::new("/dev/b", id));
        assert!(matches!(
            config.validate(),
            Err(ConfigError::SerialTwice(_))
        ));
        config.serial.pop();
        config.serial[0].baud = 12;
        assert!(matches!(config.validate(), Err(ConfigError::Baud { .. })));
        config.serial[0].baud = 9600;
        config.serial[0].silence_ms = 0;
        assert!(matches!(config.validate(), Err(ConfigError::Silence(_))));
    }

    #[test]
    fn serial_tables_read_from_toml() {
        let config: BridgeConfig = toml::from_str(
            r#"
            [[serial]]
            port = "/dev/ttyAMA0"
            node_id = "meter-1"
            silence_ms = 3000
            "#,
        )
        .unwrap();
        assert_eq!(config.serial[0].baud, 115_200);
        assert_eq!(config.serial[0].silence_ms, 3000);
        assert!(toml::from_str::<BridgeConfig>("[[serial]]\nport = \"/dev/x\"\n").is_err());
    }
}
