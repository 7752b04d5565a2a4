//! Flags and `SWARM_*` variables (both read by clap) laid over the file's values.

use super::Config;
use crate::cli::{BusArgs, RunArgs};

pub fn apply_bus(config: &mut Config, bus: &BusArgs) {
    apply_bus_flags(config, bus);
    default_tls_name(config);
}

fn apply_bus_flags(config: &mut Config, bus: &BusArgs) {
    if let Some(swarm) = &bus.at.swarm {
        config.node.swarm = swarm.clone();
    }
    if !bus.at.connect.is_empty() {
        config.zenoh.connect = bus.at.connect.clone();
    }
    if let Some(mode) = bus.mode {
        config.zenoh.mode = mode.into();
    }
    if bus.at.no_multicast {
        config.zenoh.multicast_scouting = false;
    }
    if let Some(dir) = &bus.at.tls_dir {
        config.zenoh.tls_dir = Some(dir.clone());
    }
    if let Some(name) = &bus.at.tls_name {
        config.zenoh.tls_name = Some(name.to_string());
    }
}

/// A TLS name left unset is the node's own id. Called after every override, since `run --id`
/// changes the id.
pub fn default_tls_name(config: &mut Config) {
    if config.zenoh.tls_dir.is_some() && config.zenoh.tls_name.is_none() {
        let id = config
            .node
            .id
            .clone()
            .unwrap_or_else(crate::identity::local_id);
        config.zenoh.tls_name = Some(id.to_string());
    }
}

pub fn apply_run(config: &mut Config, run: &RunArgs) {
    apply_bus_flags(config, &run.bus);
    if let Some(id) = &run.id {
        config.node.id = Some(id.clone());
    }
    if let Some(class) = run.class {
        config.node.class = class;
    }
    if !run.listen.is_empty() {
        config.zenoh.listen = run.listen.clone();
    }
    if let Some(dir) = &run.state_dir {
        config.node.state_dir = Some(dir.clone());
    }
    if let Some(ms) = run.heartbeat_ms {
        config.consensus.heartbeat_interval_ms = ms;
    }
    if run.bridge || run.mqtt_listen.is_some() {
        config.bridge.enabled = true;
    }
    if let Some(addr) = run.mqtt_listen {
        config.bridge.listen = addr;
    }
    config.bridge.allow_anonymous |= run.mqtt_allow_anonymous;
    if let Some(addr) = run.metrics_listen {
        config.metrics.listen = Some(addr);
    }
    default_tls_name(config);
}
