//! What this node knows, shared between the main loop and the queryable callbacks.

use std::collections::BTreeMap;
use std::time::Instant;
use swarm_bus::{DeviceClass, Energy, Heartbeat, LeaderInfo, NodeId, NodeState, Role};

#[derive(Debug, Default)]
pub struct Peer {
    /// Its liveliness token is present.
    pub alive: bool,
    pub last_heartbeat: Option<(Instant, Heartbeat)>,
}

#[derive(Debug)]
pub struct NodeView {
    pub id: NodeId,
    pub class: DeviceClass,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub seq: u64,
    pub cadence_ms: u32,
    pub started: Instant,
    pub last_heartbeat_ms: u64,
    pub energy: Option<Energy>,
    pub peers: BTreeMap<NodeId, Peer>,
    pub dropped: u64,
}

impl NodeView {
    pub fn new(id: NodeId, class: DeviceClass, cadence_ms: u32, now: Instant) -> Self {
        // Election lands in its own issue; until then nobody leads and `minimal` only watches.
        let role = if class == DeviceClass::Minimal {
            Role::Observer
        } else {
            Role::Follower
        };
        Self {
            id,
            class,
            role,
            term: 0,
            leader: None,
            seq: 0,
            cadence_ms,
            started: now,
            last_heartbeat_ms: 0,
            energy: None,
            peers: BTreeMap::new(),
            dropped: 0,
        }
    }

    /// The next heartbeat to send; advances the sequence number.
    pub fn next_heartbeat(&mut self, unix_ms: u64) -> Heartbeat {
        self.seq += 1;
        self.last_heartbeat_ms = unix_ms;
        Heartbeat {
            term: self.term,
            role: self.role,
            leader: self.leader.clone(),
            seq: self.seq,
            cadence_ms: self.cadence_ms,
            class: self.class,
        }
    }

    /// Returns true the first time a peer is heard from.
    pub fn heard(&mut self, from: NodeId, hb: Heartbeat, now: Instant) -> bool {
        if from == self.id {
            return false;
        }
        let peer = self.peers.entry(from).or_default();
        let first = peer.last_heartbeat.is_none();
        peer.last_heartbeat = Some((now, hb));
        first
    }

    /// Returns true when the peer was not known alive before.
    pub fn joined(&mut self, id: NodeId) -> bool {
        if id == self.id {
            return false;
        }
        let peer = self.peers.entry(id).or_default();
        !std::mem::replace(&mut peer.alive, true)
    }

    /// A token withdrawn or a Leave: forget the peer entirely, so a comeback starts fresh.
    pub fn left(&mut self, id: &NodeId) -> bool {
        self.peers.remove(id).is_some()
    }

    /// Peers that are alive and whose heartbeats this node has received.
    pub fn live_peers(&self) -> Vec<NodeId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.alive && p.last_heartbeat.is_some())
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub fn state(&self, now: Instant) -> NodeState {
        NodeState {
            class: self.class,
            role: self.role,
            term: self.term,
            leader: self.leader.clone(),
            seq: self.seq,
            cadence_ms: self.cadence_ms,
            uptime_s: now.saturating_duration_since(self.started).as_secs(),
            last_heartbeat_ms: self.last_heartbeat_ms,
            version: env!("CARGO_PKG_VERSION").to_string(),
            peers: self.live_peers(),
            dropped: self.dropped,
        }
    }

    pub fn leader_info(&self) -> LeaderInfo {
        LeaderInfo {
            node: self.id.clone(),
            role: self.role,
            term: self.term,
            leader: self.leader.clone(),
            since_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn a_peer_counts_once_alive_and_heard_and_goes_on_leave() {
        let now = Instant::now();
        let mut v = NodeView::new(id("a"), DeviceClass::Full, 500, now);
        let hb = v.next_heartbeat(1);
        assert_eq!(hb.seq, 1);
        assert!(
            !v.heard(id("a"), hb.clone(), now),
            "own heartbeat is not a peer"
        );
        assert!(v.heard(id("b"), hb.clone(), now));
        assert!(!v.heard(id("b"), hb.clone(), now));
        assert!(v.live_peers().is_empty(), "no token yet");
        assert!(v.joined(id("b")));
        assert!(!v.joined(id("b")));
        assert!(!v.joined(id("a")));
        assert_eq!(v.live_peers(), vec![id("b")]);
        assert!(v.left(&id("b")));
        assert!(v.live_peers().is_empty());
        assert_eq!(v.state(now).peers.len(), 0);
    }

    #[test]
    fn minimal_nodes_only_observe() {
        let v = NodeView::new(id("esp"), DeviceClass::Minimal, 500, Instant::now());
        assert_eq!(v.leader_info().role, Role::Observer);
        assert_eq!(v.leader_info().leader, None);
    }
}
