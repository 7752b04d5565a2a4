//! What this node knows, shared between the main loop and the queryable callbacks.

use crate::energy::aggregate::{Member, Summer};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use swarm_bus::{
    CadenceMode, DeviceClass, Energy, Heartbeat, LeaderInfo, NodeId, NodeState, Role, SwarmEnergy,
};

/// A peer whose liveliness token is present. Entries come and go with tokens only, so ids
/// that merely publish (or spoof) heartbeats cannot grow the table.
#[derive(Debug, Default)]
pub struct Peer {
    pub last_heartbeat: Option<(Instant, Heartbeat)>,
    /// The peer's latest energy sample, kept by the leader (which sums the swarm's).
    pub energy: Option<Energy>,
    /// When the peer said Leave, the last heartbeat seq heard from it before, and the term
    /// its Leave gave.
    left: Option<(Instant, u64, u64)>,
}

/// What a heartbeat was to the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// From an id without a token (yet).
    Stranger,
    /// The first from this member since it (re)joined.
    First,
    Again,
    /// Sent before the peer's Leave but handled after it (they arrive on separate
    /// subscriptions): a leader would seem to lead again.
    BeforeItsLeave,
}

/// How long after a Leave a higher seq from the same peer is taken as sent before it. A
/// restarted process counts from 1 again; this bounds the rule should it count past.
const STALE_AFTER_LEAVE: Duration = Duration::from_secs(1);

