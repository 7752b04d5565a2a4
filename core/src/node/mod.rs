//! `NodeCore`: what a node decides about the swarm, in one sans-IO state machine. It composes
//! admission (who may speak), membership (who holds a token, and what each said last) and the
//! election, and holds the one copy of each. The adapter hands it one [`Input`] at a time
//! with the time it happened and carries out the [`Output`]s in order: `swarm-node run` over
//! zenoh, `swarm-node sim` and the election simulator over their simulated networks.
//!
//! Outputs keep the election's ordering rule: a `Persist*` comes before the sends that depend
//! on it, and an adapter whose write fails must not carry out the `RequestVotes` or `Reply`
//! that follow it in the same list, so a restarted node cannot vote twice in a term.

pub mod membership;
pub mod pacing;
mod snapshot;
mod want;

use crate::admission::Admission;
use crate::cadence::Decision;
use crate::clock::At;
use crate::election::{Action, Election, Event, Persisted, Settings};
use alloc::vec::Vec;
use membership::{Heard, Membership};
use pacing::Pacing;
use snapshot::{Change, Publishing};
pub use snapshot::{MemberView, Snapshot};
use swarm_bus::Refused;
use swarm_bus::{
    CadenceMode, Command, CommandOp, DeviceClass, Energy, Heartbeat, LeaderInfo, NodeId, Role,
    Vote, VoteReply, VoteRequest,
};
pub use want::Want;

/// Who leads, as this node now sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Leadership {
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
}

/// Who may speak to the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Members only, as liveliness says, at most this many (`limits.max_members`): a real
    /// node, and the election simulator with its forged messages.
    Members { max_members: u32 },
    /// Everyone, and no member table: `swarm-node sim`, whose network holds no stranger and
    /// whose 10,000 nodes could not each keep a table of 10,000.
    Everyone,
}

/// One thing that happened to the node.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Time passed: due at [`NodeCore::next_wakeup`], and before each heartbeat this node sends.
    Tick,
    Heartbeat {
        from: NodeId,
        hb: Heartbeat,
    },
    Vote {
        from: NodeId,
        vote: Vote,
    },
    /// A clean `Leave` at `term`.
    Leave {
        from: NodeId,
        term: u64,
    },
    TokenAppeared(NodeId),
    TokenGone(NodeId),
    /// What a node says of the leadership: its answer on start or to a survey, or a large
    /// swarm leader's announcement. Counts as a heartbeat from the node it names.
    LeaderInfo(LeaderInfo),
    PeerEnergy {
        from: NodeId,
        sample: Energy,
    },
    /// This node is on battery and below `energy.low_power_threshold_percent`.
    LowBattery(bool),
    /// This node's own energy sample: its battery paces the node, and the snapshot shows it
    /// at once (a leader sums the swarm's energy from the snapshot right after).
    OwnEnergy(Energy),
    /// This node published `n` messages (heartbeats, energy, announcements; not the votes
    /// the core asked for, which it counts itself). It feeds the cadence's measure of this
    /// node's own sending; its only output is a snapshot that fell due (a heartbeat's seq).
    Sent(u64),
    /// Time to ask the cadence whether to change pace (every `RETUNE_EVERY`).
    Retune,
    /// How many other nodes are up, as the adapter knows it: only under [`Admit::Everyone`],
    /// where the core keeps no member table. Has no outputs.
    Population(usize),
    /// A command on this node's `cmd` key.
    Command(Command),
}

