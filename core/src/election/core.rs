//! The election state machine: Raft terms and votes with PreVote, CheckQuorum, and a fast path
//! when the leader's liveliness token disappears.

use super::voters::Voters;
use crate::clock::At;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::time::Duration;
use swarm_bus::{DeviceClass, Heartbeat, MAX_TERM, NodeId, Role, VoteReply, VoteRequest};

/// Who counts towards a majority (`consensus.quorum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuorumMode {
    /// Every eligible node seen within the membership window, reachable or not: a minority cut
    /// off from the rest never elects.
    #[default]
    Majority,
    /// Only members whose liveliness token is present: each disconnected island elects its own
    /// leader; when islands meet, the higher term wins.
    Island,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub class: DeviceClass,
    pub heartbeat_interval: Duration,
    pub timeout_min: Duration,
    pub timeout_max: Duration,
    pub membership_window: Duration,
    pub quorum: QuorumMode,
    /// For the very first election (term 0): until this many voters (itself included) are
    /// known, nobody stands and no candidate counting fewer gets a vote. With the swarm's real
    /// size here, two groups that have not yet heard each other at a cold start cannot both
    /// reach a majority. 0 turns it off.
    pub bootstrap_expect: u32,
    /// Up to this many voters every member hears every heartbeat and ranks itself by id;
    /// beyond it a follower hears only its leader and ranks itself by a hashed place
    /// (`adaptive_gossip.small_swarm`, docs/protocol.md#scale).
    pub small_swarm: u32,
}

