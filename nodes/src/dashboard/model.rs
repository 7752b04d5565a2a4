//! What the dashboards know about the swarm, built from bus events alone. No IO and no clock:
//! every input comes with its `now_ms`, so tests replay a swarm at fixed times and the live
//! loop feeds it whatever zenoh delivers.
//!
//! Membership is the liveliness token's: a node is listed from its token's arrival to its
//! departure. Heartbeats and energy from a node whose token has not arrived (yet) are kept
//! aside, unlisted, for a while: the token usually follows within milliseconds, and a late
//! heartbeat of a node that just left must not bring it back.
//!
//! A token's end is judged by `Contact` before it counts as a departure: when the dashboard's
//! own link goes, zenoh withdraws every token at once, and the members stay listed, marked
//! unconfirmed, until the swarm is in sight again and says who is still there.

use super::contact::{Contact, Seen, Standing};
use super::history::History;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use swarm_bus::{CadenceMode, DeviceClass, Energy, Heartbeat, Leave, NodeId, NodeState, Role};
use swarm_node::cadence::is_suspect;

/// Members beyond this are refused (and counted): a flood of made-up ids must not exhaust
/// memory.
pub const MAX_MEMBERS: usize = 10_000;
/// Events kept for the "recent events" pane.
pub const MAX_EVENTS: usize = 200;
/// Energy samples kept per node, and swarm totals kept (one per `TOTAL_EVERY_MS`).
pub const HISTORY: usize = 60;
pub const TOTAL_EVERY_MS: u64 = 1_000;
/// How long data of a node without a token is kept unlisted.
const UNLISTED_TTL_MS: u64 = 30_000;
/// More than this from one node is a broken meter or a made-up sample, not an edge device.
const MAX_WATTS: f32 = 1_000_000.0;
/// While a node's heartbeat interval disagrees with its last state answer (a mode changed),
/// its state is asked again at most this often.
const STATE_RETRY_MS: u64 = 2_000;

/// One thing that happened on the bus.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Joined(NodeId),
    /// The liveliness token went: a clean stop, a crash, or a cut link.
    TokenGone(NodeId),
    Heartbeat(NodeId, Heartbeat),
    Energy(NodeId, Energy),
    Leave(NodeId, Leave),
    /// A node's answer on its `state` queryable.
    State(NodeId, NodeState),
    /// The swarm's answer to the roll call asked for this epoch (`Model::take_roll_call`):
    /// every member whose token it holds.
    RollCall(u64, BTreeSet<NodeId>),
    /// A member's earlier samples from the gateway's history, `(ts_ms, watts)` oldest first:
    /// its sparkline starts filled.
    Past(NodeId, Vec<(u64, f32)>),
}

/// How a member was seen to leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// It said `Leave`.
    Leave,
    /// Its token was withdrawn without a word while our link stood.
    TokenGone,
    /// It was not in the swarm when we were back in contact: it left while we could not see.
    Unseen,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Joined(NodeId),
    Left {
        id: NodeId,
        how: Departure,
        was_leader: bool,
    },
    /// The dashboard's own link went: what it shows is the last known, unconfirmed.
    LostContact,
    /// Linked to the swarm again, after a loss.
    BackInContact,
    /// A higher term appeared and its leader has not spoken yet.
    Election {
        term: u64,
    },
    NewLeader {
        term: u64,
        leader: NodeId,
        previous: Option<NodeId>,
    },
    /// Two nodes claimed to lead the same term: a split brain.
    TwoLeaders {
        term: u64,
        first: NodeId,
        second: NodeId,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at_ms: u64,
    pub kind: EventKind,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: NodeId,
    /// Its liveliness token is up: the node is listed.
    pub present: bool,
    /// Listed from before contact was lost, and not seen since.
    pub unconfirmed: bool,
    pub class: Option<DeviceClass>,
    pub heartbeat: Option<Heartbeat>,
    /// When the last heartbeat arrived here (our clock, not the sender's).
    pub heard_ms: Option<u64>,
    /// From the node's state answer: the mode and whether an operator pinned it.
    pub cadence: Option<(CadenceMode, bool)>,
    pub energy: Option<Energy>,
    pub energy_ms: Option<u64>,
    pub watts: History,
    /// A board in deep sleep, from its bridge's state answer: the Unix ms it wakes at.
    pub asleep_until_ms: Option<u64>,
    /// The interval its last state answer advertised, to notice a mode change in heartbeats.
    state_cadence_ms: Option<u32>,
    asked_state_ms: Option<u64>,
    touched_ms: u64,
}