/// What the adapter must do, in this order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Store `(term, voted_for)` before carrying out what follows.
    PersistVote { term: u64, voted_for: NodeId },
    /// Store the voter set before carrying out what follows.
    PersistVoters(Vec<NodeId>),
    /// Publish on this node's `vote` key, to every candidate's voters.
    RequestVotes(VoteRequest),
    /// Publish to the candidate alone.
    Reply(VoteReply),
    /// Role, term or leader changed: publish a heartbeat now.
    Changed(Leadership),
    /// A message refused by admission: count it by reason. `what` names the message.
    Refused {
        from: NodeId,
        what: &'static str,
        why: Refused,
    },
    /// A member this node did not know (its token appeared).
    Joined(NodeId),
    /// A member's token went.
    Gone(NodeId),
    /// A member said Leave.
    LeftCleanly { peer: NodeId, term: u64 },
    /// A member's first heartbeat since it (re)joined.
    FirstHeartbeat(NodeId),
    /// A member's energy sample newer than the one held.
    EnergyKept(NodeId),
    /// The intervals in force from now on (on every `Retune`, when the operator's pin
    /// changed, and last after a change of leadership): restart each timer whose interval
    /// changed.
    Pace(Decision),
    /// Keep the operator's pinned cadence (`None`: unpinned) across restarts.
    PersistPin(Option<CadenceMode>),
    /// Make this node's board noticeable (a LED) for `seconds`, so an operator finds it.
    Identify(u32),
    /// A command this node does not obey, and why.
    CommandRefused {
        op: CommandOp,
        arg: u32,
        why: &'static str,
    },
    /// Subscribe to these heartbeats from now on (after everything but a snapshot, when it
    /// changed).
    Subscribe(Want),
    /// Declare the subscription to these heartbeats anew, old one first: this follower has
    /// asked for votes twice for a leader it cannot hear. Zenoh does not resend a declaration
    /// an unreliable link (UDP) lost, and such a follower would stay deaf for good.
    Resubscribe(Want),
    /// Publish this snapshot for readers (last in the list; only with
    /// [`NodeCore::with_snapshots`]).
    Snapshot(alloc::boxed::Box<Snapshot>),
}

#[derive(Debug)]
pub struct NodeCore {
    election: Election,
    /// `None` under [`Admit::Everyone`].
    /// Boxed: the large simulator runs 10,000 cores without one.
    gate: Option<alloc::boxed::Box<(Admission, Membership)>>,
    class: DeviceClass,
    seq: u64,
    pace: Pacing,
    /// The heartbeats asked for; a node starts hearing everyone, as its adapter subscribes.
    want: Want,
    /// This node hears its leader (see `Election::hears_leader`): its pace knows it.
    led: bool,
    /// Rounds of pre-votes this follower asked for since it last heard the leader it knows.
    deaf_rounds: u8,
    /// `None`: no snapshots (the simulators).
    snapshots: Option<alloc::boxed::Box<Publishing>>,
    energy: Option<alloc::boxed::Box<Energy>>,
}

impl NodeCore {
    /// `persisted` is what this node stored before it stopped; `seed` varies its timeouts.
    pub fn new(
        me: NodeId,
        settings: Settings,
        persisted: Persisted,
        now: At,
        seed: u64,
        admit: Admit,
    ) -> Self {
        let gate = match admit {
            Admit::Members { max_members } => Some(alloc::boxed::Box::new((
                Admission::new(me.clone(), persisted.term, max_members),
                Membership::default(),
            ))),
            Admit::Everyone => None,
        };
        let class = settings.class;
        Self {
            election: Election::new(me, settings, persisted, now, seed),
            gate,
            class,
            seq: 0,
            pace: Pacing::fixed(&crate::cadence::Settings::default()),
            want: Want::Everyone,
            led: false,
            deaf_rounds: 0,
            snapshots: None,
            energy: None,
        }
    }

    /// Hands out [`Output::Snapshot`]s: at once after a change of leadership or membership,
    /// at most every `every` when only samples, counters or the pace moved.
    pub fn with_snapshots(mut self, every: core::time::Duration) -> Self {
        self.snapshots = Some(alloc::boxed::Box::new(Publishing::new(every)));
        self
    }

    /// How this node paces itself; the configured defaults, fixed, until set.
    pub fn with_pacing(mut self, pace: Pacing) -> Self {
        self.pace = pace;
        self
    }

    /// The intervals as they stand: what the adapter's timers start at.
    pub fn pace(&self) -> Decision {
        self.pace.decision()
    }

