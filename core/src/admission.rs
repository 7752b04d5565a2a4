//! Admission: the one place that decides whether a message may reach the node's cores
//! (election, cadence, view, tasks). Sans-IO: the adapter tells it which liveliness tokens
//! exist and asks it about each message before anything else sees it.
//!
//! The rules (docs/protocol.md#admission):
//! - a sender is a member while it holds a liveliness token (a device's token is its
//!   bridge's); what a non-member sends is refused, so nothing it says creates state;
//! - the member table is bounded: a token beyond `max_members` is refused, not stored;
//! - devices (class `minimal`) never speak for the election: a device heartbeat that claims to
//!   lead or to stand, or counts voters, is refused, and so is any vote from a device (the
//!   election also ignores the term and leader a device reports);
//! - a term above [`MAX_TERM`] or more than [`MAX_TERM_JUMP`] above the highest term this node
//!   knows is refused, so no message can leave the swarm at a term that cannot grow;
//! - a count of voters above `max_members` is refused: no swarm within the limit has it.

use alloc::collections::{BTreeMap, VecDeque};
use swarm_bus::Refused;
use swarm_bus::{
    DeviceClass, Heartbeat, LeaderInfo, MAX_TERM, MAX_TERM_JUMP, NodeId, Role, Vote, VoteRequest,
};

/// The default bound of the member table (`limits.max_members`): room for a swarm of 10,000.
pub const DEFAULT_MAX_MEMBERS: u32 = 10_000;

/// Members whose token went lately, whose `Leave` is still taken: a clean stop sends `Leave`
/// before it withdraws its token, but the two travel apart and the token's end can be handled
/// first.
const RECENTLY_GONE: usize = 64;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Member {
    /// Heard as class `minimal`: it may report, never take part in the election.
    device: bool,
}

#[derive(Debug)]
pub struct Admission {
    me: NodeId,
    max_members: usize,
    members: BTreeMap<NodeId, Member>,
    recently_gone: VecDeque<NodeId>,
    highest_term: u64,
}

impl Admission {
    /// `own_term` is the term this node starts at (its stored vote's).
    pub fn new(me: NodeId, own_term: u64, max_members: u32) -> Self {
        Self {
            me,
            max_members: usize::try_from(max_members).unwrap_or(usize::MAX).max(1),
            members: BTreeMap::new(),
            recently_gone: VecDeque::new(),
            highest_term: own_term.min(MAX_TERM),
        }
    }

    pub fn is_member(&self, id: &NodeId) -> bool {
        *id == self.me || self.members.contains_key(id)
    }

    /// Other members with a token now.
    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// The highest term admitted so far, this node's own included.
    pub fn highest_term(&self) -> u64 {
        self.highest_term
    }

    /// A liveliness token appeared: `Ok(true)` for a new member, `Ok(false)` for one already
    /// known (or this node itself); refused while the table is full.
    pub fn token_appeared(&mut self, id: &NodeId) -> Result<bool, Refused> {
        if self.is_member(id) {
            return Ok(false);
        }
        if self.members.len() >= self.max_members {
            return Err(Refused::MembersFull);
        }
        self.members.insert(id.clone(), Member::default());
        Ok(true)
    }

    /// A liveliness token went away; returns whether it was a member.
    pub fn token_gone(&mut self, id: &NodeId) -> bool {
        let was = self.members.remove(id).is_some();
        if was {
            if self.recently_gone.len() >= RECENTLY_GONE {
                self.recently_gone.pop_front();
            }
            self.recently_gone.push_back(id.clone());
        }
        was
    }

    /// This node's election moved to `term` (it stood, or followed an admitted message).
    pub fn own_term(&mut self, term: u64) {
        self.highest_term = self.highest_term.max(term.min(MAX_TERM));
    }

    fn member(&self, from: &NodeId) -> Result<Member, Refused> {
        if *from == self.me {
            return Ok(Member::default());
        }
        self.members.get(from).copied().ok_or(Refused::NonMember)
    }

    fn voter(&self, from: &NodeId) -> Result<(), Refused> {
        match self.member(from)? {
            Member { device: true } => Err(Refused::DeviceClaim),
            _ => Ok(()),
        }
    }

    /// Whether `term` could be a real one here; an admitted term raises the bound.
    fn plausible(&self, term: u64) -> Result<(), Refused> {
        let bound = self
            .highest_term
            .saturating_add(MAX_TERM_JUMP)
            .min(MAX_TERM);
        if term > bound {
            return Err(Refused::ImplausibleTerm);
        }
        Ok(())
    }

    fn count(&self, voters: u32) -> Result<(), Refused> {
        if usize::try_from(voters).map_or(true, |n| n > self.max_members.saturating_add(1)) {
            return Err(Refused::ImplausibleCount);
        }
        Ok(())
    }

    fn raise(&mut self, term: u64) {
        self.highest_term = self.highest_term.max(term);
    }

