//! What the sans-IO cores in the library (the election, the cadence controller) are given from
//! the config: `run` starts them with it, and `sim` runs the same settings.

use super::Config;
use std::time::Duration;
use swarm_node::cadence;
use swarm_node::election::Settings;

impl Config {
    /// The election settings a node runs with.
    pub fn election_settings(&self) -> Settings {
        let c = &self.consensus;
        Settings {
            class: self.node.class,
            heartbeat_interval: Duration::from_millis(u64::from(c.heartbeat_interval_ms)),
            timeout_min: Duration::from_millis(u64::from(c.election_timeout_min_ms)),
            timeout_max: Duration::from_millis(u64::from(c.election_timeout_max_ms)),
            membership_window: Duration::from_secs(u64::from(c.membership_window_s)),
            quorum: c.quorum,
            bootstrap_expect: c.bootstrap_expect,
            small_swarm: self.adaptive_gossip.small_swarm,
        }
    }

    /// The bounds the cadence controller keeps a node's heartbeat and energy intervals in.
    pub fn cadence_settings(&self) -> cadence::Settings {
        let g = &self.adaptive_gossip;
        cadence::Settings {
            heartbeat_ms: self.consensus.heartbeat_interval_ms,
            energy_ms: self.energy.sample_interval_ms,
            min_ms: g.min_interval_ms,
            max_ms: g.max_interval_ms,
            // Followers start an election after the minimum timeout: a third leaves room for two
            // lost heartbeats.
            leader_heartbeat_max_ms: (self.consensus.election_timeout_min_ms / 3)
                .max(g.min_interval_ms),
            quiet: g.quiet,
            // The leader steps down without a majority heard within the longest timeout.
            quiet_follower_heartbeat_max_ms: (self.consensus.election_timeout_max_ms / 3 * 2)
                .max(g.min_interval_ms),
            follower_heartbeat_max_ms: self.consensus.membership_window_s.saturating_mul(1000) / 3,
            low_battery_pct: self.energy.low_power_threshold_percent,
            critical_battery_pct: self.energy.critical_threshold_percent,
            small_swarm: g.small_swarm,
            ..cadence::Settings::default()
        }
    }
}
