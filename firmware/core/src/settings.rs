//! What a board is told at build time. The board binary fills this from environment variables
//! baked into the image; the host simulator from its flags.

use crate::battery::BatteryModel;
use crate::power::PowerProfile;
use alloc::string::String;
use swarm_bus::{NodeId, SwarmName};

#[derive(Debug, Clone)]
pub struct Settings {
    pub swarm: SwarmName,
    pub node: NodeId,
    pub user: Option<String>,
    pub password: Option<String>,
    /// MQTT keep-alive; the broker declares the board gone after 1.5× this without a packet.
    pub keep_alive_s: u16,
    pub cadence: CadenceSettings,
    /// Sleep between reports when the heartbeat interval is at least this long; `None`: stay
    /// connected. Below a minute the Wi-Fi re-join costs more than staying up.
    pub deep_sleep_from_ms: Option<u32>,
    pub battery: BatteryModel,
    pub power: PowerProfile,
    /// Reconnect backoff bounds.
    pub backoff_min_ms: u32,
    pub backoff_max_ms: u32,
    /// The running image's version, reported in `FirmwareReport`.
    pub version: String,
    /// The chip id an update's image must name (`update::CHIP_ESP32C3`).
    pub chip: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CadenceSettings {
    /// Heartbeat interval in `normal` mode.
    pub base_ms: u32,
    pub min_ms: u32,
    pub max_ms: u32,
    /// An energy report goes with every n-th heartbeat.
    pub energy_every: u32,
    pub low_battery_pct: u8,
    pub critical_battery_pct: u8,
}

impl Default for CadenceSettings {
    fn default() -> Self {
        Self {
            base_ms: 10_000,
            min_ms: 1_000,
            max_ms: 3_600_000,
            energy_every: 1,
            low_battery_pct: 30,
            critical_battery_pct: 10,
        }
    }
}

impl Settings {
    pub fn new(swarm: SwarmName, node: NodeId) -> Self {
        Self {
            swarm,
            node,
            user: None,
            password: None,
            keep_alive_s: 30,
            cadence: CadenceSettings::default(),
            deep_sleep_from_ms: None,
            battery: BatteryModel::default(),
            power: PowerProfile::default(),
            backoff_min_ms: 1_000,
            backoff_max_ms: 60_000,
            version: String::from(env!("CARGO_PKG_VERSION")),
            chip: crate::update::CHIP_ESP32C3,
        }
    }
}
