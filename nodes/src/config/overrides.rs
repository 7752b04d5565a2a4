//! Flags and `SWARM_*` variables (both read by clap) laid over the file's values.

use super::Config;
use crate::cli::{BusArgs, RunArgs};

pub fn apply_bus(config: &mut Config, bus: &BusArgs) {
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
}

pub fn apply_run(config: &mut Config, run: &RunArgs) {
    apply_bus(config, &run.bus);
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
    if let Some(addr) = run.metrics_listen {
        config.metrics.listen = Some(addr);
    }
}
