//! Home Assistant MQTT discovery: every member of the swarm, nodes and boards alike, appears
//! in Home Assistant as a device with its sensors (docs/homeassistant.md).

pub mod announcer;
pub mod link;
pub mod sampling;
pub mod sensors;
pub mod settings;

pub use link::spawn;
pub use settings::{HomeAssistantConfig, HomeAssistantError};