impl Member {
    /// Asleep now (present but silent): until when, on the wall clock.
    pub fn asleep(&self, now_ms: u64) -> Option<u64> {
        self.asleep_until_ms.filter(|until| *until > now_ms)
    }

    fn new(id: NodeId, now_ms: u64) -> Self {
        Self {
            id,
            present: false,
            unconfirmed: false,
            class: None,
            heartbeat: None,
            heard_ms: None,
            cadence: None,
            energy: None,
            energy_ms: None,
            watts: History::new(HISTORY),
            asleep_until_ms: None,
            state_cadence_ms: None,
            asked_state_ms: None,
            touched_ms: now_ms,
        }
    }

    /// Time since its last heartbeat arrived; a clock stepping back reads as 0.
    pub fn heartbeat_age_ms(&self, now_ms: u64) -> Option<u64> {
        self.heard_ms.map(|h| now_ms.saturating_sub(h))
    }
}

/// How long a silence makes a node suspect (from `[adaptive_gossip]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suspicion {
    pub suspect_after: u32,
    pub floor_ms: u32,
}

impl Default for Suspicion {
    fn default() -> Self {
        Self {
            suspect_after: 3,
            floor_ms: 250,
        }
    }
}

/// The swarm's sums over the members that reported energy.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Totals {
    pub watts: f64,
    pub wh: f64,
    pub co2_g: f64,
    pub reporting: usize,
    /// The members' `eff_pct` weighted by their watts, as the leader's `SwarmEnergy` does,
    /// over those that state a sensible one.
    pub eff_pct: Option<u8>,
}

#[derive(Debug)]
pub struct Model {
    members: BTreeMap<NodeId, Member>,
    listed: usize,
    events: VecDeque<Event>,
    term: u64,
    leader: Option<NodeId>,
    /// The leader before the current one (or before the seat went empty).
    last_leader: Option<NodeId>,
    leader_since_ms: Option<u64>,
    voters: Option<u32>,
    split_term: Option<u64>,
    total: History,
    last_total_ms: Option<u64>,
    refused: u64,
    bad: u64,
    dropped: u64,
    want_state: BTreeSet<NodeId>,
    changed: bool,
    suspicion: Suspicion,
    contact: Contact,
}

impl Model {
    pub fn new(suspicion: Suspicion) -> Self {
        Self {
            members: BTreeMap::new(),
            listed: 0,
            events: VecDeque::new(),
            term: 0,
            leader: None,
            last_leader: None,
            leader_since_ms: None,
            voters: None,
            split_term: None,
            total: History::new(HISTORY),
            last_total_ms: None,
            refused: 0,
            bad: 0,
            dropped: 0,
            want_state: BTreeSet::new(),
            changed: true,
            suspicion,
            contact: Contact::new(MAX_MEMBERS),
        }
    }

    pub fn apply(&mut self, now_ms: u64, input: Input) {
        match input {
            Input::Joined(id) => {
                if let Some(seen) = self.contact.joined(id) {
                    self.seen(now_ms, seen);
                }
            }
            Input::TokenGone(id) => self.contact.token_gone(now_ms, &id),
            Input::Leave(id, _) => {
                self.contact.left(&id);
                self.gone(now_ms, &id, Departure::Leave);
            }
            Input::Heartbeat(id, hb) => self.heartbeat(now_ms, id, hb),
            Input::Energy(id, e) => self.energy(now_ms, id, e),
            Input::State(id, s) => self.state(id, s),
            Input::RollCall(epoch, present) => self.contact.roll_call(now_ms, epoch, present),
            Input::Past(id, samples) => self.past(&id, &samples),
        }
    }

    /// Earlier samples of a member already listed (from the gateway's history, or a board's
    /// readings replayed after an outage) go into its sparkline where their times put them;
    /// nothing from them creates a member, and one already heard is not drawn twice. Values
    /// a device could not report are left out.
    fn past(&mut self, id: &NodeId, samples: &[(u64, f32)]) {
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        for (ts, w) in samples {
            if w.is_finite() && *w >= 0.0 && *w <= MAX_WATTS && m.watts.place(*ts, *w) {
                self.changed = true;
            }
        }
    }

    /// What the dashboard's own session says about its links (the live loop: every frame).
    /// Departures and the swarm's answers held by `Contact` are judged here.
    pub fn links(&mut self, now_ms: u64, links: BTreeSet<String>) {
        for seen in self.contact.links(now_ms, links) {
            self.seen(now_ms, seen);
        }
    }

    /// When due, the epoch to ask the swarm who is there for (a liveliness query), and the
    /// members the answer is to settle.
    pub fn take_roll_call(&mut self, now_ms: u64) -> Option<(u64, BTreeSet<NodeId>)> {
        self.contact.roll_call_due(now_ms)
    }