    /// A follower of a quiet swarm that knows its leader: it hears only that leader, and its
    /// own heartbeat goes to the leader alone.
    fn quiet_follower(&self) -> bool {
        self.pace.quiet()
            && self.election.role() == Role::Follower
            && self.election.leader().is_some()
    }

    /// Whether this node's heartbeat should answer the leader's heartbeat from `from` that
    /// just arrived: a quiet follower whose own beat is due before the leader's next one (its
    /// interval less the leader's has passed in `since_beat_ms`).
    /// Sent at once, it carries the acknowledgement of the leader's packet: one packet less
    /// on each link every time.
    pub fn answers_leader(
        &self,
        from: &NodeId,
        leader_cadence_ms: u32,
        since_beat_ms: u64,
    ) -> bool {
        let mine = u64::from(self.pace().heartbeat_ms);
        // Never sooner than half its own interval, whatever the wire says the leader's pace
        // is: heartbeats forged under the leader's key cannot make it send faster than twice.
        let theirs = u64::from(leader_cadence_ms).min(mine / 2);
        self.quiet_follower()
            && self.election.leader() == Some(from)
            && since_beat_ms.saturating_add(theirs) >= mine
    }

    /// The election, to read: timers, voters, whether this node hears everyone.
    pub fn election(&self) -> &Election {
        &self.election
    }

    pub fn me(&self) -> &NodeId {
        self.election.me()
    }

    pub fn leadership(&self) -> Leadership {
        Leadership {
            role: self.election.role(),
            term: self.election.term(),
            leader: self.election.leader().cloned(),
        }
    }

    /// The members as liveliness says; empty under [`Admit::Everyone`].
    pub fn members(&self) -> Option<&Membership> {
        self.gate.as_deref().map(|(_, m)| m)
    }

    pub fn is_member(&self, id: &NodeId) -> bool {
        self.gate.as_deref().is_none_or(|(a, _)| a.is_member(id))
    }