    pub fn heartbeat(&mut self, from: &NodeId, hb: &Heartbeat) -> Result<(), Refused> {
        self.member(from)?;
        if hb.class == DeviceClass::Minimal {
            // Whom it follows and at what term is a report (a minimal swarm-node shows it in
            // `status`); the election ignores both. Leading or counting voters is a claim.
            let claims = matches!(hb.role, Role::Leader | Role::Candidate) || hb.voters.is_some();
            if claims {
                return Err(Refused::DeviceClaim);
            }
            if let Some(m) = self.members.get_mut(from) {
                m.device = true;
            }
            return Ok(());
        }
        self.plausible(hb.term)?;
        if let Some(n) = hb.voters {
            self.count(n)?;
        }
        if let Some(m) = self.members.get_mut(from) {
            m.device = false;
        }
        self.raise(hb.term);
        Ok(())
    }

    pub fn vote(&mut self, from: &NodeId, vote: &Vote) -> Result<(), Refused> {
        self.voter(from)?;
        let term = match vote {
            Vote::Request(VoteRequest {
                term,
                class,
                voters,
                ..
            }) => {
                if *class == DeviceClass::Minimal {
                    return Err(Refused::DeviceClaim);
                }
                self.count(*voters)?;
                *term
            }
            Vote::Reply(reply) => reply.term,
        };
        self.plausible(term)?;
        self.raise(term);
        Ok(())
    }

    /// A clean `Leave` at `term`, from a member or one whose token went lately (once).
    pub fn leave(&mut self, from: &NodeId, term: u64) -> Result<(), Refused> {
        if self.member(from).is_err() {
            let at = self.recently_gone.iter().position(|g| g == from);
            let at = at.ok_or(Refused::NonMember)?;
            self.plausible(term)?;
            self.recently_gone.remove(at);
            return Ok(());
        }
        self.plausible(term)
    }

    /// What a node says of the leadership (an announcement, an answer to who leads); the
    /// sender is the node the message names.
    pub fn leader_info(&mut self, info: &LeaderInfo) -> Result<(), Refused> {
        let speaks_for_election = info.role != Role::Observer || info.leader.is_some();
        match self.member(&info.node)? {
            Member { device: true } if speaks_for_election => return Err(Refused::DeviceClaim),
            _ => {}
        }
        self.plausible(info.term)?;
        if let Some(n) = info.voters {
            self.count(n)?;
        }
        self.raise(info.term);
        Ok(())
    }