    /// Whether the dashboard is in contact with the swarm.
    pub fn standing(&self) -> Standing {
        self.contact.standing()
    }

    /// Listed members not confirmed since contact was lost.
    pub fn unconfirmed(&self) -> usize {
        self.members().filter(|m| m.unconfirmed).count()
    }

    fn seen(&mut self, now_ms: u64, seen: Seen) {
        match seen {
            Seen::Joined(id) => self.joined(now_ms, id),
            Seen::Gone { id, at_ms } => self.gone(at_ms, &id, Departure::TokenGone),
            Seen::Unseen(id) => self.gone(now_ms, &id, Departure::Unseen),
            Seen::Lost { at_ms } => {
                for m in self.members.values_mut().filter(|m| m.present) {
                    m.unconfirmed = true;
                }
                self.push_event(at_ms, EventKind::LostContact);
            }
            Seen::InContact { at_ms, again } => {
                if again {
                    self.push_event(at_ms, EventKind::BackInContact);
                }
            }
            Seen::Confirmed(id) => {
                if let Some(m) = self.members.get_mut(&id) {
                    m.unconfirmed = false;
                    // Its mode may have changed while we could not see.
                    self.want_state.insert(id);
                }
                self.changed = true;
            }
            Seen::RollCalled { .. } => self.changed = true,
        }
    }

