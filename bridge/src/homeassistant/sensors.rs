//! What each member shows in Home Assistant, and the discovery config that announces it.
//!
//! Field names follow Home Assistant's MQTT sensor schema (unabbreviated): `state_topic`,
//! `unique_id`, `device_class`, `state_class`, `unit_of_measurement`, `value_template`,
//! `availability` with `availability_mode`, and `device` with `identifiers`.

use serde_json::{Value, json};
use swarm_bus::{NodeId, SwarmKeys};

/// One sensor of a member. Its name is the object id in the discovery topic and the JSON field
/// of the member's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sensor {
    Power,
    Energy,
    Battery,
    Temperature,
    Co2,
    Role,
    Cadence,
}

impl Sensor {
    pub const ALL: [Sensor; 7] = [
        Sensor::Power,
        Sensor::Energy,
        Sensor::Battery,
        Sensor::Temperature,
        Sensor::Co2,
        Sensor::Role,
        Sensor::Cadence,
    ];

    pub fn field(self) -> &'static str {
        match self {
            Sensor::Power => "power_w",
            Sensor::Energy => "energy_kwh",
            Sensor::Battery => "battery_pct",
            Sensor::Temperature => "temperature_c",
            Sensor::Co2 => "co2_g",
            Sensor::Role => "role",
            Sensor::Cadence => "cadence",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Sensor::Power => "Power",
            Sensor::Energy => "Energy",
            Sensor::Battery => "Battery",
            Sensor::Temperature => "Temperature",
            Sensor::Co2 => "CO2 emitted",
            Sensor::Role => "Role",
            Sensor::Cadence => "Cadence mode",
        }
    }

    /// `(device_class, state_class, unit)`. Energy is `total_increasing` in kWh, which the
    /// Energy dashboard accepts; a member whose state directory was wiped starts again from 0,
    /// which that state class reads as a meter reset, not as negative use. CO2 is the mass
    /// emitted for the energy drawn (not a concentration), so it is a `weight` in grams.
    fn classes(
        self,
    ) -> (
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    ) {
        match self {
            Sensor::Power => (Some("power"), Some("measurement"), Some("W")),
            Sensor::Energy => (Some("energy"), Some("total_increasing"), Some("kWh")),
            Sensor::Battery => (Some("battery"), Some("measurement"), Some("%")),
            Sensor::Temperature => (Some("temperature"), Some("measurement"), Some("°C")),
            Sensor::Co2 => (Some("weight"), Some("total_increasing"), Some("g")),
            Sensor::Role => (Some("enum"), None, None),
            Sensor::Cadence => (Some("enum"), None, None),
        }
    }

    /// The values an `enum` sensor may take; Home Assistant shows them as choices.
    fn options(self) -> Option<Value> {
        match self {
            Sensor::Role => Some(json!(["follower", "candidate", "leader", "observer"])),
            Sensor::Cadence => Some(json!(["aggressive", "normal", "conservative", "emergency"])),
            _ => None,
        }
    }
}

/// Where Home Assistant reads a sensor's config: `<prefix>/sensor/<swarm>_<id>/<field>/config`.
/// Swarm names and node ids are `[a-z0-9_-]`, which the discovery topic allows.
pub fn config_topic(prefix: &str, keys: &SwarmKeys, id: &NodeId, sensor: Sensor) -> String {
    format!(
        "{prefix}/sensor/{}/{}/config",
        device_key(keys, id),
        sensor.field()
    )
}

fn device_key(keys: &SwarmKeys, id: &NodeId) -> String {
    format!("{}_{id}", keys.swarm())
}

/// What is known of a member beyond its id, for the device card.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceFacts {
    pub class: Option<&'static str>,
    pub version: Option<String>,
}

/// The discovery config of one sensor of one member.
pub fn config(keys: &SwarmKeys, id: &NodeId, facts: &DeviceFacts, sensor: Sensor) -> Value {
    let device_key = device_key(keys, id);
    let (device_class, state_class, unit) = sensor.classes();
    let mut device = json!({
        "identifiers": [format!("swarm_mesh_{device_key}")],
        "name": id.as_str(),
        "manufacturer": "swarm mesh",
        "model": facts.class.map(|c| format!("{c} node")).unwrap_or_else(|| "node".into()),
    });
    if let Some(version) = &facts.version {
        device["sw_version"] = json!(version);
    }
    let mut config = json!({
        "name": sensor.name(),
        "unique_id": format!("swarm_mesh_{device_key}_{}", sensor.field()),
        "state_topic": keys.ha_state(id),
        "value_template": format!("{{{{ value_json.{} }}}}", sensor.field()),
        "availability": [
            {"topic": keys.ha_gateway_availability()},
            {"topic": keys.ha_availability(id)},
        ],
        "availability_mode": "all",
        "device": device,
        "origin": {
            "name": "swarm mesh",
            "sw_version": env!("CARGO_PKG_VERSION"),
        },
    });
    if let Some(c) = device_class {
        config["device_class"] = json!(c);
    }
    if let Some(c) = state_class {
        config["state_class"] = json!(c);
    }
    if let Some(u) = unit {
        config["unit_of_measurement"] = json!(u);
    }
    if let Some(options) = sensor.options() {
        config["options"] = options;
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::SwarmName;

    fn keys() -> SwarmKeys {
        SwarmKeys::new(SwarmName::new("home").unwrap())
    }

    #[test]
    fn every_sensor_has_a_distinct_field_and_unique_id() {
        let id = NodeId::new("pi-1").unwrap();
        let mut ids: Vec<String> = Sensor::ALL
            .iter()
            .map(|s| config(&keys(), &id, &DeviceFacts::default(), *s)["unique_id"].to_string())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), Sensor::ALL.len());
    }

    #[test]
    fn energy_is_what_the_energy_dashboard_takes() {
        let id = NodeId::new("pi-1").unwrap();
        let c = config(&keys(), &id, &DeviceFacts::default(), Sensor::Energy);
        assert_eq!(c["device_class"], "energy");
        assert_eq!(c["state_class"], "total_increasing");
        assert_eq!(c["unit_of_measurement"], "kWh");
        assert_eq!(c["value_template"], "{{ value_json.energy_kwh }}");
        assert_eq!(c["state_topic"], "swarm/home/ha/pi-1/state");
    }

    #[test]
    fn the_topic_names_swarm_member_and_sensor() {
        let id = NodeId::new("esp-0").unwrap();
        assert_eq!(
            config_topic("homeassistant", &keys(), &id, Sensor::Battery),
            "homeassistant/sensor/home_esp-0/battery_pct/config"
        );
    }
}