#[derive(Debug)]
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
    pub peers: BTreeMap<NodeId, Peer>,
    pub dropped: u64,
    /// The leader's count of voters, stated in its answers and announcements.
    pub voters: Option<u32>,
    /// Whether this node answers `swarm/<s>/leader`: every member of a small swarm, only the
    /// leader of a large one (docs/protocol.md#scale).
    pub answers_for_swarm: bool,
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
            dropped: 0,
            voters: None,
            answers_for_swarm: true,
        }
    }

    /// The election moved on: a new role, term or leader.
    pub fn set_leadership(&mut self, role: Role, term: u64, leader: Option<NodeId>, unix_ms: u64) {
        if leader.is_none() {
            self.leader_since_ms = None;
        } else if leader != self.leader || term != self.term {
            self.leader_since_ms = Some(unix_ms);
        }
        self.role = role;
        self.term = term;
        self.leader = leader;
    }

    /// The pace in force: heartbeats advertise its interval, `state` its mode.
    pub fn set_cadence(&mut self, d: &swarm_node::cadence::Decision) {
        self.cadence_ms = d.heartbeat_ms;
        self.cadence_mode = d.mode;
        self.cadence_pinned = d.pinned;
    }

    /// The next heartbeat to send; advances the sequence number. A leader states its count of
    /// voters (`voters`) and leaves out its own id, which the key carries.
    pub fn next_heartbeat(&mut self, unix_ms: u64, voters: Option<u32>) -> Heartbeat {
        self.seq += 1;
        self.last_heartbeat_ms = unix_ms;
        Heartbeat {
            term: self.term,
            role: self.role,
            leader: self.leader.clone().filter(|_| self.role != Role::Leader),
            seq: self.seq,
            cadence_ms: self.cadence_ms,
            class: self.class,
            voters,
        }
    }

    /// Records a heartbeat of a member; returns true the first time that member is heard.
    /// Heartbeats of ids without a token are ignored (a newcomer's first one may beat its token
    /// here; the next one counts).
    pub fn heard(&mut self, from: &NodeId, hb: Heartbeat, now: Instant) -> Heard {
        let Some(peer) = self.peers.get_mut(from) else {
            return Heard::Stranger;
        };
        if let Some((at, seq, _)) = peer.left {
            if hb.seq > seq && now.saturating_duration_since(at) < STALE_AFTER_LEAVE {
                return Heard::BeforeItsLeave;
            }
            peer.left = None;
        }
        let first = peer.last_heartbeat.is_none();
        peer.last_heartbeat = Some((now, hb));
        if first { Heard::First } else { Heard::Again }
    }

    /// An energy sample from a member; kept if it is newer than the one held. Returns whether
    /// it was kept (samples from non-members and stale repeats are not).
    pub fn energy_from(&mut self, from: &NodeId, sample: Energy) -> bool {
        let Some(peer) = self.peers.get_mut(from) else {
            return false;
        };
        if peer
            .energy
            .as_ref()
            .is_some_and(|e| e.ts_ms >= sample.ts_ms)
        {
            return false;
        }
        peer.energy = Some(sample);
        true
    }

    /// A token appeared; returns true when the peer was not a member before.
    pub fn joined(&mut self, id: NodeId) -> bool {
        if id == self.id || self.peers.contains_key(&id) {
            return false;
        }
        self.peers.insert(id, Peer::default());
        true
    }

    /// A token went away: the peer is no longer a member.
    pub fn gone(&mut self, id: &NodeId) -> bool {
        self.peers.remove(id).is_some()
    }

    /// A Leave: the peer stops counting at once, but membership stays with its token, so a
    /// Leave handled after a quick restart's new token cannot erase the new member.
    pub fn left_cleanly(&mut self, id: &NodeId, term: u64, now: Instant) {
        if let Some(peer) = self.peers.get_mut(id) {
            let seq = peer.last_heartbeat.take().map_or(0, |(_, hb)| hb.seq);
            peer.left = Some((now, seq, term));
        }
    }

    /// Whether what a node said of its leadership at `term` (its announcement, or its answer
    /// to a survey) was said before its Leave: it arrives by another path, so it can be
    /// handled after, and would make the departed leader, and the count of voters it
    /// announced, current again. A restarted process claims to lead only in a later term.
    pub fn said_before_leave(&self, from: &NodeId, term: u64) -> bool {
        self.peers
            .get(from)
            .and_then(|p| p.left)
            .is_some_and(|(_, _, left_term)| term <= left_term)
    }

    /// Members whose heartbeats this node has received since they (re)joined.
    pub fn live_peers(&self) -> Vec<NodeId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.last_heartbeat.is_some())
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
            cadence_mode: self.cadence_mode,
            cadence_pinned: self.cadence_pinned,
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
                class: p.last_heartbeat.as_ref().map(|(_, hb)| hb.class),
                energy,
            })
        });
        Some(summer.sum(unix_ms, own.into_iter().chain(peers)))
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
        v.joined(id("a"));
        v.energy_from(
            &id("a"),
            Energy {
                watts: 2.0,
                ..swarm_bus::samples::energy()
            },
        );
        v.joined(id("silent"));
        assert_eq!(v.swarm_energy(1, 400.0), None, "a follower does not sum");
        v.set_leadership(Role::Leader, 2, Some(id("me")), 1);
        let total = v.swarm_energy(1, 400.0).expect("the leader sums");
        assert_eq!((total.nodes, total.watts, total.term), (2, 5.0, 2));
        // `a` sent no heartbeat yet: its class is not known, so only `me` is in a class.
        assert_eq!(total.by_class.iter().map(|s| s.nodes).sum::<u32>(), 1);
    }

    #[test]
    fn energy_is_kept_for_members_only_and_only_when_newer() {
        let mut v = NodeView::new(id("me"), DeviceClass::Full, 500, Instant::now());
        let sample = |ts_ms| Energy {
            ts_ms,
            ..swarm_bus::samples::energy()
        };
        assert!(!v.energy_from(&id("a"), sample(1)), "not a member");
        v.joined(id("a"));
        assert!(v.energy_from(&id("a"), sample(10)));
        assert!(
            !v.energy_from(&id("a"), sample(5)),
            "older than the one held"
        );
        assert!(v.energy_from(&id("a"), sample(11)));
        assert_eq!(v.peers[&id("a")].energy.as_ref().map(|e| e.ts_ms), Some(11));
    }

    #[test]
    fn a_peer_counts_once_it_has_a_token_and_was_heard() {
        let now = Instant::now();
        let mut v = NodeView::new(id("a"), DeviceClass::Full, 500, now);
        let hb = v.next_heartbeat(1, None);
        assert_eq!(hb.seq, 1);
        assert_eq!(
            v.heard(&id("b"), hb.clone(), now),
            Heard::Stranger,
            "no token yet"
        );
        assert!(
            v.peers.is_empty(),
            "heartbeats alone must not grow the table"
        );
        assert!(!v.joined(id("a")), "own token is not a peer");
        assert!(v.joined(id("b")));
        assert!(!v.joined(id("b")));
        assert!(v.live_peers().is_empty(), "not heard yet");
        assert_eq!(v.heard(&id("b"), hb.clone(), now), Heard::First);
        assert_eq!(v.heard(&id("b"), hb.clone(), now), Heard::Again);
        assert_eq!(v.live_peers(), vec![id("b")]);
        assert!(v.gone(&id("b")));
        assert!(v.live_peers().is_empty());
        assert_eq!(v.state(now).peers.len(), 0);
    }

    #[test]
    fn a_late_leave_does_not_erase_a_restarted_peer() {
        let now = Instant::now();
        let mut v = NodeView::new(id("a"), DeviceClass::Full, 500, now);
        let hb = v.next_heartbeat(1, None);
        v.joined(id("b"));
        v.heard(&id("b"), hb.clone(), now);
        v.left_cleanly(&id("b"), 1, now);
        assert!(v.live_peers().is_empty(), "a Leave stops counting at once");
        // The restarted process's token was handled before the old Leave arrived: its
        // heartbeats count from 1 again.
        assert_eq!(v.heard(&id("b"), hb, now), Heard::First);
        assert_eq!(
            v.live_peers(),
            vec![id("b")],
            "membership stays with the token"
        );
        assert!(!v.peers.is_empty());
    }

    #[test]
    fn a_heartbeat_sent_before_a_leave_but_handled_after_it_is_ignored() {
        let now = Instant::now();
        let mut v = NodeView::new(id("a"), DeviceClass::Full, 500, now);
        let mut b = NodeView::new(id("b"), DeviceClass::Full, 500, now);
        b.set_leadership(Role::Leader, 4, Some(id("b")), 1);
        v.joined(id("b"));
        v.heard(&id("b"), b.next_heartbeat(1, None), now);
        let overtaken = b.next_heartbeat(1, None);
        v.left_cleanly(&id("b"), 4, now);
        assert!(v.said_before_leave(&id("b"), 4));
        assert!(!v.said_before_leave(&id("b"), 5), "won a later term since");
        assert!(!v.said_before_leave(&id("c"), 4), "never left");
        assert_eq!(
            v.heard(&id("b"), overtaken.clone(), now),
            Heard::BeforeItsLeave
        );
        assert!(v.live_peers().is_empty(), "still gone");
        // Past the window, a higher seq counts again.
        let later = now + STALE_AFTER_LEAVE;
        assert_eq!(v.heard(&id("b"), overtaken, later), Heard::First);
    }

    #[test]
    fn leader_since_moves_only_with_a_new_leader_or_term() {
        let mut v = NodeView::new(id("a"), DeviceClass::Full, 500, Instant::now());
        v.set_leadership(Role::Follower, 3, Some(id("b")), 100);
        v.set_leadership(Role::Follower, 3, Some(id("b")), 200);
        assert_eq!(v.leader_info().since_ms, Some(100));
        v.set_leadership(Role::Leader, 4, Some(id("a")), 300);
        let info = v.leader_info();
        assert_eq!(
            (info.role, info.term, info.since_ms),
            (Role::Leader, 4, Some(300))
        );
        v.set_leadership(Role::Follower, 5, None, 400);
        assert_eq!(v.leader_info().since_ms, None);
    }

    #[test]
    fn minimal_nodes_only_observe() {
        let v = NodeView::new(id("esp"), DeviceClass::Minimal, 500, Instant::now());
        assert_eq!(v.leader_info().role, Role::Observer);
        assert_eq!(v.leader_info().leader, None);
    }
}