    /// Housekeeping once in a while (the live loop: every frame): a swarm-total sample per
    /// `TOTAL_EVERY_MS`, and unlisted leftovers forgotten.
    pub fn tick(&mut self, now_ms: u64) {
        let due = self
            .last_total_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= TOTAL_EVERY_MS);
        if due {
            let totals = self.totals();
            if totals.reporting > 0 {
                self.total.push(now_ms, totals.watts as f32);
                self.last_total_ms = Some(now_ms);
                self.changed = true;
            }
        }
        self.members
            .retain(|_, m| m.present || now_ms.saturating_sub(m.touched_ms) < UNLISTED_TTL_MS);
    }

    /// Listed members, by id.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| m.present)
    }

    pub fn member_count(&self) -> usize {
        self.listed
    }

    /// Newest first.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }

    pub fn leader_since_ms(&self) -> Option<u64> {
        self.leader.as_ref().and(self.leader_since_ms)
    }

    /// The leader's own count of voters (large swarms put it in the leader's heartbeat).
    pub fn voters(&self) -> Option<u32> {
        self.leader.as_ref().and(self.voters)
    }

    pub fn total_history(&self) -> &History {
        &self.total
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        let (mut work, mut rated_watts) = (0.0f64, 0.0f64);
        for e in self.members().filter_map(|m| m.energy.as_ref()) {
            t.watts += f64::from(e.watts);
            t.wh += f64::from(e.wh_total);
            t.co2_g += f64::from(e.co2_g);
            t.reporting += 1;
            if let Some(pct) = eff_pct(e) {
                work += f64::from(pct) * f64::from(e.watts);
                rated_watts += f64::from(e.watts);
            }
        }
        if rated_watts > 0.0 {
            t.eff_pct = Some((work / rated_watts).round().clamp(0.0, 100.0) as u8);
        }
        t
    }

    /// New ids refused at `MAX_MEMBERS`.
    pub fn refused(&self) -> u64 {
        self.refused.saturating_add(self.contact.refused())
    }

    /// Messages dropped: undecodable ones the bus counted, and nonsense values found here.
    pub fn dropped(&self) -> u64 {
        self.dropped.saturating_add(self.bad)
    }

    /// The bus's own count of undecodable messages.
    pub fn set_bus_drops(&mut self, n: u64) {
        if n != self.dropped {
            self.dropped = n;
            self.changed = true;
        }
    }

    pub fn suspect(&self, m: &Member, now_ms: u64) -> bool {
        if m.asleep(now_ms).is_some() {
            return false;
        }
        match (m.heard_ms, &m.heartbeat) {
            (Some(heard), Some(hb)) => is_suspect(
                heard,
                hb.cadence_ms,
                self.suspicion.suspect_after,
                self.suspicion.floor_ms,
                now_ms,
            ),
            _ => false,
        }
    }

    /// Whether anything shown changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Nodes whose `state` should be asked for (their cadence mode): new members, and members
    /// whose heartbeat interval no longer matches their last answer.
    pub fn take_state_wanted(&mut self) -> Vec<NodeId> {
        std::mem::take(&mut self.want_state).into_iter().collect()
    }

    /// The member, created unlisted when new and there is room.
    fn entry(&mut self, now_ms: u64, id: NodeId) -> Option<&mut Member> {
        if !self.members.contains_key(&id) {
            if self.members.len() >= MAX_MEMBERS {
                self.refused = self.refused.saturating_add(1);
                return None;
            }
            self.members
                .insert(id.clone(), Member::new(id.clone(), now_ms));
        }
        let m = self.members.get_mut(&id)?;
        m.touched_ms = now_ms;
        Some(m)
    }

    fn joined(&mut self, now_ms: u64, id: NodeId) {
        let Some(m) = self.entry(now_ms, id.clone()) else {
            return;
        };
        if m.present {
            return;
        }
        m.present = true;
        m.asked_state_ms = Some(now_ms);
        self.listed += 1;
        self.want_state.insert(id.clone());
        self.push_event(now_ms, EventKind::Joined(id));
    }

    fn gone(&mut self, now_ms: u64, id: &NodeId, how: Departure) {
        let Some(m) = self.members.remove(id) else {
            // A `Leave` may come after the token's end: the departure was clean after all.
            if how == Departure::Leave {
                self.mark_clean(id);
            }
            return;
        };
        if !m.present {
            return;
        }
        self.listed = self.listed.saturating_sub(1);
        self.want_state.remove(id);
        let was_leader = self.leader.as_ref() == Some(id);
        if was_leader {
            self.last_leader = self.leader.take();
            self.leader_since_ms = None;
        }
        self.push_event(
            now_ms,
            EventKind::Left {
                id: id.clone(),
                how,
                was_leader,
            },
        );
    }

    /// Turns the newest news of `id`, if it is an unexplained departure, into a clean one.
    fn mark_clean(&mut self, id: &NodeId) {
        let latest = self.events.iter_mut().find(|e| match &e.kind {
            EventKind::Joined(j) => j == id,
            EventKind::Left { id: l, .. } => l == id,
            _ => false,
        });
        if let Some(Event {
            kind: EventKind::Left { how, .. },
            ..
        }) = latest
            && *how != Departure::Leave
        {
            *how = Departure::Leave;
            self.changed = true;
        }
    }

    fn heartbeat(&mut self, now_ms: u64, id: NodeId, hb: Heartbeat) {
        let Some(m) = self.entry(now_ms, id.clone()) else {
            return;
        };
        m.class = Some(hb.class);
        m.heard_ms = Some(now_ms);
        let stale_state = m.state_cadence_ms.is_some_and(|c| c != hb.cadence_ms);
        let may_ask = m
            .asked_state_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= STATE_RETRY_MS);
        let ask = m.present && stale_state && may_ask;
        if ask {
            m.asked_state_ms = Some(now_ms);
        }
        let (role, term, voters) = (hb.role, hb.term, hb.voters);
        m.heartbeat = Some(hb);
        if ask {
            self.want_state.insert(id.clone());
        }
        self.changed = true;
        self.leadership(now_ms, id, role, term, voters);
    }

    /// Who leads, from heartbeats alone: only a leader's own word makes it leader, as in
    /// `swarm-node watch`; followers' claims only tell a new term began.
    fn leadership(
        &mut self,
        now_ms: u64,
        from: NodeId,
        role: Role,
        term: u64,
        voters: Option<u32>,
    ) {
        if term < self.term {
            return;
        }
        if term > self.term {
            let first_news = self.term == 0;
            self.term = term;
            if let Some(old) = self.leader.take() {
                self.last_leader = Some(old);
            }
            self.leader_since_ms = None;
            if role != Role::Leader && !first_news {
                self.push_event(now_ms, EventKind::Election { term });
            }
        }
        if role != Role::Leader {
            return;
        }
        match &self.leader {
            None => {
                self.leader = Some(from.clone());
                self.leader_since_ms = Some(now_ms);
                self.voters = voters;
                let previous = self.last_leader.clone().filter(|p| *p != from);
                self.push_event(
                    now_ms,
                    EventKind::NewLeader {
                        term,
                        leader: from,
                        previous,
                    },
                );
            }
            Some(l) if *l == from => self.voters = voters.or(self.voters),
            Some(l) => {
                if self.split_term != Some(term) {
                    self.split_term = Some(term);
                    let first = l.clone();
                    self.push_event(
                        now_ms,
                        EventKind::TwoLeaders {
                            term,
                            first,
                            second: from,
                        },
                    );
                }
            }
        }
    }

    fn energy(&mut self, now_ms: u64, id: NodeId, e: Energy) {
        // The codec checks types, not sense: a NaN, negative or absurd figure would poison the
        // totals.
        let sane = [e.watts, e.wh_total, e.co2_g]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0)
            && e.watts <= MAX_WATTS;
        if !sane {
            self.bad = self.bad.saturating_add(1);
            self.changed = true;
            return;
        }
        let Some(m) = self.entry(now_ms, id) else {
            return;
        };
        m.watts.push(e.ts_ms, e.watts);
        m.energy = Some(e);
        m.energy_ms = Some(now_ms);
        self.changed = true;
    }

    fn state(&mut self, id: NodeId, s: NodeState) {
        // Answers for nodes that left meanwhile are ignored, not resurrected.
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        m.class = Some(s.class);
        m.cadence = Some((s.cadence_mode, s.cadence_pinned));
        m.state_cadence_ms = Some(s.cadence_ms);
        m.asleep_until_ms = s.asleep_until_ms;
        self.changed = true;
    }

    /// Newest first, by `at_ms`: a departure is told once judged, after what came since.
    fn push_event(&mut self, at_ms: u64, kind: EventKind) {
        if self.events.len() == MAX_EVENTS {
            self.events.pop_back();
        }
        let at = self
            .events
            .iter()
            .position(|e| e.at_ms <= at_ms)
            .unwrap_or(self.events.len());
        self.events.insert(at, Event { at_ms, kind });
        self.changed = true;
    }
}

