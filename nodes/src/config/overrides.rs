//! Flags and `SWARM_*` variables (both read by clap, in `cli`) laid over the file's values.

use super::Config;
use std::net::SocketAddr;
use std::path::PathBuf;
use swarm_bus::zenoh::SessionMode;
use swarm_bus::{DeviceClass, NodeId, SwarmName};

/// What the command line asks to change: each value set here replaces the file's, and one
/// left unset (`None`, empty, `false`) leaves it alone. Plain data: `cli` fills it in from
/// `BusArgs` or `RunArgs`; the commands that only find the swarm leave the `run` fields unset.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub swarm: Option<SwarmName>,
    pub connect: Vec<String>,
    pub mode: Option<SessionMode>,
    pub no_multicast: bool,
    pub tls_dir: Option<PathBuf>,
    pub tls_name: Option<NodeId>,
    pub id: Option<NodeId>,
    pub class: Option<DeviceClass>,
    pub listen: Vec<String>,
    pub state_dir: Option<PathBuf>,
    pub heartbeat_ms: Option<u32>,
    /// Also run the MQTT bridge (`mqtt_listen` implies it).
    pub bridge: bool,
    pub mqtt_listen: Option<SocketAddr>,
    /// Added to the file's `bridge.allow_anonymous`, never taken from it.
    pub mqtt_allow_anonymous: bool,
    pub metrics_listen: Option<SocketAddr>,
}

impl Overrides {
    pub fn apply(&self, config: &mut Config) {
        if let Some(swarm) = &self.swarm {
            config.node.swarm = swarm.clone();
        }
        if !self.connect.is_empty() {
            config.zenoh.connect = self.connect.clone();
        }
        if let Some(mode) = self.mode {
            config.zenoh.mode = mode;
        }
        if self.no_multicast {
            config.zenoh.multicast_scouting = false;
        }
        if let Some(dir) = &self.tls_dir {
            config.zenoh.tls_dir = Some(dir.clone());
        }
        if let Some(name) = &self.tls_name {
            config.zenoh.tls_name = Some(name.to_string());
        }
        if let Some(id) = &self.id {
            config.node.id = Some(id.clone());
        }
        if let Some(class) = self.class {
            config.node.class = class;
        }
        if !self.listen.is_empty() {
            config.zenoh.listen = self.listen.clone();
        }
        if let Some(dir) = &self.state_dir {
            config.node.state_dir = Some(dir.clone());
        }
        if let Some(ms) = self.heartbeat_ms {
            config.consensus.heartbeat_interval_ms = ms;
        }
        if self.bridge || self.mqtt_listen.is_some() {
            config.bridge.enabled = true;
        }
        if let Some(addr) = self.mqtt_listen {
            config.bridge.listen = addr;
        }
        config.bridge.allow_anonymous |= self.mqtt_allow_anonymous;
        if let Some(addr) = self.metrics_listen {
            config.metrics.listen = Some(addr);
        }
        default_tls_name(config);
    }
}

/// A TLS name left unset is the node's own id. Called after every override, since `run --id`
/// changes the id.
fn default_tls_name(config: &mut Config) {
    if config.zenoh.tls_dir.is_some() && config.zenoh.tls_name.is_none() {
        let id = config
            .node
            .id
            .clone()
            .unwrap_or_else(crate::identity::local_id);
        config.zenoh.tls_name = Some(id.to_string());
    }
}
