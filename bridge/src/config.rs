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
    /// Embedded mode: also accept MQTT over TLS here (8883 is usual); needs `tls_cert` and
    /// `tls_key`. Logins, the ACL and limits apply as on `listen`.
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain, the server's certificate first.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
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
    /// Embedded mode without `users_file` on an address other machines can reach: anyone who
    /// reaches the port may publish as any device. Refused at start unless this is set.
    pub allow_anonymous: bool,
    /// A device offline this long leaves the device table (and the caches that answer for
    /// it), so ids that come and go cannot grow it.
    pub forget_offline_after_s: u64,
    /// Devices the bridge keeps a record of; past it the one offline longest makes room, and a
    /// new device is refused (counted, `devices_full`) while all are online.
    pub max_devices: usize,
    /// Largest MQTT payload accepted, bytes.
    pub max_payload_bytes: usize,
    /// Largest number of device connections at once.
    pub max_connections: usize,
    /// Embedded mode: MiB of messages the broker holds for MQTT subscribers (allocated as
    /// used); a subscriber further behind a QoS 0 flood loses the oldest. The mesh does not
    /// read from it.
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
    /// Power monitors on I2C (`[[bridge.i2c]]`), one per measured device or the gateway.
    pub i2c: Vec<I2cPowerMonitor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerChip {
    Ina219,
    Ina226,
}

impl PowerChip {
    /// How samples it measured name their source.
    pub fn source(self) -> swarm_bus::PowerSource {
        match self {
            PowerChip::Ina219 => swarm_bus::PowerSource::Ina219,
            PowerChip::Ina226 => swarm_bus::PowerSource::Ina226,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemperatureChip {
    Tmp102,
}

/// A power monitor (and optionally a thermometer) on an I2C bus, measuring one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct I2cPowerMonitor {
    /// `/dev/i2c-1` (with the `rpi` feature, rppal's bus of the same number is used).
    pub bus: PathBuf,
    /// Whose power this is. Unset: the gateway itself, fed into `swarm-node`'s own energy
    /// samples (source `ina219` or `ina226`) when the bridge runs inside it.
    pub node_id: Option<NodeId>,
    pub chip: PowerChip,
    #[serde(default = "default_power_address")]
    pub address: u8,
    /// The shunt resistor, ohms (0.1 on most INA219 boards, 0.002 on many INA226 ones).
    #[serde(default = "default_shunt_ohms")]
    pub shunt_ohms: f32,
    pub temperature: Option<TemperatureChip>,
    #[serde(default = "default_temperature_address")]
    pub temperature_address: u8,
    #[serde(default = "default_poll_ms")]
    pub interval_ms: u64,
}

fn default_power_address() -> u8 {
    0x40
}

fn default_shunt_ohms() -> f32 {
    0.1
}

fn default_temperature_address() -> u8 {
    0x48
}

fn default_poll_ms() -> u64 {
    5_000
}

impl I2cPowerMonitor {
    pub fn new(bus: impl Into<PathBuf>, chip: PowerChip, node_id: Option<NodeId>) -> Self {
        Self {
            bus: bus.into(),
            node_id,
            chip,
            address: default_power_address(),
            shunt_ohms: default_shunt_ohms(),
            temperature: None,
            temperature_address: default_temperature_address(),
            interval_ms: default_poll_ms(),
        }
    }

    /// What the logs call it.
    pub fn name(&self) -> String {
        match &self.node_id {
            Some(id) => format!("{} {:#04x} for {id}", self.bus.display(), self.address),
            None => format!(
                "{} {:#04x} for the gateway",
                self.bus.display(),
                self.address
            ),
        }
    }
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
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            broker: None,
            broker_version: MqttVersion::V5,
            client_id: None,
            broker_username: None,
            broker_password: None,
            users_file: None,
            allow_anonymous: false,
            forget_offline_after_s: 3600,
            max_devices: 10_000,
            max_payload_bytes: 4096,
            max_connections: 2000,
            buffer_mib: 16,
            scope: Vec::new(),
            allow: Vec::new(),
            deny: Vec::new(),
            json_devices: Vec::new(),
            serial: Vec::new(),
            i2c: Vec::new(),
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
    #[error("bridge.i2c {0}")]
    I2c(String),
    #[error("bridge.tls_listen needs bridge.tls_cert and bridge.tls_key (PEM files)")]
    TlsFiles,
    #[error("bridge.tls_listen is for the embedded broker; an external broker does its own TLS")]
    TlsExternal,
    #[error(
        "the MQTT broker would listen on {0}, which other machines can reach, without logins: \
         anyone there could publish as any device. Add logins (`swarm-bridge passwd FILE \
         DEVICE_ID` for each device, then bridge.users_file = \"FILE\" or --users-file FILE), \
         listen on 127.0.0.1 only, or accept anonymous devices explicitly with \
         bridge.allow_anonymous = true (--mqtt-allow-anonymous)"
    )]
    Anonymous(SocketAddr),
    #[error("bridge.max_devices must be at least 1")]
    NoDevices,
    #[error("bridge.forget_offline_after_s must be between 1 and 2592000 (30 days)")]
    ForgetAfter,
}