/// A sample's efficiency when it is one: above 100 % of the device's best is no measurement.
pub fn eff_pct(e: &Energy) -> Option<u8> {
    e.eff_pct.filter(|p| *p <= 100)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dashboard::contact::{HOLD_MS, ROLL_CALL_DELAY_MS};
    use swarm_bus::PowerSource;

    pub fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    /// The dashboard's links as its session lists them: the ids of the nodes it is linked to.
    pub fn links(zids: &[&str]) -> BTreeSet<String> {
        zids.iter().map(|z| z.to_string()).collect()
    }

    /// A model whose session is linked to one node, `r`, from time 0.
    pub fn linked() -> Model {
        let mut m = Model::new(Suspicion::default());
        m.links(0, links(&["r"]));
        m
    }

    pub fn hb(role: Role, term: u64, leader: Option<&str>, cadence_ms: u32) -> Heartbeat {
        Heartbeat {
            term,
            role,
            leader: leader.map(id),
            seq: 1,
            cadence_ms,
            class: DeviceClass::Full,
            voters: None,
            at_ms: None,
        }
    }

    pub fn energy(watts: f32, wh_total: f32, co2_g: f32) -> Energy {
        Energy {
            ts_ms: 0,
            watts,
            source: PowerSource::Model,
            cpu_pct: 3,
            temp_c: None,
            battery_pct: None,
            charging: None,
            wh_total,
            co2_g,
            eff_pct: None,
        }
    }

    pub fn state(mode: CadenceMode, pinned: bool, cadence_ms: u32) -> NodeState {
        NodeState {
            role: Role::Follower,
            cadence_ms,
            cadence_mode: mode,
            cadence_pinned: pinned,
            ..swarm_bus::samples::node_state()
        }
    }

    fn kinds(m: &Model) -> Vec<EventKind> {
        m.events().map(|e| e.kind.clone()).collect()
    }

    #[test]
    fn heartbeat_age_and_suspicion_follow_the_senders_own_interval() {
        let mut m = Model::new(Suspicion::default());
        m.apply(1_000, Input::Joined(id("a")));
        m.apply(
            2_000,
            Input::Heartbeat(id("a"), hb(Role::Follower, 1, None, 2_000)),
        );
        let a = m.members().next().unwrap();
        assert_eq!(a.heartbeat_age_ms(2_500), Some(500));
        assert_eq!(a.heartbeat_age_ms(1_000), Some(0), "clock stepped back");
        assert!(!m.suspect(a, 8_000), "3 × its 2 s interval not yet over");
        assert!(m.suspect(a, 8_001));
    }

    #[test]
    fn a_board_asleep_is_present_silent_and_not_suspect_until_its_wake() {
        let mut m = Model::new(Suspicion::default());
        m.apply(1_000, Input::Joined(id("esp")));
        m.apply(
            2_000,
            Input::Heartbeat(id("esp"), hb(Role::Observer, 0, None, 1_000)),
        );
        let mut asleep = state(CadenceMode::Normal, false, 1_000);
        asleep.asleep_until_ms = Some(62_000);
        m.apply(2_100, Input::State(id("esp"), asleep));
        let esp = m.members().next().unwrap();
        assert_eq!(esp.asleep(30_000), Some(62_000));
        assert!(!m.suspect(esp, 30_000), "silent as it said it would be");
        assert_eq!(esp.asleep(62_001), None, "past its wake");
        assert!(m.suspect(esp, 62_001), "and now its silence counts");
    }

    #[test]
    fn only_members_with_a_token_are_listed_and_leftovers_expire() {
        let mut m = linked();
        m.apply(
            0,
            Input::Heartbeat(id("early"), hb(Role::Follower, 1, None, 500)),
        );
        assert_eq!(m.members().count(), 0);
        m.apply(10, Input::Joined(id("early")));
        let early = m.members().next().unwrap();
        assert!(early.heartbeat.is_some(), "kept what came before the token");
        m.apply(20, Input::TokenGone(id("early")));
        m.links(20 + HOLD_MS, links(&["r"]));
        m.apply(
            30 + HOLD_MS,
            Input::Heartbeat(id("early"), hb(Role::Follower, 1, None, 500)),
        );
        assert_eq!(
            m.member_count(),
            0,
            "a late heartbeat does not bring it back"
        );
        m.tick(30 + HOLD_MS + UNLISTED_TTL_MS);
        assert!(m.members.is_empty(), "forgotten after a while");
    }

    #[test]
    fn a_new_leader_a_new_term_and_a_split_brain_are_events() {
        let mut m = Model::new(Suspicion::default());
        for n in ["a", "b", "c"] {
            m.apply(0, Input::Joined(id(n)));
        }
        m.apply(
            1,
            Input::Heartbeat(id("b"), hb(Role::Follower, 1, Some("a"), 500)),
        );
        m.apply(2, Input::Heartbeat(id("a"), hb(Role::Leader, 1, None, 500)));
        assert_eq!((m.leader(), m.term()), (Some(&id("a")), 1));
        assert_eq!(m.leader_since_ms(), Some(2));
        // b moves to term 2 before the winner speaks.
        m.apply(
            10,
            Input::Heartbeat(id("b"), hb(Role::Follower, 2, None, 500)),
        );
        assert_eq!((m.leader(), m.term()), (None, 2));
        m.apply(
            11,
            Input::Heartbeat(id("c"), hb(Role::Leader, 2, None, 500)),
        );
        m.apply(
            12,
            Input::Heartbeat(id("c"), hb(Role::Leader, 2, None, 500)),
        );
        // A stale leader of term 1 changes nothing.
        m.apply(
            13,
            Input::Heartbeat(id("a"), hb(Role::Leader, 1, None, 500)),
        );
        m.apply(
            14,
            Input::Heartbeat(id("b"), hb(Role::Leader, 2, None, 500)),
        );
        m.apply(
            15,
            Input::Heartbeat(id("b"), hb(Role::Leader, 2, None, 500)),
        );
        assert_eq!(m.leader(), Some(&id("c")));
        let events = kinds(&m);
        assert_eq!(
            events[..4],
            [
                EventKind::TwoLeaders {
                    term: 2,
                    first: id("c"),
                    second: id("b")
                },
                EventKind::NewLeader {
                    term: 2,
                    leader: id("c"),
                    previous: Some(id("a"))
                },
                EventKind::Election { term: 2 },
                EventKind::NewLeader {
                    term: 1,
                    leader: id("a"),
                    previous: None
                },
            ]
        );
        assert_eq!(events.len(), 7, "and three joins");
    }

    #[test]
    fn leaves_are_told_apart_clean_or_token_gone_in_either_order() {
        let mut m = linked();
        for n in ["a", "b", "c"] {
            m.apply(0, Input::Joined(id(n)));
        }
        m.apply(1, Input::Heartbeat(id("a"), hb(Role::Leader, 1, None, 500)));
        m.apply(5, Input::Leave(id("a"), Leave { term: 1 }));
        m.apply(6, Input::TokenGone(id("a")));
        m.apply(7, Input::TokenGone(id("b")));
        m.apply(8, Input::TokenGone(id("c")));
        m.apply(9, Input::Leave(id("c"), Leave { term: 1 }));
        assert_eq!(
            m.member_count(),
            1,
            "b's end is judged by the next look at our link"
        );
        m.links(7 + HOLD_MS, links(&["r"]));
        assert_eq!(m.member_count(), 0);
        assert_eq!((m.leader(), m.term()), (None, 1));
        let left: Vec<(String, Departure, bool, u64)> = m
            .events()
            .filter_map(|e| match &e.kind {
                EventKind::Left {
                    id,
                    how,
                    was_leader,
                } => Some((id.to_string(), *how, *was_leader, e.at_ms)),
                _ => None,
            })
            .collect();
        assert_eq!(
            left,
            [
                ("c".into(), Departure::Leave, false, 9),
                ("b".into(), Departure::TokenGone, false, 7),
                ("a".into(), Departure::Leave, true, 5),
            ]
        );
    }

    #[test]
    fn losing_our_own_link_keeps_the_members_unconfirmed_and_says_so() {
        let mut m = linked();
        for n in ["a", "b", "c"] {
            m.apply(0, Input::Joined(id(n)));
        }
        m.apply(1, Input::Heartbeat(id("c"), hb(Role::Leader, 1, None, 500)));
        // The dashboard's link to c closes: zenoh withdraws every token, then the link.
        for n in ["a", "b", "c"] {
            m.apply(5_000, Input::TokenGone(id(n)));
        }
        m.links(5_001, links(&["r"]));
        m.links(5_250, links(&[]));
        m.links(60_000, links(&[]));
        assert_eq!(m.standing(), Standing::Lost { since_ms: 5_250 });
        assert_eq!(m.member_count(), 3, "nobody reported gone");
        assert_eq!(m.unconfirmed(), 3);
        assert_eq!(m.leader(), Some(&id("c")), "the last known leader");
        assert_eq!(kinds(&m)[0], EventKind::LostContact);
        assert!(
            !kinds(&m)
                .iter()
                .any(|k| matches!(k, EventKind::Left { .. }))
        );
    }

    #[test]
    fn back_in_contact_the_live_are_confirmed_and_the_unseen_reported_gone() {
        let mut m = linked();
        for n in ["a", "b", "c"] {
            m.apply(0, Input::Joined(id(n)));
        }
        m.apply(1, Input::Heartbeat(id("c"), hb(Role::Leader, 1, None, 500)));
        assert_eq!(m.take_roll_call(HOLD_MS), None, "nobody to ask yet");
        m.links(2 * HOLD_MS, links(&["r"]));
        let _ = m.take_state_wanted();
        for n in ["a", "b", "c"] {
            m.apply(5_000, Input::TokenGone(id(n)));
        }
        // A client fails over to another node within milliseconds: its tokens come back
        // before the next look, which finds a link to another node.
        m.apply(5_002, Input::Joined(id("a")));
        m.links(5_250, links(&["s"]));
        assert_eq!(m.unconfirmed(), 3);
        m.apply(5_300, Input::Joined(id("b")));
        assert_eq!(m.unconfirmed(), 2, "b's token is back");
        let (again, asked) = m.take_roll_call(5_250 + ROLL_CALL_DELAY_MS).unwrap();
        assert_eq!(asked, [id("a"), id("c")].into(), "b is confirmed already");
        assert_eq!(again, 2);
        m.apply(5_600, Input::RollCall(again, [id("a"), id("b")].into()));
        m.links(5_600 + HOLD_MS, links(&["s"]));
        assert_eq!(m.standing(), Standing::InContact);
        assert_eq!(m.unconfirmed(), 0);
        let listed: Vec<&str> = m.members().map(|m| m.id.as_str()).collect();
        assert_eq!(listed, ["a", "b"]);
        assert_eq!(m.leader(), None, "the leader was the one that went");
        assert_eq!(
            kinds(&m)[..3],
            [
                EventKind::Left {
                    id: id("c"),
                    how: Departure::Unseen,
                    was_leader: true
                },
                EventKind::BackInContact,
                EventKind::LostContact,
            ]
        );
        assert_eq!(
            m.take_state_wanted(),
            [id("a"), id("b")],
            "their modes are asked again"
        );
    }

    #[test]
    fn events_and_histories_are_bounded() {
        let mut m = linked();
        let last = MAX_EVENTS as u64 - 1;
        for i in 0..=last {
            let t = i * 2 * HOLD_MS;
            m.apply(t, Input::Joined(id("x")));
            m.apply(t, Input::TokenGone(id("x")));
            m.links(t + HOLD_MS, links(&["r"]));
        }
        assert_eq!(m.events().count(), MAX_EVENTS);
        assert_eq!(m.events().next().map(|e| e.at_ms), Some(last * 2 * HOLD_MS));
        m.apply(0, Input::Joined(id("x")));
        for i in 0..200u64 {
            m.apply(i, Input::Energy(id("x"), energy(i as f32, 0.0, 0.0)));
            m.tick(i * TOTAL_EVERY_MS);
        }
        let x = m.members().next().unwrap();
        assert_eq!(x.watts.len(), HISTORY);
        assert_eq!(x.watts.iter().last(), Some(199.0));
        assert_eq!(m.total_history().len(), HISTORY);
    }

    #[test]
    fn history_and_replays_fill_a_listed_members_sparkline_where_their_times_put_them() {
        let mut m = linked();
        m.apply(0, Input::Joined(id("x")));
        let mut live = energy(9.0, 0.0, 0.0);
        live.ts_ms = 5_000;
        m.apply(1, Input::Energy(id("x"), live));
        let past = vec![(3_000, 1.0), (4_000, 2.0), (5_000, 9.0), (4_500, f32::NAN)];
        m.apply(2, Input::Past(id("x"), past.clone()));
        let x = m.members().next().unwrap();
        assert_eq!(x.watts.iter().collect::<Vec<_>>(), [1.0, 2.0, 9.0]);
        // Nobody is listed from history alone.
        m.apply(3, Input::Past(id("ghost"), past));
        assert_eq!(m.member_count(), 1);
        // A board back from an outage: its live reading, then the ones it kept, replayed.
        let mut back = energy(12.0, 0.0, 0.0);
        back.ts_ms = 9_000;
        m.apply(4, Input::Energy(id("x"), back));
        m.apply(5, Input::Past(id("x"), vec![(6_000, 6.0), (7_000, 7.0)]));
        let x = m.members().next().unwrap();
        assert_eq!(
            x.watts.iter().collect::<Vec<_>>(),
            [1.0, 2.0, 9.0, 6.0, 7.0, 12.0],
            "replayed readings where they belong"
        );
        assert_eq!(x.energy.as_ref().map(|e| e.watts), Some(12.0), "still live");
    }

    #[test]
    fn members_are_capped() {
        let mut m = Model::new(Suspicion::default());
        for i in 0..MAX_MEMBERS + 5 {
            m.apply(0, Input::Joined(id(&format!("n{i}"))));
        }
        assert_eq!(m.member_count(), MAX_MEMBERS);
        assert_eq!(m.refused(), 5);
    }

    #[test]
    fn nonsense_energy_is_dropped_and_totals_add_up() {
        let mut m = Model::new(Suspicion::default());
        m.apply(0, Input::Joined(id("a")));
        m.apply(0, Input::Joined(id("b")));
        let mut a = energy(10.0, 2.0, 1.0);
        a.eff_pct = Some(80);
        m.apply(1, Input::Energy(id("a"), a));
        let mut b = energy(5.0, 1.0, 0.5);
        b.eff_pct = Some(20);
        m.apply(1, Input::Energy(id("b"), b));
        m.apply(1, Input::Joined(id("c")));
        let mut c = energy(0.5, 0.0, 0.0);
        c.eff_pct = Some(255);
        m.apply(1, Input::Energy(id("c"), c));
        m.apply(2, Input::Energy(id("b"), energy(f32::NAN, 1.0, 0.5)));
        m.apply(2, Input::Energy(id("b"), energy(1.0, -1.0, 0.5)));
        m.apply(2, Input::Energy(id("b"), energy(1e30, 1.0, 0.5)));
        assert_eq!(
            m.totals(),
            Totals {
                watts: 15.5,
                wh: 3.0,
                co2_g: 1.5,
                reporting: 3,
                // (80 × 10 + 20 × 5) / 15; c's 255 % is no measurement.
                eff_pct: Some(60),
            }
        );
        assert_eq!(m.dropped(), 3);
        m.set_bus_drops(3);
        assert_eq!(m.dropped(), 6);
    }

    #[test]
    fn state_is_wanted_on_join_and_again_when_the_interval_changes() {
        let mut m = linked();
        m.apply(0, Input::Joined(id("a")));
        assert_eq!(m.take_state_wanted(), [id("a")]);
        m.apply(
            100,
            Input::State(id("a"), state(CadenceMode::Normal, false, 500)),
        );
        m.apply(
            200,
            Input::Heartbeat(id("a"), hb(Role::Follower, 1, None, 500)),
        );
        assert!(m.take_state_wanted().is_empty(), "interval as answered");
        m.apply(
            5_000,
            Input::Heartbeat(id("a"), hb(Role::Follower, 1, None, 1_000)),
        );
        assert_eq!(m.take_state_wanted(), [id("a")], "slowed: ask why");
        m.apply(
            5_500,
            Input::Heartbeat(id("a"), hb(Role::Follower, 1, None, 1_000)),
        );
        assert!(m.take_state_wanted().is_empty(), "not again at once");
        m.apply(
            5_600,
            Input::State(id("a"), state(CadenceMode::Conservative, true, 1_000)),
        );
        let a = m.members().next().unwrap();
        assert_eq!(a.cadence, Some((CadenceMode::Conservative, true)));
        m.apply(5_700, Input::TokenGone(id("a")));
        m.links(5_700 + HOLD_MS, links(&["r"]));
        m.apply(
            5_800,
            Input::State(id("a"), state(CadenceMode::Normal, false, 500)),
        );
        assert_eq!(m.member_count(), 0, "a late answer does not resurrect it");
    }
}
