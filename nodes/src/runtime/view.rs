//! What this node knows, as a read-only snapshot: the core hands it out
//! (`Output::Snapshot`), the loop adds its wall-clock facts and publishes it on a `watch`
//! channel; the queryables, `/metrics` and the task service read it. Nothing writes to it but
//! the loop, so nobody waits on a lock held by another.

use crate::energy::aggregate::{Member, Summer};
use std::collections::BTreeMap;
use std::time::Instant;
use swarm_bus::{
    CadenceMode, DeviceClass, Energy, LeaderInfo, NodeId, NodeState, Role, SwarmEnergy,
};

/// A member as the snapshot shows it.
pub use swarm_node::node::MemberView as PeerView;

#[derive(Debug, Clone)]
pub struct NodeView {
    pub id: NodeId,
    pub class: DeviceClass,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    /// Unix ms when this node learnt of the current leader (or took office itself).
    pub leader_since_ms: Option<u64>,
    pub seq: u64,
    pub cadence_ms: u32,
    pub cadence_mode: CadenceMode,
    pub cadence_pinned: bool,
    pub started: Instant,
    pub last_heartbeat_ms: u64,
    pub energy: Option<Energy>,
    pub peers: BTreeMap<NodeId, PeerView>,
    /// The leader's count of voters, stated in its answers and announcements.
    pub voters: Option<u32>,
    /// Whether this node answers `swarm/<s>/leader`: every member of a small swarm, only the
    /// leader of a large one (docs/protocol.md#scale).
    pub answers_for_swarm: bool,
    /// Set once the token is declared and the join is done. Before that this node answers no
    /// one on who leads: an answer from a node whose token a joiner cannot see yet would be
    /// refused there as a stranger's.
    pub joined: bool,
}

impl NodeView {
    pub fn new(id: NodeId, class: DeviceClass, cadence_ms: u32, now: Instant) -> Self {
        // Until the election says otherwise: nobody leads, and `minimal` only ever watches.
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
            leader_since_ms: None,
            seq: 0,
            cadence_ms,
            cadence_mode: CadenceMode::Normal,
            cadence_pinned: false,
            started: now,
            last_heartbeat_ms: 0,
            energy: None,
            peers: BTreeMap::new(),
            voters: None,
            answers_for_swarm: true,
            joined: false,
        }
    }

    /// The pace in force: heartbeats advertise its interval, `state` its mode.
    pub fn set_cadence(&mut self, d: &swarm_node::cadence::Decision) {
        self.cadence_ms = d.heartbeat_ms;
        self.cadence_mode = d.mode;
        self.cadence_pinned = d.pinned;
    }

    /// Members whose heartbeats this node has received since they (re)joined.
    pub fn live_peers(&self) -> Vec<NodeId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.heard)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// A node's latest energy sample as this node holds it (its own, or a peer's).
    pub fn energy_of(&self, node: &NodeId) -> Option<&Energy> {
        if *node == self.id {
            self.energy.as_ref()
        } else {
            self.peers.get(node).and_then(|p| p.energy.as_ref())
        }
    }

    /// `dropped`: messages this node dropped, from the bus counters.
    pub fn state(&self, now: Instant, dropped: u64) -> NodeState {
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
            dropped,
            cadence_mode: self.cadence_mode,
            cadence_pinned: self.cadence_pinned,
            agreed: None,
            decided: None,
            asleep_until_ms: None,
            clock_skew_ms: None,
        }
    }

    /// The swarm's energy: only a leader sums it, since only it gathers every member's samples.
    /// A member's class comes from its last heartbeat.
    pub fn swarm_energy(&self, unix_ms: u64, gco2_per_kwh: f32) -> Option<SwarmEnergy> {
        if self.role != Role::Leader {
            return None;
        }
        let summer = Summer {
            leader: self.id.clone(),
            term: self.term,
            gco2_per_kwh,
        };
        let own = self.energy.as_ref().map(|energy| Member {
            class: Some(self.class),
            energy,
        });
        let peers = self.peers.values().filter_map(|p| {
            p.energy.as_ref().map(|energy| Member {
                class: p.class,
                energy,
            })
        });
        Some(summer.sum(unix_ms, own.into_iter().chain(peers)))
    }

    /// Its answer on `swarm/<s>/leader`: none before it has joined, nor from a member of a
    /// large swarm that is not its leader.
    pub fn answer_on_who_leads(&self) -> Option<LeaderInfo> {
        (self.joined && self.answers_for_swarm).then(|| self.leader_info())
    }

    pub fn leader_info(&self) -> LeaderInfo {
        LeaderInfo {
            node: self.id.clone(),
            role: self.role,
            term: self.term,
            leader: self.leader.clone(),
            since_ms: self.leader_since_ms,
            voters: self.voters,
            heir: None,
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
    fn only_the_leader_sums_the_swarm_and_it_counts_itself_and_its_peers() {
        let mut v = NodeView::new(id("me"), DeviceClass::Full, 500, Instant::now());
        v.energy = Some(Energy {
            watts: 3.0,
            ..swarm_bus::samples::energy()
        });
        let a = PeerView {
            energy: Some(Energy {
                watts: 2.0,
                ..swarm_bus::samples::energy()
            }),
            ..PeerView::default()
        };
        v.peers.insert(id("a"), a);
        v.peers.insert(id("silent"), PeerView::default());
        assert_eq!(v.swarm_energy(1, 400.0), None, "a follower does not sum");
        (v.role, v.term) = (Role::Leader, 2);
        let total = v.swarm_energy(1, 400.0).expect("the leader sums");
        assert_eq!((total.nodes, total.watts, total.term), (2, 5.0, 2));
        // `a` sent no heartbeat yet: its class is not known, so only `me` is in a class.
        assert_eq!(total.by_class.iter().map(|s| s.nodes).sum::<u32>(), 1);
    }

    #[test]
    fn a_node_answers_who_leads_only_once_it_has_joined() {
        let mut v = NodeView::new(id("me"), DeviceClass::Full, 500, Instant::now());
        assert_eq!(v.answer_on_who_leads(), None, "not joined yet");
        v.joined = true;
        assert_eq!(v.answer_on_who_leads().map(|i| i.node), Some(id("me")));
        v.answers_for_swarm = false;
        assert_eq!(v.answer_on_who_leads(), None, "a large swarm's follower");
    }

    #[test]
    fn only_heard_members_are_listed_in_the_state() {
        let now = Instant::now();
        let mut v = NodeView::new(id("a"), DeviceClass::Full, 500, now);
        v.peers.insert(id("b"), PeerView::default());
        assert!(v.state(now, 0).peers.is_empty(), "not heard yet");
        v.peers.get_mut(&id("b")).unwrap().heard = true;
        assert_eq!(v.state(now, 3).peers, vec![id("b")]);
        assert_eq!(v.state(now, 3).dropped, 3);
    }

    #[test]
    fn minimal_nodes_only_observe() {
        let v = NodeView::new(id("esp"), DeviceClass::Minimal, 500, Instant::now());
        assert_eq!(v.leader_info().role, Role::Observer);
        assert_eq!(v.leader_info().leader, None);
    }
}
