//! The config sections. Every key is documented in `config/swarm.toml`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use swarm_bus::zenoh::ZenohSettings;
use swarm_bus::{DeviceClass, NodeId, SwarmName};
use swarm_node::election::QuorumMode;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub node: NodeSection,
    pub zenoh: ZenohSettings,
    pub consensus: Consensus,
    pub energy: crate::energy::settings::EnergySettings,
    pub adaptive_gossip: AdaptiveGossip,
    pub bridge: swarm_bridge::BridgeConfig,
    /// Home Assistant discovery, wherever the bridge runs.
    pub homeassistant: swarm_bridge::homeassistant::HomeAssistantConfig,
    /// Energy history kept for `_time` queries, by default where the bridge runs.
    pub history: crate::history::HistorySettings,
    pub metrics: MetricsSettings,
    pub tasks: swarm_node::worker::settings::TasksSettings,
    pub board: crate::board::settings::BoardSettings,
    pub limits: Limits,
}

/// Bounds on what other nodes can make this one hold (docs/protocol.md#admission).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Members (liveliness tokens) this node keeps track of; a token beyond it is refused and
    /// counted (`members_full`), so no table keyed by remote ids grows past it.
    pub max_members: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_members: swarm_node::admission::DEFAULT_MAX_MEMBERS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Serve Prometheus metrics on `http://<listen>/metrics`; unset: no listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// Unset: the hostname, lowercased, with other characters turned into '-'.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<NodeId>,
    pub swarm: SwarmName,
    pub class: DeviceClass,
    /// Unset: `$XDG_STATE_HOME/swarm-mesh/<id>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
}

impl Default for NodeSection {
    fn default() -> Self {
        Self {
            id: None,
            swarm: SwarmName::new("default").expect("valid literal"),
            class: DeviceClass::Full,
            state_dir: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Consensus {
    pub heartbeat_interval_ms: u32,
    pub election_timeout_min_ms: u32,
    pub election_timeout_max_ms: u32,
    pub membership_window_s: u32,
    pub quorum: QuorumMode,
    /// 0 = off; otherwise nobody stands or votes for a candidate that counts fewer voters.
    pub bootstrap_expect: u32,
}

impl Default for Consensus {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 500,
            election_timeout_min_ms: 1500,
            election_timeout_max_ms: 3000,
            membership_window_s: 600,
            quorum: QuorumMode::Majority,
            bootstrap_expect: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveGossip {
    pub enabled: bool,
    pub min_interval_ms: u32,
    pub max_interval_ms: u32,
    /// A peer is suspect after this many of its own advertised intervals without a heartbeat.
    pub suspect_after: u32,
    /// Up to this many members every node hears every heartbeat; beyond it a follower hears
    /// only its leader (docs/protocol.md#scale).
    pub small_swarm: u32,
    /// A healthy swarm slows down (conservative mode, followers heard by the leader alone)
    /// and speeds up again at the first loss or election (docs/protocol.md#quiet).
    pub quiet: bool,
}

impl Default for AdaptiveGossip {
    fn default() -> Self {
        Self {
            enabled: true,
            min_interval_ms: 250,
            max_interval_ms: 10_000,
            suspect_after: 3,
            small_swarm: swarm_node::scale::SMALL_SWARM,
            quiet: true,
        }
    }
}