    /// When the next `Tick` is due: the election's next timer, or a snapshot held back.
    pub fn next_wakeup(&self) -> Option<At> {
        let snapshot = self.snapshots.as_deref().and_then(Publishing::next_wakeup);
        match (self.election.next_wakeup(), snapshot) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The voters learnt since they were last stored; on a clean stop.
    pub fn unsaved_voters(&mut self) -> Option<Vec<NodeId>> {
        self.election.unsaved_voters()
    }

    /// The sequence number of the last heartbeat sent.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The next heartbeat to send; advances the sequence number.
    pub fn next_heartbeat(&mut self, now: At, cadence_ms: u32) -> Heartbeat {
        self.seq += 1;
        if let Some(s) = self.snapshots.as_deref_mut() {
            s.mark(Change::Minor);
        }
        self.heartbeat_now(now, cadence_ms)
    }

    /// What this node's heartbeat says now, without sending one. A leader states its count of
    /// voters and leaves out its own id, which the key carries.
    pub fn heartbeat_now(&self, now: At, cadence_ms: u32) -> Heartbeat {
        let role = self.election.role();
        Heartbeat {
            term: self.election.term(),
            role,
            leader: self
                .election
                .leader()
                .filter(|_| role != Role::Leader)
                .cloned(),
            seq: self.seq,
            cadence_ms,
            class: self.class,
            voters: self.election.announced_voters(now),
            at_ms: None,
        }
    }

    /// What this node answers on `swarm/<s>/leader`; `since_ms` is when it learnt of the
    /// leader (Unix ms), which only the adapter's clock knows. The heir is named in
    /// announcements alone.
    pub fn leader_info(&self, now: At, since_ms: Option<u64>) -> LeaderInfo {
        LeaderInfo {
            node: self.me().clone(),
            role: self.election.role(),
            term: self.election.term(),
            leader: self.election.leader().cloned(),
            since_ms,
            voters: self.election.announced_voters(now),
            heir: None,
        }
    }

    /// Hands the core one input that happened at `now`; returns what to do, in order.
    pub fn handle(&mut self, now: At, input: Input) -> Vec<Output> {
        // These two change nothing but counts, and promise no outputs but a snapshot.
        let quiet = matches!(input, Input::Sent(_) | Input::Population(_));
        let mut out = self.decide(now, input);
        if quiet {
            self.snapshot_if_due(now, &mut out);
            return out;
        }
        let led_changed = self.hearing(now);
        // A change of leadership ends with its pace (a leader's interval is bounded by its
        // followers' suspicion), so the heartbeat that tells of it goes out at the new one.
        if led_changed || out.iter().any(|o| matches!(o, Output::Changed(_))) {
            out.push(Output::Pace(self.pace.retune(now)));
        }
        // Whether the swarm counts as large moves with the voters it heard and with time, so
        // it is asked after every input, not only after a change of leadership.
        // A follower of a quiet swarm needs only its leader's heartbeats, as in a large one:
        // zenoh then carries the others' to the leader alone.
        let want = Want::from(
            self.election.hears_everyone(now) && !self.quiet_follower(),
            self.election.leader(),
            self.election.me(),
        );
        let deaf = self.deaf_round(&out);
        if self.want != want {
            self.want = want.clone();
            out.push(Output::Subscribe(want));
        } else if deaf {
            out.push(Output::Resubscribe(want));
        }
        self.snapshot_if_due(now, &mut out);
        out
    }

    /// Tells the pace whether this node hears its leader; true when that changed. A quiet
    /// follower that stops hearing it leaves its quiet pace (and its leader-only
    /// subscription) at once.
    fn hearing(&mut self, now: At) -> bool {
        let led = self.election.hears_leader(now);
        if led {
            self.deaf_rounds = 0;
        }
        if led == self.led {
            return false;
        }
        self.led = led;
        self.pace.led(led);
        true
    }

    /// Whether this follower, which asked for pre-votes in `out`, has now done so twice for a
    /// leader it knows but cannot hear. Not the first round: when a leader really goes, the
    /// first pre-vote usually wins, and a subscription declared anew mid-failover would only
    /// add packets to it.
    fn deaf_round(&mut self, out: &[Output]) -> bool {
        let prevoted = out
            .iter()
            .any(|o| matches!(o, Output::RequestVotes(r) if r.pre_vote));
        if !prevoted || self.led || self.election.role() != Role::Follower {
            return false;
        }
        if self.election.leader().is_none() {
            return false;
        }
        self.deaf_rounds = self.deaf_rounds.saturating_add(1);
        self.deaf_rounds >= 2
    }

    /// What this node knows now, as its readers see it.
    pub fn snapshot(&self, now: At) -> Snapshot {
        let members = self.members().into_iter().flat_map(|m| m.iter());
        Snapshot {
            leadership: self.leadership(),
            seq: self.seq,
            pace: self.pace.decision(),
            energy: self.energy.as_deref().cloned(),
            members: members
                .map(|(id, p)| {
                    let heard = p.last_heartbeat.as_ref();
                    let member = MemberView {
                        heard: heard.is_some(),
                        class: heard.map(|(_, hb)| hb.class),
                        energy: p.energy.clone(),
                    };
                    (id.clone(), member)
                })
                .collect(),
            voters: self.election.announced_voters(now),
            answers_for_swarm: self.election.hears_everyone(now),
        }
    }

    /// Ends the list with a snapshot when one is due, judged by what the list says changed.
    fn snapshot_if_due(&mut self, now: At, out: &mut Vec<Output>) {
        let Some(publishing) = self.snapshots.as_deref_mut() else {
            return;
        };
        for o in out.iter() {
            match o {
                Output::Changed(_)
                | Output::Joined(_)
                | Output::Gone(_)
                | Output::LeftCleanly { .. }
                | Output::FirstHeartbeat(_) => publishing.mark(Change::Urgent),
                Output::EnergyKept(_) | Output::Pace(_) => publishing.mark(Change::Minor),
                _ => {}
            }
        }
        publishing.answering(
            self.election.hears_everyone(now),
            self.election.announced_voters(now),
        );
        if publishing.take(now) {
            out.push(Output::Snapshot(alloc::boxed::Box::new(self.snapshot(now))));
        }
    }

    fn decide(&mut self, now: At, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Tick => self.elect(now, Event::Tick, &mut out),
            Input::LowBattery(low) => self.elect(now, Event::LowBattery(low), &mut out),
            Input::OwnEnergy(sample) => {
                self.pace
                    .battery(sample.battery_pct, sample.charging == Some(true));
                self.energy = Some(alloc::boxed::Box::new(sample));
                if let Some(s) = self.snapshots.as_deref_mut() {
                    s.mark(Change::Urgent);
                }
            }
            Input::Sent(n) => self.pace.sent(n, now),
            Input::Retune => out.push(Output::Pace(self.pace.retune(now))),
            Input::Population(n) => {
                if self.gate.is_none() {
                    self.pace.live_peers(n);
                }
            }
            Input::Command(cmd) => self.obey(now, cmd, &mut out),
            Input::Heartbeat { from, hb } => self.on_heartbeat(now, from, hb, &mut out),
            Input::Vote { from, vote } => {
                if self.admit(&from, "vote", |a| a.vote(&from, &vote), &mut out) {
                    let event = match vote {
                        Vote::Request(req) => Event::VoteRequest { from, req },
                        Vote::Reply(reply) => Event::VoteReply { from, reply },
                    };
                    self.elect(now, event, &mut out);
                }
            }
            Input::Leave { from, term } => {
                if self.admit(&from, "leave", |a| a.leave(&from, term), &mut out) {
                    if let Some((_, members)) = self.gate.as_deref_mut() {
                        members.left_cleanly(&from, term, now);
                    }
                    out.push(Output::LeftCleanly {
                        peer: from.clone(),
                        term,
                    });
                    self.elect(now, Event::Left(from), &mut out);
                }
            }
            Input::TokenAppeared(id) => self.on_token(id, &mut out),
            Input::TokenGone(id) => {
                self.pace.peer_left(&id);
                if let Some((admission, members)) = self.gate.as_deref_mut() {
                    admission.token_gone(&id);
                    if members.gone(&id) {
                        self.pace.live_peers(members.len());
                        out.push(Output::Gone(id.clone()));
                    }
                }
                self.elect(now, Event::TokenGone(id), &mut out);
            }
            Input::LeaderInfo(info) => self.on_leader_info(now, info, &mut out),
            Input::PeerEnergy { from, sample } => {
                if self.admit(&from, "energy sample", |a| a.report(&from), &mut out)
                    && let Some((_, members)) = self.gate.as_deref_mut()
                    && members.energy_from(&from, sample)
                {
                    out.push(Output::EnergyKept(from));
                }
            }
        }
        out
    }