/// The documented `[consensus]` defaults for a `full` node.
impl Default for Settings {
    fn default() -> Self {
        Self {
            class: DeviceClass::Full,
            heartbeat_interval: Duration::from_millis(500),
            timeout_min: Duration::from_millis(1500),
            timeout_max: Duration::from_millis(3000),
            membership_window: Duration::from_secs(600),
            quorum: QuorumMode::Majority,
            bootstrap_expect: 0,
            small_swarm: crate::scale::SMALL_SWARM,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Time passed; the adapter sends one at least every few tens of milliseconds.
    Tick,
    Heartbeat {
        from: NodeId,
        hb: Heartbeat,
    },
    VoteRequest {
        from: NodeId,
        req: VoteRequest,
    },
    VoteReply {
        from: NodeId,
        reply: VoteReply,
    },
    /// A liveliness token went away (crash or stop).
    TokenGone(NodeId),
    /// A clean `Leave`: the node stops being a voter at once.
    Left(NodeId),
    /// On battery and below `energy.low_power_threshold_percent`.
    LowBattery(bool),
    /// The leader of a large swarm names the voter to stand first should its token go (in its
    /// announcements), so failover there does not wait for the first of N hashed places.
    Heir {
        leader: NodeId,
        term: u64,
        heir: NodeId,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Store `(term, voted_for)` durably; the adapter must finish this before sending the
    /// actions that follow it, so a restarted node cannot vote twice in a term.
    PersistVote {
        term: u64,
        voted_for: NodeId,
    },
    RequestVotes(VoteRequest),
    Reply(VoteReply),
    /// The voter set changed: store it, so a restarted node does not believe it is alone and
    /// elect itself with a quorum of one. Emitted on a `Tick` or before the first vote or
    /// request that follows the change, not on every new voter: a new leader of a large swarm
    /// learns hundreds in a second.
    PersistVoters(Vec<NodeId>),
    /// Role, term or leader changed: publish a heartbeat now.
    Changed {
        role: Role,
        term: u64,
        leader: Option<NodeId>,
    },
}

/// What survives a restart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Persisted {
    pub term: u64,
    pub voted_for: Option<NodeId>,
    pub voters: Vec<NodeId>,
}

#[derive(Debug)]
pub struct Election {
    me: NodeId,
    settings: Settings,
    role: Role,
    term: u64,
    voted_for: Option<NodeId>,
    leader: Option<NodeId>,
    leader_contact: Option<At>,
    /// The sequence number of the last heartbeat in which the leader this node follows claimed
    /// to lead: a later one that no longer claims it says the leader stepped down.
    leader_seq: Option<(NodeId, u64)>,
    /// When the leader this node follows was last heard, and since when steadily (no silence
    /// of a whole `leader_alive` window); `leader_suspect` after such a silence, until it has
    /// been heard steadily for `timeout_min` again.
    leader_heard_at: Option<At>,
    leader_steady_since: At,
    leader_suspect: bool,
    leader_since: Option<At>,
    deadline: At,
    prevoting: bool,
    prevotes: BTreeSet<NodeId>,
    votes: BTreeSet<NodeId>,
    voters: Voters,
    /// The voters generation last handed out in `PersistVoters`.
    persisted_generation: u64,
    /// The leader's count of voters, when and who said so: a follower of a large swarm hears
    /// only the leader, so its own voter set is partial, and a majority is reckoned on the
    /// larger.
    announced: Option<(u32, At, NodeId)>,
    /// (leader, term, heir) from the leader's last announcement.
    heir: Option<(NodeId, u64, NodeId)>,
    /// A pre-vote (candidate, term, its voter count, when) refused only because this node
    /// still heard the leader: the first candidate often learns of a crash a moment before
    /// the others do.
    held_prevote: Option<(NodeId, u64, u32, At)>,
    /// When each peer was last heard, and how long after that it still counts as heard: the
    /// longest election timeout, or three of its own advertised heartbeat intervals if that is
    /// longer, so a follower that slowed down to save energy does not look absent.
    heard: BTreeMap<NodeId, (At, Duration)>,
    low_battery: bool,
    /// Until this instant a failed pre-vote is retried after a short pause instead of a whole
    /// timeout: the leader is known to be gone, and peers that refused may simply not have
    /// seen its token go yet.
    fast_retry_until: Option<At>,
    /// Still listening for peers after start, before the first stand.
    discovering: bool,
    last_event: At,
    rng: u64,
}

impl Election {
    /// `persisted` is what the last `PersistVote` and `PersistVoters` stored; stored voters
    /// count as seen now, for one membership window.
    pub fn new(me: NodeId, settings: Settings, persisted: Persisted, now: At, seed: u64) -> Self {
        let role = if settings.class == DeviceClass::Minimal {
            Role::Observer
        } else {
            Role::Follower
        };
        let mut voters = Voters::new(settings.membership_window);
        // An island is whoever is reachable now; stored voters matter only for a majority.
        if settings.quorum == QuorumMode::Majority {
            for id in &persisted.voters {
                voters.seen(id, now);
            }
        }
        let mut e = Self {
            me,
            role,
            term: persisted.term,
            voted_for: persisted.voted_for,
            leader: None,
            leader_contact: None,
            leader_seq: None,
            leader_heard_at: None,
            leader_steady_since: now,
            leader_suspect: false,
            leader_since: None,
            deadline: now,
            prevoting: false,
            prevotes: BTreeSet::new(),
            votes: BTreeSet::new(),
            persisted_generation: voters.generation(),
            voters,
            announced: None,
            heir: None,
            held_prevote: None,
            heard: BTreeMap::new(),
            low_battery: false,
            fast_retry_until: None,
            discovering: true,
            last_event: now,
            // Mixed first: seeds that differ in the lowest bit only (a simulator's node
            // numbers) would otherwise draw the same timeouts and split every vote.
            rng: splitmix64(seed) | 1,
            settings,
        };
        // One heartbeat interval to hear who is out there (every running node sends a
        // heartbeat at least that often), then stand in rank order: a swarm started together
        // elects in well under the election timeout.
        e.deadline = now + e.settings.heartbeat_interval;
        e
    }

    pub fn me(&self) -> &NodeId {
        &self.me
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }

    /// Whether this node is led by a leader it hears: it leads, or it heard its leader within
    /// the shortest election timeout. A follower that still believes in a leader it no longer
    /// hears (a subscription whose declaration a lossy link dropped, a one-way link) is not.
    pub fn hears_leader(&self, now: At) -> bool {
        let heard = |t: At| now.saturating_duration_since(t) < self.settings.timeout_min;
        self.leader.is_some()
            && (self.role == Role::Leader || self.leader_contact.is_some_and(heard))
    }

    /// When the next `Tick` is due for a timer to fire; `None` for a leader or an observer,
    /// which only need the regular tick the adapter sends before each heartbeat.
    pub fn next_wakeup(&self) -> Option<At> {
        matches!(self.role, Role::Follower | Role::Candidate).then_some(self.deadline)
    }

    /// What a leader's heartbeat says about the swarm's size: its count of voters.
    pub fn announced_voters(&self, now: At) -> Option<u32> {
        (self.role == Role::Leader).then(|| self.voter_count(now))
    }

    /// The voters, this node among them: whose copies of the task table make a majority.
    /// A crashed voter stays in until the membership window ends, so a majority is never
    /// reckoned on too few.
    pub fn voter_ids(&self) -> Vec<NodeId> {
        let mut ids = self.voters.ids();
        if !ids.contains(&self.me) {
            ids.push(self.me.clone());
        }
        ids
    }

    /// Whether this node needs every member's heartbeat (the leader, and everyone in a small
    /// swarm) or only the leader's (a follower of a swarm larger than `small_swarm`).
    pub fn hears_everyone(&self, now: At) -> bool {
        self.role == Role::Leader || !self.is_large(now)
    }

    /// Whom this node, as leader, names to stand first should it go: the voter heard from
    /// last, which is the likeliest to be alive and connected.
    pub fn heir(&self, now: At) -> Option<NodeId> {
        if self.role != Role::Leader {
            return None;
        }
        self.voters
            .current(now)
            .filter(|v| **v != self.me)
            .filter_map(|v| self.heard.get(v).map(|(t, allowance)| (v, *t, *allowance)))
            .filter(|(_, t, allowance)| now.saturating_duration_since(*t) < *allowance)
            .max_by_key(|(v, t, _)| (*t, core::cmp::Reverse((*v).clone())))
            .map(|(v, _, _)| v.clone())
    }

    /// Whether this node, as the leader of a large swarm, announces itself to every member
    /// every `scale::ANNOUNCE_EVERY`: its followers hear nobody else who could tell them.
    pub fn announces(&self, now: At) -> bool {
        self.role == Role::Leader && self.is_large(now)
    }

    /// The voter set, if it changed since it was last handed out for persisting: for a clean
    /// stop, so a node restarted right after learning voters still knows them.
    pub fn unsaved_voters(&mut self) -> Option<Vec<NodeId>> {
        (self.voters.generation() != self.persisted_generation).then(|| {
            self.persisted_generation = self.voters.generation();
            self.voters.ids()
        })
    }

    pub fn handle(&mut self, now: At, event: Event) -> Vec<Action> {
        let before = (self.role, self.term, self.leader.clone());
        let tick = event == Event::Tick;
        let mut out = Vec::new();
        self.step_down_after_pause(now);
        match event {
            Event::Tick => self.on_tick(now, &mut out),
            Event::Heartbeat { from, hb } => self.on_heartbeat(now, from, hb, &mut out),
            Event::VoteRequest { from, req } => self.on_vote_request(now, from, req, &mut out),
            Event::VoteReply { from, reply } => self.on_vote_reply(now, from, reply, &mut out),
            Event::TokenGone(id) => {
                let left = self.settings.quorum == QuorumMode::Island;
                self.on_gone(now, &id, left, &mut out)
            }
            Event::Left(id) => self.on_gone(now, &id, true, &mut out),
            Event::LowBattery(low) => self.low_battery = low,
            Event::Heir { leader, term, heir } => {
                if term == self.term && self.leader.as_ref() == Some(&leader) {
                    self.heir = Some((leader, term, heir));
                }
            }
        }
        let sends = out
            .iter()
            .any(|a| matches!(a, Action::RequestVotes(_) | Action::Reply(_)));
        if self.voters.generation() != self.persisted_generation && (sends || tick) {
            // Before any vote goes out, so quorum after a restart is never smaller than now.
            out.insert(0, Action::PersistVoters(self.voters.ids()));
            self.persisted_generation = self.voters.generation();
        }
        if (self.role, self.term, self.leader.clone()) != before {
            out.push(Action::Changed {
                role: self.role,
                term: self.term,
                leader: self.leader.clone(),
            });
        }
        out
    }

    /// Randomised election timeout. `full` draws from the lower half of the range and
    /// `standard` from the upper half, so full-class nodes usually stand first; a node low on
    /// battery waits past the whole range, so it stands only when nobody else does. In a large
    /// swarm a random draw would put hundreds of nodes within one round trip of each other,
    /// and their split votes would repeat round after round; there the start of the range is
    /// followed by the node's hashed place instead (see `rank_delay`).
    fn timeout(&mut self, now: At) -> Duration {
        let (min, max) = (
            self.settings.timeout_min,
            self.settings.timeout_max.max(self.settings.timeout_min),
        );
        let mid = min + (max - min) / 2;
        let (lo, hi) = match (self.low_battery, self.settings.class) {
            (true, _) => (max, max * 2),
            (false, DeviceClass::Full) => (min, mid),
            (false, _) => (mid, max),
        };
        let voters = self.voter_count(now);
        if voters > self.settings.small_swarm {
            return lo + RANK_SLOT.mul_f64(hash_unit(&self.me, self.term) * f64::from(voters));
        }
        lo + (hi - lo).mul_f64(self.random_unit())
    }

    /// xorshift64*: deterministic from the seed, which the adapter draws once at start.
    fn random_unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn eligible(&self) -> bool {
        self.settings.class != DeviceClass::Minimal
    }

    /// Whether this node still hears a leader, for PreVote and vote refusals. The window is one
    /// heartbeat interval shorter than the shortest election timeout: a live leader is heard
    /// about twice in it, while a candidate (which stands only after a whole timeout of
    /// silence) is not refused by a voter that heard the same last heartbeat a moment later.
    fn leader_alive(&self, now: At) -> bool {
        let window = self.alive_window();
        self.role == Role::Leader
            || matches!(self.leader_contact, Some(t) if now.saturating_duration_since(t) < window)
    }

    fn alive_window(&self) -> Duration {
        self.settings
            .timeout_min
            .saturating_sub(self.settings.heartbeat_interval)
            .max(self.settings.heartbeat_interval)
    }

    fn quorum(&self, now: At) -> usize {
        self.voter_count(now) as usize / 2 + 1
    }

    /// No election has happened yet as far as this node knows (its term, stored across
    /// restarts, is still 0): `bootstrap_expect` applies only then, so a swarm that later
    /// shrinks by clean leaves can still elect.
    fn bootstrapping(&self) -> bool {
        self.term == 0
    }

    /// Voters including this node: those it knows of, or more if the leader said so (within
    /// the membership window) or, until a leader has said so, `bootstrap_expect`. Reckoning a
    /// majority on too many only makes winning harder; on too few could elect two leaders.
    fn is_large(&self, now: At) -> bool {
        self.voter_count(now) > self.settings.small_swarm
    }

    fn voter_count(&self, now: At) -> u32 {
        let others = self.voters.others(&self.me);
        let known = u32::try_from(others + 1).unwrap_or(u32::MAX);
        let announced = self
            .announced
            .as_ref()
            .filter(|(_, at, _)| {
                now.saturating_duration_since(*at) <= self.settings.membership_window
            })
            .map(|(n, _, _)| *n);
        let expected = match announced {
            None => self.settings.bootstrap_expect,
            Some(_) if self.bootstrapping() => self.settings.bootstrap_expect,
            Some(_) => 0,
        };
        known.max(announced.unwrap_or(0)).max(expected)
    }

    /// A leader whose process was frozen (SIGSTOP, a stalled VM) for half the shortest
    /// election timeout may have been replaced meanwhile: it gives up before it acts again,
    /// instead of sending one more heartbeat in its old term. Shorter freezes cannot have been
    /// noticed: followers wait at least a whole timeout.
    fn step_down_after_pause(&mut self, now: At) {
        let frozen = now.saturating_duration_since(self.last_event);
        self.last_event = self.last_event.max(now);
        if self.role == Role::Leader && frozen >= self.settings.timeout_min / 2 {
            self.become_follower(now, self.term, None);
        }
    }

    fn on_tick(&mut self, now: At, out: &mut Vec<Action>) {
        self.voters.forget_older_than_window(now);
        match self.role {
            Role::Observer => {}
            Role::Leader => self.check_quorum(now),
            Role::Follower | Role::Candidate => {
                if now < self.deadline {
                    return;
                }
                if core::mem::take(&mut self.discovering) && self.leader.is_none() {
                    if self.voter_count(now) == 1 {
                        // Heard nobody yet: perhaps alone, perhaps not yet connected. Standing
                        // now would win a quorum of one, so wait a whole timeout.
                        self.deadline = now + self.timeout(now);
                        return;
                    }
                    self.stand_soon(now, None);
                    if now < self.deadline {
                        return;
                    }
                }
                self.start_prevote(now, out);
            }
        }
    }

    /// A leader that has not heard a majority within the longest election timeout steps down:
    /// it is likely cut off, and the majority side may already have a new leader.
    fn check_quorum(&mut self, now: At) {
        let grace = self.settings.timeout_max;
        if self
            .leader_since
            .is_some_and(|t| now.saturating_duration_since(t) < grace)
        {
            return;
        }
        let recent = self
            .voters
            .current(now)
            .filter(|id| **id != self.me)
            .filter(|id| {
                self.heard
                    .get(*id)
                    .is_some_and(|(t, allowance)| now.saturating_duration_since(*t) < *allowance)
            })
            .count();
        if recent + 1 < self.quorum(now) {
            self.become_follower(now, self.term, None);
        }
    }

    /// The term this node would stand in; none once the ceiling is reached, which admission
    /// keeps any honest swarm far below.
    fn next_term(&self) -> Option<u64> {
        self.term.checked_add(1).filter(|t| *t <= MAX_TERM)
    }

    fn start_prevote(&mut self, now: At, out: &mut Vec<Action>) {
        self.discovering = false;
        self.deadline = self.retry_deadline(now);
        if self.bootstrapping() && self.voter_count(now) < self.settings.bootstrap_expect {
            return;
        }
        let Some(next) = self.next_term() else {
            return;
        };
        self.prevoting = true;
        self.prevotes = BTreeSet::from([self.me.clone()]);
        out.push(Action::RequestVotes(VoteRequest {
            term: next,
            pre_vote: true,
            class: self.settings.class,
            voters: self.voter_count(now),
        }));
        if self.prevotes.len() >= self.quorum(now) {
            self.start_election(now, out);
        }
    }

    fn start_election(&mut self, now: At, out: &mut Vec<Action>) {
        self.prevoting = false;
        let Some(next) = self.next_term() else {
            return;
        };
        self.term = next;
        self.role = Role::Candidate;
        self.leader = None;
        self.voted_for = Some(self.me.clone());
        self.votes = BTreeSet::from([self.me.clone()]);
        // A majority granted the pre-vote, so a majority hears no leader: should the votes
        // split, the next round comes soon and in rank order, not after a whole timeout (a
        // silent cut withdraws no token that would have said so).
        self.fast_retry_until
            .get_or_insert(now + self.settings.timeout_min);
        self.deadline = self.retry_deadline(now);
        out.push(Action::PersistVote {
            term: self.term,
            voted_for: self.me.clone(),
        });
        out.push(Action::RequestVotes(VoteRequest {
            term: self.term,
            pre_vote: false,
            class: self.settings.class,
            voters: self.voter_count(now),
        }));
        if self.votes.len() >= self.quorum(now) {
            self.become_leader(now);
        }
    }

    /// When to try again if this round fails: soon and in rank order while the leader is known
    /// to be gone (a split vote or a peer that had not yet seen the token go), otherwise after
    /// a random timeout.
    fn retry_deadline(&mut self, now: At) -> At {
        match self.fast_retry_until {
            // In a large swarm only the few candidates of the failed round retry this soon:
            // a place among a few slots orders them, one among N would idle for seconds.
            Some(until) if now < until && self.is_large(now) => {
                let place = hash_unit(&self.me, self.term) * RETRY_SLOTS;
                now + FAST_RETRY + RANK_SLOT.mul_f64(place)
            }
            Some(until) if now < until => now + FAST_RETRY + self.rank_delay(now, None),
            _ => now + self.timeout(now),
        }
    }

    fn become_leader(&mut self, now: At) {
        // The count it won with: voters granted only because it counted at least as many as
        // they did. Until its own set catches up (followers of a large swarm heartbeat
        // slowly), announcing fewer would shrink everyone's majority.
        self.announced = Some((self.voter_count(now), now, self.me.clone()));
        self.fast_retry_until = None;
        self.role = Role::Leader;
        self.leader = Some(self.me.clone());
        self.leader_since = Some(now);
        self.prevoting = false;
    }

    fn become_follower(&mut self, now: At, term: u64, leader: Option<NodeId>) {
        self.discovering = false;
        if leader.is_some() {
            self.fast_retry_until = None;
        }
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        if self.role != Role::Observer {
            self.role = Role::Follower;
        }
        self.leader_since = None;
        self.prevoting = false;
        if leader.is_some() {
            self.leader_contact = Some(now);
            self.leader_heard_at = Some(now);
        }
        self.leader_suspect = false;
        self.leader_steady_since = now;
        self.leader = leader;
        self.deadline = now + self.timeout(now);
    }

    fn on_heartbeat(&mut self, now: At, from: NodeId, hb: Heartbeat, out: &mut Vec<Action>) {
        // Devices never speak for the election, whatever their heartbeat claims; a term past
        // the ceiling could never be followed by another.
        if from == self.me || hb.class == DeviceClass::Minimal || hb.term > MAX_TERM {
            return;
        }
        self.voters.seen(&from, now);
        let advertised = Duration::from_millis(u64::from(hb.cadence_ms)) * 3;
        let allowance = self.settings.timeout_max.max(advertised);
        match self.heard.get_mut(&from) {
            Some(entry) => *entry = (now, allowance),
            None => {
                self.heard.insert(from.clone(), (now, allowance));
            }
        }
        let claims_lead = hb.role == Role::Leader;
        if let Some(n) = hb.voters.filter(|_| claims_lead && hb.term >= self.term) {
            self.announced = Some((n, now, from.clone()));
        }
        if hb.term > self.term {
            self.become_follower(now, hb.term, claims_lead.then(|| from.clone()));
        } else if hb.term == self.term && claims_lead {
            if self.role == Role::Leader {
                // Cannot happen with a majority quorum; should it ever, one side yields.
                if from < self.me {
                    self.become_follower(now, self.term, Some(from.clone()));
                }
            } else if self.role == Role::Follower && self.leader.as_ref() == Some(&from) {
                self.heard_leader_again(now);
            } else {
                self.become_follower(now, self.term, Some(from.clone()));
            }
        } else if hb.term == self.term && self.stepped_down(&from, hb.seq) {
            // Its own leader says it no longer leads: it stopped hearing a majority (cut off
            // one way: its heartbeats still arrive, nothing reaches it) or was frozen. Waiting
            // out a whole timeout would leave the swarm leaderless for nothing.
            self.leader_lost(now, &from, out);
        }
        if claims_lead && self.leader.as_ref() == Some(&from) {
            // What others answer about the leader comes in as a heartbeat numbered 0.
            let seq = match &self.leader_seq {
                Some((id, last)) if *id == from => hb.seq.max(*last),
                _ => hb.seq,
            };
            self.leader_seq = Some((from, seq));
        }
    }

    /// Another heartbeat from the leader this node follows. One that ends a silence of a whole
    /// `leader_alive` window makes the leader suspect: its link loses most packets, and what
    /// gets through comes now and then (TCP resends a late burst). Until it has been heard
    /// steadily for `timeout_min` again, its heartbeats do not make this node refuse
    /// pre-votes, so the first in the majority whose timer runs out wins it.
    fn heard_leader_again(&mut self, now: At) {
        if let Some(last) = self.leader_heard_at
            && now.saturating_duration_since(last) >= self.alive_window()
        {
            self.leader_suspect = true;
            self.leader_steady_since = now;
        }
        self.leader_heard_at = Some(now);
        if self.leader_suspect
            && now.saturating_duration_since(self.leader_steady_since) >= self.settings.timeout_min
        {
            self.leader_suspect = false;
        }
        // Still a heartbeat: this node does not stand while it hears one now and then (under
        // moderate loss that would change leaders for nothing), but it no longer vouches for
        // the leader against a candidate that stopped hearing it.
        self.deadline = now + self.timeout(now);
        if !self.leader_suspect {
            self.prevoting = false;
            self.leader_contact = Some(now);
        }
    }

    /// Whether `from`, the leader this node follows, no longer claims to lead in a heartbeat
    /// sent after its last one that did (heartbeats from before it led may arrive late).
    fn stepped_down(&self, from: &NodeId, seq: u64) -> bool {
        self.role != Role::Leader
            && self.leader.as_ref() == Some(from)
            && matches!(&self.leader_seq, Some((id, last)) if id == from && seq > *last)
    }

    fn on_vote_request(&mut self, now: At, from: NodeId, req: VoteRequest, out: &mut Vec<Action>) {
        let ineligible = req.class == DeviceClass::Minimal || req.term > MAX_TERM;
        if from == self.me || self.role == Role::Observer || ineligible {
            return;
        }
        self.voters.seen(&from, now);
        let reply = |term, granted, pre_vote| {
            Action::Reply(VoteReply {
                term,
                candidate: from.clone(),
                granted,
                pre_vote,
            })
        };
        // A candidate that counts fewer voters than this node may be computing its majority
        // over part of the swarm (typically just after a cold start); it learns the rest from
        // the requests and heartbeats it receives and asks again.
        let informed = req.voters >= self.voter_count(now)
            && !(self.bootstrapping() && req.voters < self.settings.bootstrap_expect);
        if req.pre_vote {
            // PreVote changes nothing here: it only asks "could you win?".
            let could = informed && req.term > self.term;
            let alive = self.leader_alive(now);
            if could && alive {
                self.held_prevote = Some((from.clone(), req.term, req.voters, now));
            }
            out.push(reply(req.term, could && !alive, true));
            return;
        }
        // A vote refused does not restart the clock (as in Raft): a voter that knows the
        // leader is gone still stands at its rank, however many candidates it turns down.
        let standing_at = (self.role != Role::Leader).then_some(self.deadline);
        if req.term > self.term {
            if self.leader_alive(now) && self.role != Role::Leader {
                out.push(reply(self.term, false, false));
                return;
            }
            self.become_follower(now, req.term, None);
        }
        let free = self.voted_for.is_none() || self.voted_for.as_ref() == Some(&from);
        if informed && req.term == self.term && self.role != Role::Leader && free {
            self.voted_for = Some(from.clone());
            self.deadline = now + self.timeout(now);
            out.push(Action::PersistVote {
                term: self.term,
                voted_for: from.clone(),
            });
            out.push(reply(self.term, true, false));
        } else {
            if let Some(deadline) = standing_at {
                self.deadline = deadline;
            }
            out.push(reply(self.term, false, false));
        }
    }

    fn on_vote_reply(&mut self, now: At, from: NodeId, reply: VoteReply, out: &mut Vec<Action>) {
        if reply.candidate != self.me || from == self.me || reply.term > MAX_TERM {
            return;
        }
        // A voter that answers is alive: a new leader of a large swarm, whose followers
        // heartbeat slowly, counts it towards CheckQuorum until its next heartbeat.
        let allowance = self.settings.timeout_max;
        match self.heard.get_mut(&from) {
            Some(entry) => *entry = (now, allowance),
            None => {
                self.heard.insert(from.clone(), (now, allowance));
            }
        }
        // Only voters answer votes.
        self.voters.seen(&from, now);
        if reply.pre_vote {
            if self.prevoting && reply.granted && self.term.checked_add(1) == Some(reply.term) {
                self.prevotes.insert(from);
                if self.prevotes.len() >= self.quorum(now) {
                    self.start_election(now, out);
                }
            }
            return;
        }
        if reply.term > self.term {
            self.become_follower(now, reply.term, None);
        } else if self.role == Role::Candidate && reply.term == self.term && reply.granted {
            self.votes.insert(from);
            if self.votes.len() >= self.quorum(now) {
                self.become_leader(now);
            }
        }
    }

    /// The fast path: when the leader's token goes, stand almost at once, staggered by rank
    /// so followers do not split the vote.
    fn on_gone(&mut self, now: At, id: &NodeId, left: bool, out: &mut Vec<Action>) {
        if *id == self.me {
            // Our own token, seen through the member watch.
            return;
        }
        self.heard.remove(id);
        if left && self.voters.left(id) {
            // Followers take the leader's count, so a clean leave must shrink it. The leader's
            // own Leave is the last thing it sends, so its followers shrink its count
            // themselves: no announcement of its can already leave it out, and a voter that
            // did not hear the count (one just restarted) asks with one voter fewer.
            if let Some((n, _, by)) = &mut self.announced
                && (self.role == Role::Leader || by == id)
            {
                *n = n.saturating_sub(1);
            }
        }
        if self.leader.as_ref() != Some(id) {
            return;
        }
        self.leader_lost(now, id, out);
    }

    /// The leader this node followed is gone or gave up: stand by rank at once, instead of
    /// after a whole timeout.
    fn leader_lost(&mut self, now: At, id: &NodeId, out: &mut Vec<Action>) {
        self.leader = None;
        self.leader_contact = None;
        self.leader_seq = None;
        self.leader_heard_at = None;
        self.grant_held_prevote(now, out);
        if self.role == Role::Observer || !self.eligible() {
            return;
        }
        self.fast_retry_until = Some(now + self.settings.timeout_min);
        self.stand_soon(now, Some(id));
    }

    /// The leader just went: the pre-vote refused for still hearing it is granted after all,
    /// while its candidate may still be counting (one fast retry), so the first in rank is
    /// not beaten by the second only because the news reached it first.
    fn grant_held_prevote(&mut self, now: At, out: &mut Vec<Action>) {
        let Some((candidate, term, voters, at)) = self.held_prevote.take() else {
            return;
        };
        let fresh = now.saturating_duration_since(at) < FAST_RETRY;
        if fresh && term > self.term && voters >= self.voter_count(now) && !self.leader_alive(now) {
            out.push(Action::Reply(VoteReply {
                term,
                candidate,
                granted: true,
                pre_vote: true,
            }));
        }
    }

    /// Sets the deadline by rank instead of at random: full before standard, a node low on
    /// battery last, and within a class by id, 15 ms apart — enough for the first candidate's
    /// request to arrive before the next one's turn.
    fn stand_soon(&mut self, now: At, gone: Option<&NodeId>) {
        self.deadline = now + self.rank_delay(now, gone);
    }

    fn rank_delay(&self, now: At, gone: Option<&NodeId>) -> Duration {
        let class_delay = if self.settings.class == DeviceClass::Full {
            0
        } else {
            40
        };
        let battery_delay = if self.low_battery { 200 } else { 0 };
        let extra = Duration::from_millis(class_delay + battery_delay);
        let voters = self.voter_count(now);
        if voters > self.settings.small_swarm {
            // A follower of a large swarm does not hear its peers, so it cannot rank itself
            // among them. It takes a place drawn from its id and the term instead, spread
            // over one slot per voter: the first of N draws lands about one slot in, and the
            // next about one slot later, as in id order.
            let place = hash_unit(&self.me, self.term) * f64::from(voters);
            let named = |heir: &NodeId| matches!(&self.heir, Some((l, t, h)) if Some(l) == gone && *t == self.term && h == heir);
            if named(&self.me) {
                return extra;
            }
            // One slot behind the heir the gone leader named, so its request arrives first.
            let behind = match &self.heir {
                Some((_, _, h)) if named(h) => 1.0,
                _ => 0.0,
            };
            return RANK_SLOT.mul_f64(behind + place) + extra;
        }
        // Only voters heard lately: a crashed one still counts for quorum, but waiting for its
        // turn would only slow the others down.
        let rank = self
            .voters
            .current(now)
            .filter(|v| Some(*v) != gone && **v < self.me)
            .filter(|v| {
                self.heard
                    .get(*v)
                    .is_some_and(|(t, allowance)| now.saturating_duration_since(*t) < *allowance)
            })
            .count() as u32;
        RANK_SLOT * rank + extra
    }
}

/// How far apart nodes stand in rank order: enough for the first candidate's request to
/// arrive before the next one's turn.
const RANK_SLOT: Duration = Duration::from_millis(15);

fn splitmix64(seed: u64) -> u64 {
    mix64(seed.wrapping_add(0x9E37_79B9_7F4A_7C15))
}

/// splitmix64's finish: every input bit reaches every output bit.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A number in [0, 1) from a node id and a term (FNV-1a, then a splitmix64 finish): the same
/// on every run, different for every node and every term.
fn hash_unit(id: &NodeId, term: u64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_str().bytes().chain(term.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (mix64(h) >> 11) as f64 / (1u64 << 53) as f64
}

/// How many rank slots the candidates of a failed round in a large swarm spread over.
const RETRY_SLOTS: f64 = 4.0;

/// The pause between pre-vote rounds while the leader is known to be gone.
const FAST_RETRY: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn settings() -> Settings {
        Settings::default()
    }

    fn request(term: u64, pre_vote: bool) -> VoteRequest {
        VoteRequest {
            term,
            pre_vote,
            class: DeviceClass::Full,
            voters: 5,
        }
    }

    fn granted(actions: &[Action]) -> Option<bool> {
        actions.iter().find_map(|a| match a {
            Action::Reply(r) => Some(r.granted),
            _ => None,
        })
    }

    #[test]
    fn the_vote_is_persisted_before_it_is_sent_and_survives_a_restart() {
        let t0 = At::from_millis(1_000_000);
        let mut e = Election::new(id("v"), settings(), Persisted::default(), t0, 1);
        let out = e.handle(
            t0,
            Event::VoteRequest {
                from: id("a"),
                req: request(5, false),
            },
        );
        let persist = out
            .iter()
            .position(|a| matches!(a, Action::PersistVote { term: 5, .. }));
        let reply = out
            .iter()
            .position(|a| matches!(a, Action::Reply(r) if r.granted));
        assert!(persist.is_some() && persist < reply, "{out:?}");

        // Restarted with what was stored: a second candidate of term 5 gets no vote.
        let stored = Persisted {
            term: 5,
            voted_for: Some(id("a")),
            voters: vec![id("a"), id("b")],
        };
        let mut e = Election::new(id("v"), settings(), stored, t0, 2);
        let out = e.handle(
            t0,
            Event::VoteRequest {
                from: id("b"),
                req: request(5, false),
            },
        );
        assert_eq!(granted(&out), Some(false));
        let out = e.handle(
            t0,
            Event::VoteRequest {
                from: id("a"),
                req: request(5, false),
            },
        );
        assert_eq!(
            granted(&out),
            Some(true),
            "the same candidate may ask again"
        );
    }

    #[test]
    fn prevote_is_refused_while_the_leader_is_heard_and_changes_no_term() {
        let t0 = At::from_millis(1_000_000);
        let mut e = Election::new(id("v"), settings(), Persisted::default(), t0, 3);
        let hb = Heartbeat {
            term: 2,
            role: Role::Leader,
            leader: Some(id("l")),
            seq: 1,
            cadence_ms: 500,
            class: DeviceClass::Full,
            voters: None,
            at_ms: None,
        };
        e.handle(t0, Event::Heartbeat { from: id("l"), hb });
        assert_eq!((e.term(), e.leader()), (2, Some(&id("l"))));
        let out = e.handle(
            t0,
            Event::VoteRequest {
                from: id("x"),
                req: request(3, true),
            },
        );
        assert_eq!(granted(&out), Some(false));
        assert_eq!(e.term(), 2);
        // Once the leader's token is gone, the same pre-vote is granted.
        e.handle(t0, Event::TokenGone(id("l")));
        let out = e.handle(
            t0,
            Event::VoteRequest {
                from: id("x"),
                req: request(3, true),
            },
        );
        assert_eq!(granted(&out), Some(true));
        assert_eq!(e.term(), 2, "a pre-vote never moves the term");
    }

    fn heartbeat_from(term: u64) -> Heartbeat {
        Heartbeat {
            term,
            role: Role::Follower,
            leader: None,
            seq: 1,
            cadence_ms: 500,
            class: DeviceClass::Full,
            voters: None,
            at_ms: None,
        }
    }

    #[test]
    fn a_candidate_that_sees_fewer_voters_than_the_voter_gets_no_vote() {
        let t0 = At::from_millis(1_000_000);
        let mut e = Election::new(id("v"), settings(), Persisted::default(), t0, 5);
        for peer in ["a", "b", "c", "d"] {
            let hb = heartbeat_from(0);
            e.handle(t0, Event::Heartbeat { from: id(peer), hb });
        }
        let narrow = VoteRequest {
            voters: 2,
            ..request(1, false)
        };
        let out = e.handle(
            t0,
            Event::VoteRequest {
                from: id("a"),
                req: narrow.clone(),
            },
        );
        assert_eq!(granted(&out), Some(false));
        let pre = VoteRequest {
            pre_vote: true,
            ..narrow
        };
        let out = e.handle(
            t0,
            Event::VoteRequest {
                from: id("a"),
                req: pre,
            },
        );
        assert_eq!(granted(&out), Some(false));
        let out = e.handle(
            t0,
            Event::VoteRequest {
                from: id("a"),
                req: request(1, false),
            },
        );
        assert_eq!(granted(&out), Some(true), "five voters: informed");
    }

    /// Leader `l`'s heartbeat in term 1, announcing `voters`.
    fn leader_l_announcing(voters: u32) -> Event {
        let hb = Heartbeat {
            role: Role::Leader,
            leader: Some(id("l")),
            voters: Some(voters),
            ..heartbeat_from(1)
        };
        Event::Heartbeat { from: id("l"), hb }
    }

    /// A follower `v` of leader `l`, which announced five voters: l, a, v, w, x.
    fn follower_of_five(t0: At, seed: u64) -> Election {
        let mut e = Election::new(id("v"), settings(), Persisted::default(), t0, seed);
        for peer in ["a", "w", "x"] {
            let hb = heartbeat_from(1);
            e.handle(t0, Event::Heartbeat { from: id(peer), hb });
        }
        e.handle(t0, leader_l_announcing(5));
        assert_eq!(e.leader(), Some(&id("l")));
        e
    }

    /// Candidate `a` asks `e` for a vote (or pre-vote) in `term`, counting `voters`.
    fn asked_by_a(e: &mut Election, at: At, term: u64, pre_vote: bool, voters: u32) -> Vec<Action> {
        let req = VoteRequest {
            voters,
            ..request(term, pre_vote)
        };
        e.handle(at, Event::VoteRequest { from: id("a"), req })
    }

    #[test]
    fn a_leader_that_says_it_stepped_down_is_replaced_at_once_but_a_late_older_heartbeat_is_not_taken_for_that()
     {
        let t0 = At::from_millis(1_000_000);
        let mut e = follower_of_five(t0, 7);
        let t1 = t0 + Duration::from_millis(100);
        // Sent while it was still a candidate, overtaken on the way by its first as leader.
        let earlier = Heartbeat {
            role: Role::Candidate,
            seq: 0,
            ..heartbeat_from(1)
        };
        e.handle(
            t1,
            Event::Heartbeat {
                from: id("l"),
                hb: earlier,
            },
        );
        assert_eq!(e.leader(), Some(&id("l")));
        assert_eq!(granted(&asked_by_a(&mut e, t1, 2, true, 5)), Some(false));
        // Its next heartbeat no longer claims to lead: it stopped hearing a majority.
        let gave_up = Heartbeat {
            seq: 2,
            ..heartbeat_from(1)
        };
        let t2 = t1 + Duration::from_millis(10);
        let out = e.handle(
            t2,
            Event::Heartbeat {
                from: id("l"),
                hb: gave_up,
            },
        );
        assert_eq!(e.leader(), None);
        // The pre-vote refused a moment ago only because `l` was heard is granted now.
        assert_eq!(granted(&out), Some(true));
        let wake = e.next_wakeup().expect("a follower has a deadline");
        assert!(
            wake <= t2 + Duration::from_millis(100),
            "stands by rank, not after a whole timeout: {:?}",
            wake - t2
        );
        assert_eq!(granted(&asked_by_a(&mut e, t2, 2, true, 5)), Some(true));
    }

    #[test]
    fn a_leader_heard_only_now_and_then_is_suspect_until_heard_steadily_again() {
        let t0 = At::from_millis(1_000_000);
        let mut e = follower_of_five(t0, 9);
        let hb = |seq: u64| Event::Heartbeat {
            from: id("l"),
            hb: Heartbeat {
                role: Role::Leader,
                leader: Some(id("l")),
                seq,
                ..heartbeat_from(1)
            },
        };
        let ms = Duration::from_millis;
        // Steady: every heartbeat renews the contact, and a pre-vote is refused.
        e.handle(t0 + ms(500), hb(2));
        assert_eq!(
            granted(&asked_by_a(&mut e, t0 + ms(600), 2, true, 5)),
            Some(false)
        );
        // Over a lossy link one gets through after a long silence: not enough to refuse.
        e.handle(t0 + ms(1900), hb(5));
        assert_eq!(
            granted(&asked_by_a(&mut e, t0 + ms(2000), 2, true, 5)),
            Some(true)
        );
        // Heard steadily again for a whole `timeout_min`: trusted again.
        for (k, at) in (2400..=3500).step_by(500).enumerate() {
            e.handle(t0 + ms(at), hb(6 + k as u64));
        }
        assert_eq!(
            granted(&asked_by_a(&mut e, t0 + ms(3500), 2, true, 5)),
            Some(false)
        );
    }

    #[test]
    fn the_leaders_clean_leave_shrinks_the_count_it_announced_but_its_crash_does_not() {
        let t0 = At::from_millis(1_000_000);
        // `a` restarted after the leader's last announcement: it counts the four left.
        let ask = |e: &mut Election, pre_vote| granted(&asked_by_a(e, t0, 2, pre_vote, 4));

        let mut left = follower_of_five(t0, 10);
        // The token may go before the Leave arrives, or after.
        left.handle(t0, Event::TokenGone(id("l")));
        left.handle(t0, Event::Left(id("l")));
        assert_eq!(ask(&mut left, true), Some(true), "pre-vote");
        assert_eq!(ask(&mut left, false), Some(true), "vote");

        let mut crashed = follower_of_five(t0, 11);
        crashed.handle(t0, Event::TokenGone(id("l")));
        assert_eq!(
            ask(&mut crashed, true),
            Some(false),
            "a crashed leader still counts until the membership window ends"
        );

        // A follower's Leave is the leader's to count: its next announcement says it.
        let mut other = follower_of_five(t0, 12);
        other.handle(t0, Event::Left(id("x")));
        other.handle(t0, leader_l_announcing(4));
        other.handle(t0, Event::TokenGone(id("l")));
        let out = asked_by_a(&mut other, t0, 2, true, 3);
        assert_eq!(granted(&out), Some(false), "shrunk once, not twice");
    }

    #[test]
    fn a_pre_vote_refused_for_a_leader_that_then_goes_is_granted_late_but_not_stale() {
        let t0 = At::from_millis(1_000_000);
        let pre = |e: &mut Election, at| granted(&asked_by_a(e, at, 2, true, 5));
        let late_grant = |out: &[Action]| {
            out.iter().any(|a| {
                matches!(a, Action::Reply(r) if r.candidate == id("a") && r.pre_vote && r.granted && r.term == 2)
            })
        };

        let mut e = follower_of_five(t0, 14);
        assert_eq!(pre(&mut e, t0), Some(false), "the leader is still heard");
        let out = e.handle(t0 + Duration::from_millis(2), Event::TokenGone(id("l")));
        assert!(
            late_grant(&out),
            "granted once the leader's token went: {out:?}"
        );

        let mut stale = follower_of_five(t0, 15);
        assert_eq!(pre(&mut stale, t0), Some(false));
        let out = stale.handle(t0 + FAST_RETRY, Event::TokenGone(id("l")));
        assert!(!late_grant(&out), "the candidate has moved on: {out:?}");

        let mut not_leader = follower_of_five(t0, 16);
        assert_eq!(pre(&mut not_leader, t0), Some(false));
        let out = not_leader.handle(t0, Event::TokenGone(id("x")));
        assert!(!late_grant(&out), "the leader is still there: {out:?}");
    }

    #[test]
    fn a_refused_candidate_does_not_hold_back_a_voter_that_knows_the_leader_is_gone() {
        let t0 = At::from_millis(1_000_000);
        let mut e = follower_of_five(t0, 13);
        e.handle(t0, Event::TokenGone(id("l")));
        let due = e.next_wakeup().expect("a follower has a deadline");
        assert!(due < t0 + settings().timeout_min, "stands by rank, soon");
        // A candidate that counts too few voters: refused, and its term taken.
        let out = asked_by_a(&mut e, t0, 5, false, 2);
        assert_eq!(granted(&out), Some(false));
        assert_eq!(e.term(), 5);
        assert_eq!(e.next_wakeup(), Some(due), "the refusal kept the deadline");
        let out = e.handle(due, Event::Tick);
        assert!(
            out.iter()
                .any(|a| matches!(a, Action::RequestVotes(r) if r.pre_vote && r.term == 6)),
            "{out:?}"
        );
    }

    #[test]
    fn after_start_a_node_that_heard_nobody_waits_a_whole_timeout_and_others_stand_by_rank() {
        let t0 = At::from_millis(1_000_000);
        let s = settings();
        let discovery_end = t0 + s.heartbeat_interval;
        let mut alone = Election::new(id("a"), s.clone(), Persisted::default(), t0, 6);
        let out = alone.handle(discovery_end, Event::Tick);
        assert!(out.is_empty(), "{out:?}");
        let out = alone.handle(discovery_end + s.timeout_min / 2, Event::Tick);
        assert!(out.is_empty(), "stood before a whole timeout: {out:?}");
        let out = alone.handle(t0 + s.heartbeat_interval + s.timeout_max, Event::Tick);
        assert_eq!(alone.role(), Role::Leader, "a swarm of one: {out:?}");

        // With peers heard, the lowest id stands right after discovery, the next 15 ms later.
        for (me, first_ms) in [("b", 0u64), ("c", 15)] {
            let mut e = Election::new(id(me), s.clone(), Persisted::default(), t0, 7);
            for peer in ["b", "c"] {
                let hb = heartbeat_from(0);
                e.handle(t0, Event::Heartbeat { from: id(peer), hb });
            }
            let mut out = e.handle(discovery_end, Event::Tick);
            let early = out.iter().any(|a| matches!(a, Action::RequestVotes(_)));
            assert_eq!(early, first_ms == 0, "{me}: {out:?}");
            let at = discovery_end + Duration::from_millis(first_ms);
            out.extend(e.handle(at, Event::Tick));
            assert!(
                out.iter()
                    .any(|a| matches!(a, Action::RequestVotes(r) if r.pre_vote)),
                "{me}: {out:?}"
            );
        }
    }

    #[test]
    fn a_candidate_that_timed_out_on_the_same_last_heartbeat_gets_the_pre_vote() {
        let t0 = At::from_millis(1_000_000);
        let s = settings();
        let mut e = Election::new(id("v"), s.clone(), Persisted::default(), t0, 8);
        let hb = Heartbeat {
            role: Role::Leader,
            leader: Some(id("l")),
            ..heartbeat_from(1)
        };
        // The voter heard the leader's last heartbeat a little after the candidate did.
        e.handle(
            t0 + Duration::from_millis(5),
            Event::Heartbeat { from: id("l"), hb },
        );
        let out = e.handle(
            t0 + s.timeout_min,
            Event::VoteRequest {
                from: id("c"),
                req: request(2, true),
            },
        );
        assert_eq!(granted(&out), Some(true));
    }

    #[test]
    fn new_voters_are_persisted_on_the_next_tick_or_before_a_vote_not_one_by_one() {
        let t0 = At::from_millis(1_000_000);
        let mut e = Election::new(id("v"), settings(), Persisted::default(), t0, 9);
        let persisted = |out: &[Action]| {
            out.iter().find_map(|a| match a {
                Action::PersistVoters(v) => Some(v.len()),
                _ => None,
            })
        };
        for peer in ["a", "b", "c"] {
            let out = e.handle(
                t0,
                Event::Heartbeat {
                    from: id(peer),
                    hb: heartbeat_from(0),
                },
            );
            assert_eq!(persisted(&out), None, "{out:?}");
        }
        let out = e.handle(t0, Event::Tick);
        assert_eq!(persisted(&out), Some(3), "{out:?}");
        assert_eq!(persisted(&e.handle(t0, Event::Tick)), None, "nothing new");
        e.handle(
            t0,
            Event::Heartbeat {
                from: id("d"),
                hb: heartbeat_from(0),
            },
        );
        let out = e.handle(
            t0,
            Event::VoteRequest {
                from: id("a"),
                req: request(1, false),
            },
        );
        assert_eq!(
            out.first()
                .and_then(|a| persisted(core::slice::from_ref(a))),
            Some(4),
            "{out:?}"
        );
    }

    #[test]
    fn minimal_class_observes_and_never_votes_or_stands() {
        let t0 = At::from_millis(1_000_000);
        let s = Settings {
            class: DeviceClass::Minimal,
            ..settings()
        };
        let mut e = Election::new(id("esp"), s, Persisted::default(), t0, 4);
        assert_eq!(e.role(), Role::Observer);
        let out = e.handle(
            t0,
            Event::VoteRequest {
                from: id("a"),
                req: request(1, false),
            },
        );
        assert!(out.is_empty(), "{out:?}");
        let out = e.handle(t0 + Duration::from_secs(60), Event::Tick);
        assert!(!out.iter().any(|a| matches!(a, Action::RequestVotes(_))));
    }

    /// In a large swarm the heir the leader named stands as soon as the leader's token goes;
    /// everyone else waits at least one slot longer than its hashed place.
    #[test]
    fn the_named_heir_stands_at_once_and_the_others_a_slot_later() {
        let t0 = At::from_millis(1_000_000);
        let s = Settings {
            small_swarm: 2,
            bootstrap_expect: 5,
            ..settings()
        };
        let leader_hb = Heartbeat {
            role: Role::Leader,
            leader: None,
            voters: Some(5),
            ..heartbeat_from(1)
        };
        let deadline_after_gone = |me: &str, heir: Option<&str>| {
            let mut e = Election::new(id(me), s.clone(), Persisted::default(), t0, 1);
            e.handle(
                t0,
                Event::Heartbeat {
                    from: id("l"),
                    hb: leader_hb.clone(),
                },
            );
            if let Some(h) = heir {
                e.handle(
                    t0,
                    Event::Heir {
                        leader: id("l"),
                        term: 1,
                        heir: id(h),
                    },
                );
            }
            e.handle(t0, Event::TokenGone(id("l")));
            e.next_wakeup().unwrap() - t0
        };
        assert_eq!(deadline_after_gone("h", Some("h")), Duration::ZERO);
        for other in ["a", "b", "c"] {
            let unnamed = deadline_after_gone(other, None);
            assert_eq!(
                deadline_after_gone(other, Some("h")),
                unnamed + RANK_SLOT,
                "{other}"
            );
        }
        // An heir named for another term or by someone else is not this term's heir.
        let mut e = Election::new(id("h"), s.clone(), Persisted::default(), t0, 1);
        e.handle(
            t0,
            Event::Heartbeat {
                from: id("l"),
                hb: leader_hb.clone(),
            },
        );
        e.handle(
            t0,
            Event::Heir {
                leader: id("x"),
                term: 1,
                heir: id("h"),
            },
        );
        e.handle(
            t0,
            Event::Heir {
                leader: id("l"),
                term: 0,
                heir: id("h"),
            },
        );
        e.handle(t0, Event::TokenGone(id("l")));
        assert_eq!(
            e.next_wakeup().unwrap() - t0,
            deadline_after_gone("h", None)
        );
    }

    #[test]
    fn a_leader_names_the_voter_it_heard_last() {
        let t0 = At::from_millis(1_000_000);
        let mut e = Election::new(id("l"), settings(), Persisted::default(), t0, 1);
        assert_eq!(e.heir(t0), None, "a follower names nobody");
        for (i, peer) in ["a", "b"].into_iter().enumerate() {
            e.handle(
                t0 + Duration::from_millis(i as u64),
                Event::Heartbeat {
                    from: id(peer),
                    hb: heartbeat_from(0),
                },
            );
        }
        let mut now = t0;
        let mut pending = Vec::new();
        while e.role() != Role::Leader {
            now += Duration::from_millis(10);
            pending.extend(e.handle(now, Event::Tick));
            while let Some(action) = pending.pop() {
                let Action::RequestVotes(req) = action else {
                    continue;
                };
                for peer in ["a", "b"] {
                    let reply = VoteReply {
                        term: req.term,
                        candidate: id("l"),
                        granted: true,
                        pre_vote: req.pre_vote,
                    };
                    let from = id(peer);
                    pending.extend(e.handle(now, Event::VoteReply { from, reply }));
                }
            }
            assert!(now < t0 + Duration::from_secs(10), "never led");
        }
        for peer in ["b", "a", "b"] {
            now += Duration::from_millis(5);
            let hb = heartbeat_from(e.term());
            e.handle(now, Event::Heartbeat { from: id(peer), hb });
            assert_eq!(e.heir(now), Some(id(peer)));
        }
    }
}
