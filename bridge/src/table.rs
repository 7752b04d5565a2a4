//! What the bridge knows about each device: presence, last samples (the last-value cache that
//! answers zenoh queries) and counters. Pure: the caller passes the time.

use crate::ingest::{Format, Telemetry};
use std::collections::BTreeMap;
use swarm_bus::{DeviceClass, Energy, Heartbeat, NodeId, NodeState, Role};

#[derive(Debug, Clone, Default)]
pub struct DeviceRecord {
    pub online: bool,
    pub heartbeat: Option<Heartbeat>,
    pub heartbeat_ms: u64,
    pub energy: Option<Energy>,
    pub format: Option<Format>,
    pub first_seen_ms: u64,
    pub accepted: u64,
    pub dropped: u64,
}

/// A presence change the bridge must turn into a liveliness token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceChange {
    Online(NodeId),
    Offline(NodeId),
}

#[derive(Debug, Default)]
pub struct DeviceTable {
    devices: BTreeMap<NodeId, DeviceRecord>,
    version: String,
}

impl DeviceTable {
    pub fn new(version: impl Into<String>) -> Self {
        Self {
            devices: BTreeMap::new(),
            version: version.into(),
        }
    }

    fn entry(&mut self, id: &NodeId, now_ms: u64) -> &mut DeviceRecord {
        self.devices
            .entry(id.clone())
            .or_insert_with(|| DeviceRecord {
                first_seen_ms: now_ms,
                ..DeviceRecord::default()
            })
    }

    /// Returns the change to announce, if any.
    pub fn set_online(&mut self, id: &NodeId, online: bool, now_ms: u64) -> Option<PresenceChange> {
        let record = self.entry(id, now_ms);
        if record.online == online {
            return None;
        }
        record.online = online;
        Some(if online {
            PresenceChange::Online(id.clone())
        } else {
            PresenceChange::Offline(id.clone())
        })
    }

    pub fn record(&mut self, id: &NodeId, format: Format, msg: &Telemetry, now_ms: u64) {
        let record = self.entry(id, now_ms);
        record.accepted += 1;
        record.format = Some(format);
        match msg {
            Telemetry::Heartbeat(hb) => {
                record.heartbeat = Some(hb.clone());
                record.heartbeat_ms = now_ms;
            }
            Telemetry::Energy(e) => record.energy = Some(e.clone()),
            Telemetry::Leave(_) => {}
        }
    }

    pub fn count_drop(&mut self, id: &NodeId, now_ms: u64) -> u64 {
        let record = self.entry(id, now_ms);
        record.dropped += 1;
        record.dropped
    }

    pub fn get(&self, id: &NodeId) -> Option<&DeviceRecord> {
        self.devices.get(id)
    }

    pub fn online(&self) -> impl Iterator<Item = &NodeId> {
        self.devices
            .iter()
            .filter(|(_, r)| r.online)
            .map(|(id, _)| id)
    }

    /// Every device marked offline; used when the broker connection is lost, since the
    /// devices' Last-Wills can no longer reach us.
    pub fn all_offline(&mut self) -> Vec<PresenceChange> {
        self.devices
            .iter_mut()
            .filter(|(_, r)| r.online)
            .map(|(id, r)| {
                r.online = false;
                PresenceChange::Offline(id.clone())
            })
            .collect()
    }

    /// The `state` a device would serve if it spoke zenoh: what `swarm-node status` lists.
    pub fn state(&self, id: &NodeId, now_ms: u64) -> Option<NodeState> {
        let r = self.devices.get(id).filter(|r| r.online)?;
        let hb = r.heartbeat.as_ref();
        Some(NodeState {
            class: hb.map(|h| h.class).unwrap_or(DeviceClass::Minimal),
            role: Role::Observer,
            term: hb.map(|h| h.term).unwrap_or(0),
            leader: hb.and_then(|h| h.leader.clone()),
            seq: hb.map(|h| h.seq).unwrap_or(0),
            cadence_ms: hb.map(|h| h.cadence_ms).unwrap_or(0),
            uptime_s: now_ms.saturating_sub(r.first_seen_ms) / 1000,
            last_heartbeat_ms: r.heartbeat_ms,
            version: self.version.clone(),
            peers: Vec::new(),
            dropped: r.dropped,
            // Boards do not say; their heartbeats advertise the interval they keep.
            cadence_mode: swarm_bus::CadenceMode::Normal,
            cadence_pinned: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::samples;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn presence_changes_once_per_transition() {
        let mut t = DeviceTable::new("bridge");
        assert_eq!(
            t.set_online(&id("a"), true, 0),
            Some(PresenceChange::Online(id("a")))
        );
        assert_eq!(t.set_online(&id("a"), true, 1), None);
        assert_eq!(
            t.set_online(&id("a"), false, 2),
            Some(PresenceChange::Offline(id("a")))
        );
        // A device first seen offline (a retained Last-Will) announces nothing.
        assert_eq!(t.set_online(&id("b"), false, 3), None);
    }

    #[test]
    fn state_reflects_the_last_heartbeat_and_only_while_online() {
        let mut t = DeviceTable::new("bridge");
        let mut hb = samples::heartbeat(3);
        hb.class = DeviceClass::Minimal;
        t.record(
            &id("a"),
            Format::Cbor,
            &Telemetry::Heartbeat(hb.clone()),
            5_000,
        );
        assert!(t.state(&id("a"), 6_000).is_none(), "not online yet");
        t.set_online(&id("a"), true, 5_000);
        t.count_drop(&id("a"), 5_500);
        let s = t.state(&id("a"), 9_000).unwrap();
        assert_eq!(s.role, Role::Observer);
        assert_eq!(s.class, DeviceClass::Minimal);
        assert_eq!(s.seq, hb.seq);
        assert_eq!(s.last_heartbeat_ms, 5_000);
        assert_eq!(s.uptime_s, 4);
        assert_eq!(s.dropped, 1);
        assert_eq!(t.all_offline(), vec![PresenceChange::Offline(id("a"))]);
        assert!(t.state(&id("a"), 9_000).is_none());
    }

    #[test]
    fn energy_is_cached() {
        let mut t = DeviceTable::new("bridge");
        t.record(
            &id("a"),
            Format::Json,
            &Telemetry::Energy(samples::energy()),
            1,
        );
        assert_eq!(t.get(&id("a")).unwrap().energy, Some(samples::energy()));
        assert_eq!(t.get(&id("a")).unwrap().accepted, 1);
    }
}