    /// Asks admission about a message; a refusal becomes an output. Everyone passes under
    /// [`Admit::Everyone`].
    fn admit(
        &mut self,
        from: &NodeId,
        what: &'static str,
        rule: impl FnOnce(&mut Admission) -> Result<(), Refused>,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some((admission, _)) = self.gate.as_deref_mut() else {
            return true;
        };
        match rule(admission) {
            Ok(()) => true,
            Err(why) => {
                out.push(Output::Refused {
                    from: from.clone(),
                    what,
                    why,
                });
                false
            }
        }
    }

    fn on_token(&mut self, id: NodeId, out: &mut Vec<Output>) {
        let Some((admission, members)) = self.gate.as_deref_mut() else {
            return;
        };
        // A token refused (the member table is full) creates no state anywhere.
        match admission.token_appeared(&id) {
            Ok(_) if id != *self.election.me() => {
                if members.joined(id.clone()) {
                    self.pace.live_peers(members.len());
                    out.push(Output::Joined(id));
                }
            }
            Ok(_) => {}
            Err(why) => out.push(Output::Refused {
                from: id,
                what: "liveliness token",
                why,
            }),
        }
    }

    fn on_heartbeat(&mut self, now: At, from: NodeId, hb: Heartbeat, out: &mut Vec<Output>) {
        if !self.admit(&from, "heartbeat", |a| a.heartbeat(&from, &hb), out) {
            return;
        }
        if let Some((_, members)) = self.gate.as_deref_mut() {
            match members.heard(&from, hb.clone(), now) {
                // Its sender said Leave since (it no longer leads or votes), or it is not a
                // member this node knows (a newcomer's first heartbeat may beat its token
                // here; the next one counts).
                Heard::BeforeItsLeave | Heard::Stranger => return,
                Heard::First => out.push(Output::FirstHeartbeat(from.clone())),
                Heard::Again => {}
            }
        }
        self.pace.heartbeat_from(&from, hb.seq, hb.cadence_ms, now);
        self.elect(now, Event::Heartbeat { from, hb }, out);
    }

