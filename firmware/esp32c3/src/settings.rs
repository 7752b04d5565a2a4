//! Settings baked in at build time. `build.rs` validates the environment and
//! re-exports it as `SWARM_FW_*`, so everything here is known to be well formed.

pub const WIFI_SSID: &str = env!("SWARM_FW_WIFI_SSID");
/// Empty means an open network.
pub const WIFI_PASS: &str = env!("SWARM_FW_WIFI_PASS");
/// Regulatory domain; esp-radio would otherwise default to "CN".
pub const WIFI_COUNTRY: [u8; 2] = country(env!("SWARM_FW_WIFI_COUNTRY"));

/// An IPv4 literal or a host name resolved through the DHCP-provided DNS.
pub const MQTT_HOST: &str = env!("SWARM_FW_MQTT_HOST");
pub const MQTT_PORT: u16 = parse_port(env!("SWARM_FW_MQTT_PORT"));
pub const MQTT_USER: Option<&str> = option_env!("SWARM_FW_MQTT_USER");
pub const MQTT_PASS: Option<&str> = option_env!("SWARM_FW_MQTT_PASS");

pub const SWARM: &str = env!("SWARM_FW_SWARM");
pub const NODE_ID: &str = env!("SWARM_FW_NODE_ID");

/// The core's settings: names from the build, everything else its defaults (cadence, battery
/// divider 100 kΩ / 100 kΩ, datasheet currents). build.rs checked the names with the same
/// rules, so `None` here cannot happen on a built image.
pub fn core_settings() -> Option<swarm_fw_core::Settings> {
    let swarm = swarm_bus::SwarmName::new(SWARM).ok()?;
    let node = swarm_bus::NodeId::new(NODE_ID).ok()?;
    let mut s = swarm_fw_core::Settings::new(swarm, node);
    s.user = MQTT_USER.map(Into::into);
    s.password = MQTT_PASS.map(Into::into);
    Some(s)
}

// build.rs has already checked both values; these only convert them in const
// context, so a mismatch would be a compile error, never a runtime one.

const fn parse_port(s: &str) -> u16 {
    let bytes = s.as_bytes();
    let mut value: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "MQTT_PORT must be a number");
        value = value * 10 + (bytes[i] - b'0') as u32;
        assert!(value <= u16::MAX as u32, "MQTT_PORT is out of range");
        i += 1;
    }
    value as u16
}

const fn country(s: &str) -> [u8; 2] {
    let bytes = s.as_bytes();
    assert!(bytes.len() == 2, "WIFI_COUNTRY must have two letters");
    [bytes[0], bytes[1]]
}
