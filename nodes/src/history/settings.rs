//! `[history]`: the recent past a gateway keeps and answers `_time` queries from.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySettings {
    /// Keep history on this node. Unset: where the bridge runs (the gateway), so one machine
    /// of the swarm keeps it and a `_time` query gets each sample once.
    pub enabled: Option<bool>,
    /// Energy samples kept per member; the oldest go first. 8640 is a day at a 10 s cadence.
    pub samples_per_member: u64,
    /// Members whose samples are kept; samples for more are refused (the storage's status
    /// counts them) so ids that come and go cannot grow it.
    pub max_members: u64,
    /// Nothing older than this behind a member's newest sample is kept.
    pub max_age_s: u64,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            enabled: None,
            samples_per_member: 8640,
            max_members: 64,
            max_age_s: 86_400,
        }
    }
}

impl HistorySettings {
    pub fn runs(&self, bridge_enabled: bool) -> bool {
        self.enabled.unwrap_or(bridge_enabled)
    }
}