    /// What a node says of the leadership, fed to the election as the heartbeat it would have
    /// heard (and the heir a leader names), so a starting node knows the leader and the voters
    /// at once, and a survey repairs what the event stream missed.
    fn on_leader_info(&mut self, now: At, info: LeaderInfo, out: &mut Vec<Output>) {
        if info.node == *self.election.me() {
            return;
        }
        let from = info.node.clone();
        if !self.admit(&from, "leader announcement", |a| a.leader_info(&info), out) {
            return;
        }
        if let Some((_, members)) = self.gate.as_deref()
            && members.said_before_leave(&from, info.term)
        {
            return;
        }
        let heir = info
            .heir
            .clone()
            .filter(|_| info.role == Role::Leader)
            .map(|heir| Event::Heir {
                leader: from.clone(),
                term: info.term,
                heir,
            });
        let hb = Heartbeat {
            term: info.term,
            role: info.role,
            leader: info.leader,
            seq: 0,
            cadence_ms: 0,
            // Only "votes or not" matters to the election.
            class: if info.role == Role::Observer {
                DeviceClass::Minimal
            } else {
                DeviceClass::Standard
            },
            voters: None,
            at_ms: None,
        };
        self.elect(now, Event::Heartbeat { from, hb }, out);
        if let Some(heir) = heir {
            self.elect(now, heir, out);
        }
    }

    /// The one place the election's actions become outputs. The votes it sends count as
    /// this node's sending, here, so the pace after a change sees them.
    fn elect(&mut self, now: At, event: Event, out: &mut Vec<Output>) {
        for action in self.election.handle(now, event) {
            let output = match action {
                Action::PersistVote { term, voted_for } => Output::PersistVote { term, voted_for },
                Action::PersistVoters(voters) => Output::PersistVoters(voters),
                Action::RequestVotes(req) => {
                    self.pace.sent(1, now);
                    Output::RequestVotes(req)
                }
                Action::Reply(reply) => {
                    self.pace.sent(1, now);
                    Output::Reply(reply)
                }
                Action::Changed { role, term, leader } => {
                    if let Some((admission, _)) = self.gate.as_deref_mut() {
                        admission.own_term(term);
                    }
                    self.pace.leader(role == Role::Leader);
                    Output::Changed(Leadership { role, term, leader })
                }
            };
            out.push(output);
        }
    }

    /// The operator's commands: `set_mode` pins the cadence (`UNPIN_MODE` unpins) at once
    /// and for good; `identify` is the board's to carry out.
    fn obey(&mut self, now: At, cmd: Command, out: &mut Vec<Output>) {
        let refused = |why| Output::CommandRefused {
            op: cmd.op,
            arg: cmd.arg,
            why,
        };
        match cmd.op {
            CommandOp::SetMode => {
                let mode = match cmd.arg {
                    swarm_bus::UNPIN_MODE => None,
                    n => match u8::try_from(n).ok().and_then(CadenceMode::from_u8) {
                        Some(m) => Some(m),
                        None => return out.push(refused("no such cadence mode")),
                    },
                };
                out.push(Output::PersistPin(mode));
                self.pace.pin(mode);
                out.push(Output::Pace(self.pace.retune(now)));
            }
            CommandOp::Identify => out.push(Output::Identify(cmd.arg)),
            _ => out.push(refused("not one a node obeys")),
        }
    }
}

#[cfg(test)]
mod tests;