impl BridgeConfig {
    /// What starting the bridge with this config would expose: an embedded broker that other
    /// machines can reach needs logins, or anonymous access asked for. Checked at start, not
    /// in `validate`, so a config whose bridge is off is not refused for it.
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        if self.mode == MqttMode::Embedded && self.users_file.is_none() && !self.allow_anonymous {
            let reachable = std::iter::once(self.listen)
                .chain(self.tls_listen)
                .find(|a| !a.ip().is_loopback());
            if let Some(addr) = reachable {
                return Err(ConfigError::Anonymous(addr));
            }
        }
        Ok(())
    }

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
        if self.max_devices == 0 {
            return Err(ConfigError::NoDevices);
        }
        if !(1..=2_592_000).contains(&self.forget_offline_after_s) {
            return Err(ConfigError::ForgetAfter);
        }

        if self.tls_listen.is_some() {
            if self.mode == MqttMode::External {
                return Err(ConfigError::TlsExternal);
            }
            if self.tls_cert.is_none() || self.tls_key.is_none() {
                return Err(ConfigError::TlsFiles);
            }
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
        let mut gateway_monitors = 0;
        for m in &self.i2c {
            let bad = |why: &str| Err(ConfigError::I2c(format!("{}: {why}", m.name())));
            match &m.node_id {
                None => gateway_monitors += 1,
                Some(id) if !ids.insert(id) => return bad("this node id is measured twice"),
                Some(_) => {}
            }
            if gateway_monitors > 1 {
                return bad("only one monitor may measure the gateway (no node_id)");
            }
            if !(0x08..=0x77).contains(&m.address) {
                return bad("address must be a 7-bit device address, 0x08..=0x77");
            }
            if m.temperature.is_some() && !(0x48..=0x4B).contains(&m.temperature_address) {
                return bad("a TMP102 answers only on 0x48..=0x4B");
            }
            if !(m.shunt_ohms.is_finite() && m.shunt_ohms > 0.0) {
                return bad("shunt_ohms must be a positive number");
            }
            if !(100..=3_600_000).contains(&m.interval_ms) {
                return bad("interval_ms must be between 100 and 3600000");
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
    fn a_reachable_broker_without_logins_needs_anonymous_asked_for() {
        let open = BridgeConfig {
            listen: "0.0.0.0:1883".parse().unwrap(),
            ..BridgeConfig::default()
        };
        assert!(open.validate().is_ok(), "only starting it is refused");
        let err = open.check_exposure().unwrap_err().to_string();
        assert!(
            err.contains("0.0.0.0:1883") && err.contains("allow_anonymous"),
            "{err}"
        );
        assert!(err.contains("swarm-bridge passwd"), "{err}");
        let asked = BridgeConfig {
            allow_anonymous: true,
            ..open.clone()
        };
        assert!(asked.check_exposure().is_ok());
        let logins = BridgeConfig {
            users_file: Some("/etc/swarm-mesh/mqtt-users".into()),
            ..open.clone()
        };
        assert!(logins.check_exposure().is_ok());
        let external = BridgeConfig {
            mode: MqttMode::External,
            broker: Some("broker:1883".into()),
            ..open.clone()
        };
        assert!(
            external.check_exposure().is_ok(),
            "no broker of ours listens"
        );
        assert!(
            BridgeConfig::default().check_exposure().is_ok(),
            "loopback is fine"
        );
        let tls = BridgeConfig {
            tls_listen: Some("[::]:8883".parse().unwrap()),
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..BridgeConfig::default()
        };
        assert!(matches!(
            tls.check_exposure(),
            Err(ConfigError::Anonymous(_))
        ));
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
    fn i2c_monitors_are_checked() {
        let mut config = BridgeConfig {
            i2c: vec![I2cPowerMonitor::new("/dev/i2c-1", PowerChip::Ina219, None)],
            ..BridgeConfig::default()
        };
        assert!(config.validate().is_ok());
        config.i2c.push(config.i2c[0].clone());
        let e = config.validate().unwrap_err().to_string();
        assert!(e.contains("only one monitor"), "{e}");
        config.i2c[1].node_id = Some(NodeId::new("pump").unwrap());
        config.i2c[1].shunt_ohms = 0.0;
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("shunt_ohms")
        );
        config.i2c[1].shunt_ohms = 0.002;
        config.i2c[1].temperature = Some(TemperatureChip::Tmp102);
        config.i2c[1].temperature_address = 0x50;
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("TMP102")
        );
        config.i2c[1].temperature_address = 0x49;
        assert!(config.validate().is_ok());
        let parsed: BridgeConfig = toml::from_str(
            "[[i2c]]\nbus = \"/dev/i2c-1\"\nchip = \"ina226\"\naddress = 0x45\ntemperature = \"tmp102\"\n",
        )
        .unwrap();
        assert_eq!(parsed.i2c[0].address, 0x45);
        assert_eq!(parsed.i2c[0].chip, PowerChip::Ina226);
        assert!(
            toml::from_str::<BridgeConfig>("[[i2c]]\nbus = \"/dev/i2c-1\"\nchip = \"ina3221\"\n")
                .is_err()
        );
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