    /// Anything else a node reports about itself (energy, task results).
    pub fn report(&self, from: &NodeId) -> Result<(), Refused> {
        self.member(from).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::VoteReply;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn gate() -> Admission {
        Admission::new(id("me"), 3, 4)
    }

    fn hb(term: u64, role: Role, class: DeviceClass) -> Heartbeat {
        Heartbeat {
            term,
            role,
            leader: None,
            seq: 1,
            cadence_ms: 500,
            class,
            voters: None,
            at_ms: None,
        }
    }

    fn device_hb() -> Heartbeat {
        hb(0, Role::Observer, DeviceClass::Minimal)
    }

    #[test]
    fn nothing_from_a_non_member_is_admitted_and_a_gone_token_ends_membership() {
        let mut g = gate();
        let follower = hb(3, Role::Follower, DeviceClass::Full);
        assert_eq!(g.heartbeat(&id("x"), &follower), Err(Refused::NonMember));
        assert_eq!(g.report(&id("x")), Err(Refused::NonMember));
        let leave = g.leave(&id("x"), 3);
        assert_eq!(leave, Err(Refused::NonMember));
        assert_eq!(g.members(), 0, "a refusal stores nothing");
        assert_eq!(g.token_appeared(&id("x")), Ok(true));
        assert_eq!(g.token_appeared(&id("x")), Ok(false));
        assert_eq!(g.heartbeat(&id("x"), &follower), Ok(()));
        assert!(g.token_gone(&id("x")));
        assert_eq!(g.heartbeat(&id("x"), &follower), Err(Refused::NonMember));
        // This node's own messages come back on its subscriptions.
        assert_eq!(g.heartbeat(&id("me"), &follower), Ok(()));
        assert_eq!(g.token_appeared(&id("me")), Ok(false));
        assert_eq!(g.members(), 0);
    }

    #[test]
    fn a_leave_handled_after_its_token_went_still_counts_once() {
        let mut g = gate();
        g.token_appeared(&id("n1")).unwrap();
        g.token_gone(&id("n1"));
        assert_eq!(g.leave(&id("n1"), 3), Ok(()));
        assert_eq!(g.leave(&id("n1"), 3), Err(Refused::NonMember), "once");
        assert_eq!(
            g.heartbeat(&id("n1"), &hb(3, Role::Follower, DeviceClass::Full)),
            Err(Refused::NonMember)
        );
        // Never a member: refused.
        assert_eq!(g.leave(&id("ghost"), 3), Err(Refused::NonMember));
        // The memory of departures is bounded.
        for n in 0..(RECENTLY_GONE + 10) {
            let peer = id(&format!("p{n}"));
            g.token_appeared(&peer).unwrap();
            g.token_gone(&peer);
        }
        assert_eq!(g.leave(&id("p0"), 3), Err(Refused::NonMember));
        let last = id(&format!("p{}", RECENTLY_GONE + 9));
        assert_eq!(g.leave(&last, 3), Ok(()));
    }

    #[test]
    fn the_member_table_is_bounded() {
        let mut g = gate();
        for n in 0..4 {
            assert_eq!(g.token_appeared(&id(&format!("n{n}"))), Ok(true));
        }
        assert_eq!(g.token_appeared(&id("n4")), Err(Refused::MembersFull));
        assert!(!g.is_member(&id("n4")));
        assert_eq!(g.members(), 4);
        g.token_gone(&id("n0"));
        assert_eq!(g.token_appeared(&id("n4")), Ok(true), "room again");
    }

    #[test]
    fn devices_never_speak_for_the_election() {
        let mut g = gate();
        g.token_appeared(&id("esp")).unwrap();
        assert_eq!(g.heartbeat(&id("esp"), &device_hb()), Ok(()));
        // A minimal swarm-node reports whom it follows: taken as a report, not as a term.
        let report = Heartbeat {
            leader: Some(id("n1")),
            ..hb(u64::MAX, Role::Observer, DeviceClass::Minimal)
        };
        assert_eq!(g.heartbeat(&id("esp"), &report), Ok(()));
        let claims = [
            hb(u64::MAX, Role::Leader, DeviceClass::Minimal),
            hb(5, Role::Candidate, DeviceClass::Minimal),
            hb(0, Role::Leader, DeviceClass::Minimal),
            Heartbeat {
                voters: Some(1),
                ..device_hb()
            },
        ];
        for claim in claims {
            assert_eq!(
                g.heartbeat(&id("esp"), &claim),
                Err(Refused::DeviceClaim),
                "{claim:?}"
            );
        }
        assert_eq!(g.highest_term(), 3, "no device term was taken in");
        // Known as a device: its votes count for nothing.
        let reply = Vote::Reply(VoteReply {
            term: 4,
            candidate: id("me"),
            granted: true,
            pre_vote: false,
        });
        assert_eq!(g.vote(&id("esp"), &reply), Err(Refused::DeviceClaim));
        let lead = LeaderInfo {
            node: id("esp"),
            role: Role::Leader,
            term: 4,
            leader: Some(id("esp")),
            since_ms: None,
            voters: None,
            heir: None,
        };
        assert_eq!(g.leader_info(&lead), Err(Refused::DeviceClaim));
        // A request naming class minimal is refused from anyone.
        g.token_appeared(&id("n1")).unwrap();
        let request = Vote::Request(VoteRequest {
            term: 4,
            pre_vote: true,
            class: DeviceClass::Minimal,
            voters: 2,
        });
        assert_eq!(g.vote(&id("n1"), &request), Err(Refused::DeviceClaim));
    }

    #[test]
    fn terms_that_could_wedge_the_swarm_are_refused_and_honest_ones_pass() {
        let mut g = gate();
        g.token_appeared(&id("n1")).unwrap();
        let lead = |term| hb(term, Role::Leader, DeviceClass::Full);
        for term in [u64::MAX, MAX_TERM + 1, 3 + MAX_TERM_JUMP + 1] {
            assert_eq!(
                g.heartbeat(&id("n1"), &lead(term)),
                Err(Refused::ImplausibleTerm),
                "{term}"
            );
        }
        assert_eq!(g.highest_term(), 3);
        // A node that was away while the swarm held elections follows it.
        assert_eq!(g.heartbeat(&id("n1"), &lead(3 + 5_000)), Ok(()));
        assert_eq!(g.highest_term(), 5_003);
        assert_eq!(
            g.heartbeat(&id("n1"), &lead(3)),
            Ok(()),
            "an old term is the core's to judge"
        );
        // The ceiling holds however high the node already is.
        let mut high = Admission::new(id("me"), MAX_TERM - 1, 4);
        high.token_appeared(&id("n1")).unwrap();
        assert_eq!(high.heartbeat(&id("n1"), &lead(MAX_TERM)), Ok(()));
        assert_eq!(
            high.heartbeat(&id("n1"), &lead(MAX_TERM + 1)),
            Err(Refused::ImplausibleTerm)
        );
        let stored_beyond = Admission::new(id("me"), u64::MAX, 4);
        assert_eq!(stored_beyond.highest_term(), MAX_TERM);
    }

    #[test]
    fn counts_of_voters_beyond_the_member_limit_are_refused() {
        let mut g = gate();
        g.token_appeared(&id("n1")).unwrap();
        let claim = |voters| Heartbeat {
            voters: Some(voters),
            ..hb(3, Role::Leader, DeviceClass::Full)
        };
        assert_eq!(g.heartbeat(&id("n1"), &claim(5)), Ok(()));
        assert_eq!(
            g.heartbeat(&id("n1"), &claim(u32::MAX)),
            Err(Refused::ImplausibleCount)
        );
        let request = Vote::Request(VoteRequest {
            term: 4,
            pre_vote: true,
            class: DeviceClass::Full,
            voters: 6,
        });
        assert_eq!(g.vote(&id("n1"), &request), Err(Refused::ImplausibleCount));
    }
}
