//! Bridge counters, readable while the bridge runs.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Stats {
    pub forwarded: AtomicU64,
    /// Device publications (QoS 0) that went to the mesh only, since no MQTT subscription
    /// could read them (`mesh_readers`): rumqttd never saw them.
    pub mesh_only: AtomicU64,
    pub dropped_bad_topic: AtomicU64,
    pub dropped_out_of_scope: AtomicU64,
    pub dropped_malformed: AtomicU64,
    /// Serial frames with a bad CRC, bad COBS, too short or too long.
    pub dropped_bad_frame: AtomicU64,
    /// Device messages that claimed a part in the election (docs/bridge.md).
    pub dropped_device_claim: AtomicU64,
    /// Device messages for a new device while the device table was full of online ones.
    pub dropped_devices_full: AtomicU64,
    /// Device messages under an id whose token is a node's (or another bridge's device).
    pub dropped_id_taken: AtomicU64,
    /// Replayed readings stamped before 2024 or more than a minute ahead of the bridge's clock.
    pub dropped_bad_replay: AtomicU64,
    /// Commands dropped because a sleeping board already had `MAX_HELD` waiting.
    pub dropped_held_full: AtomicU64,
    /// Home Assistant: values for an id with no liveliness token.
    pub dropped_ha_not_member: AtomicU64,
    /// Home Assistant: tokens past `homeassistant.max_members`.
    pub dropped_ha_full: AtomicU64,
    /// Home Assistant: readings no device could give (NaN, negative energy…), left out.
    pub dropped_ha_bad_value: AtomicU64,
    pub dropped_other: AtomicU64,
    pub refused_logins: AtomicU64,
    pub refused_acl: AtomicU64,
    pub refused_oversize: AtomicU64,
    /// Connections closed because the client read nothing for `device_writer::WRITE_TIMEOUT`.
    pub refused_stalled: AtomicU64,
    /// TLS handshakes that failed (plain MQTT on the TLS port, an untrusted certificate…).
    pub refused_tls: AtomicU64,
    pub commands_down: AtomicU64,
    /// Commands held for a sleeping board's wake.
    pub commands_held: AtomicU64,
    /// Board readings sent late and put into zenoh at their own time.
    pub replayed: AtomicU64,
    /// Home Assistant: messages handed to the broker (configs, availability, states).
    pub ha_published: AtomicU64,
    /// Home Assistant: `online` births heard on its status topic.
    pub ha_births: AtomicU64,
    /// Home Assistant: members' readings passed over within a second of the last one taken on
    /// their key (`homeassistant::sampling`); not refusals.
    pub ha_thinned: AtomicU64,
}

impl Stats {
    pub fn count_refusal(&self, kind: &str) -> u64 {
        let counter = match kind {
            "bad_topic" => &self.dropped_bad_topic,
            "out_of_scope" => &self.dropped_out_of_scope,
            "malformed" => &self.dropped_malformed,
            "bad_frame" => &self.dropped_bad_frame,
            "device_claim" => &self.dropped_device_claim,
            "devices_full" => &self.dropped_devices_full,
            "id_taken" => &self.dropped_id_taken,
            "bad_replay" => &self.dropped_bad_replay,
            "held_full" => &self.dropped_held_full,
            "ha_not_member" => &self.dropped_ha_not_member,
            "ha_full" => &self.dropped_ha_full,
            "ha_bad_value" => &self.dropped_ha_bad_value,
            _ => &self.dropped_other,
        };
        counter.fetch_add(1, Relaxed) + 1
    }

    pub fn dropped(&self) -> u64 {
        [
            &self.dropped_bad_topic,
            &self.dropped_out_of_scope,
            &self.dropped_malformed,
            &self.dropped_bad_frame,
            &self.dropped_device_claim,
            &self.dropped_devices_full,
            &self.dropped_id_taken,
            &self.dropped_bad_replay,
            &self.dropped_held_full,
            &self.dropped_ha_not_member,
            &self.dropped_ha_full,
            &self.dropped_ha_bad_value,
            &self.dropped_other,
        ]
        .iter()
        .map(|c| c.load(Relaxed))
        .sum()
    }
}

impl Stats {
    /// Every refusal counter by reason, for `/metrics`.
    pub fn refusals(&self) -> Vec<(&'static str, u64)> {
        [
            ("bad_topic", &self.dropped_bad_topic),
            ("out_of_scope", &self.dropped_out_of_scope),
            ("malformed", &self.dropped_malformed),
            ("bad_frame", &self.dropped_bad_frame),
            ("device_claim", &self.dropped_device_claim),
            ("devices_full", &self.dropped_devices_full),
            ("id_taken", &self.dropped_id_taken),
            ("bad_replay", &self.dropped_bad_replay),
            ("held_full", &self.dropped_held_full),
            ("ha_not_member", &self.dropped_ha_not_member),
            ("ha_full", &self.dropped_ha_full),
            ("ha_bad_value", &self.dropped_ha_bad_value),
            ("other", &self.dropped_other),
            ("login", &self.refused_logins),
            ("acl", &self.refused_acl),
            ("oversize", &self.refused_oversize),
            ("stalled", &self.refused_stalled),
            ("tls", &self.refused_tls),
        ]
        .into_iter()
        .map(|(reason, c)| (reason, c.load(Relaxed)))
        .collect()
    }
}

/// Logs the first few of a kind, then every thousandth, so a flood cannot flood the log.
pub fn worth_logging(n: u64) -> bool {
    n <= 10 || n.is_multiple_of(1000)
}
