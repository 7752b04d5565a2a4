//! Who is a member, as liveliness says, and what each member last said: its heartbeat, its
//! energy sample, and whether it left cleanly. Entries come and go with tokens only, so ids
//! that merely publish (or spoof) heartbeats cannot grow the table.

use crate::clock::At;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::time::Duration;
use swarm_bus::{Energy, Heartbeat, NodeId};

#[derive(Debug, Default, Clone)]
pub struct Peer {
    pub last_heartbeat: Option<(At, Heartbeat)>,
    /// The peer's latest energy sample, kept by the leader (which sums the swarm's).
    pub energy: Option<Energy>,
    /// When the peer said Leave, the last heartbeat seq heard from it before, and the term
    /// its Leave gave.
    left: Option<(At, u64, u64)>,
}

/// What a heartbeat was to the membership.
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

#[derive(Debug, Default, Clone)]
pub struct Membership {
    peers: BTreeMap<NodeId, Peer>,
}

impl Membership {
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub fn contains(&self, id: &NodeId) -> bool {
        self.peers.contains_key(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &Peer)> {
        self.peers.iter()
    }

    /// Records a heartbeat of a member. Heartbeats of ids without a token are ignored (a
    /// newcomer's first one may beat its token here; the next one counts).
    pub fn heard(&mut self, from: &NodeId, hb: Heartbeat, now: At) -> Heard {
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
        if self.peers.contains_key(&id) {
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
    pub fn left_cleanly(&mut self, id: &NodeId, term: u64, now: At) {
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
    pub fn live(&self) -> Vec<NodeId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.last_heartbeat.is_some())
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn hb(seq: u64) -> Heartbeat {
        swarm_bus::samples::leader_heartbeat(4, seq)
    }

    #[test]
    fn a_peer_counts_once_it_has_a_token_and_was_heard() {
        let now = At::from_millis(1_000_000);
        let mut m = Membership::default();
        assert_eq!(
            m.heard(&id("b"), hb(1), now),
            Heard::Stranger,
            "no token yet"
        );
        assert!(m.is_empty(), "heartbeats alone must not grow the table");
        assert!(m.joined(id("b")));
        assert!(!m.joined(id("b")));
        assert!(m.live().is_empty(), "not heard yet");
        assert_eq!(m.heard(&id("b"), hb(1), now), Heard::First);
        assert_eq!(m.heard(&id("b"), hb(2), now), Heard::Again);
        assert_eq!(m.live(), vec![id("b")]);
        assert!(m.gone(&id("b")));
        assert!(m.live().is_empty());
    }

    #[test]
    fn a_late_leave_does_not_erase_a_restarted_peer() {
        let now = At::from_millis(1_000_000);
        let mut m = Membership::default();
        m.joined(id("b"));
        m.heard(&id("b"), hb(1), now);
        m.left_cleanly(&id("b"), 1, now);
        assert!(m.live().is_empty(), "a Leave stops counting at once");
        // The restarted process's token was handled before the old Leave arrived: its
        // heartbeats count from 1 again.
        assert_eq!(m.heard(&id("b"), hb(1), now), Heard::First);
        assert_eq!(m.live(), vec![id("b")], "membership stays with the token");
    }

    #[test]
    fn a_heartbeat_sent_before_a_leave_but_handled_after_it_is_ignored() {
        let now = At::from_millis(1_000_000);
        let mut m = Membership::default();
        m.joined(id("b"));
        m.heard(&id("b"), hb(1), now);
        m.left_cleanly(&id("b"), 4, now);
        assert!(m.said_before_leave(&id("b"), 4));
        assert!(!m.said_before_leave(&id("b"), 5), "won a later term since");
        assert!(!m.said_before_leave(&id("c"), 4), "never left");
        assert_eq!(m.heard(&id("b"), hb(2), now), Heard::BeforeItsLeave);
        assert!(m.live().is_empty(), "still gone");
        // Past the window, a higher seq counts again.
        let later = now + STALE_AFTER_LEAVE;
        assert_eq!(m.heard(&id("b"), hb(2), later), Heard::First);
    }
}
