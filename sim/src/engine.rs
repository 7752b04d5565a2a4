//! The event loop of the simulator: nodes, timers and a network, all driven by one queue.

use super::queue::Queue;
use super::stats::{NodeCounters, PartitionReport, Report, Second, rates};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};
use swarm_bus::{Heartbeat, LeaderInfo, NodeId, Role, Vote, VoteReply, VoteRequest};
use swarm_core::cadence::{Decision, Settings as CadenceSettings};
use swarm_core::clock::At;
use swarm_core::election::{Persisted, SafetyChecker, Settings};
use swarm_core::node::pacing::{Pacing, configured};
use swarm_core::node::{Admit, Input, NodeCore, Output};
use swarm_core::scale::ANNOUNCE_EVERY;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub nodes: usize,
    pub duration: Duration,
    pub seed: u64,
    /// Probability in [0, 1] that a message to one receiver is lost. Liveliness (a token
    /// going away) is never lost: zenoh tracks it per session.
    pub loss: f64,
    /// Mean one-way delay; each message takes between half and one and a half of it.
    pub latency: Duration,
    pub crash_leader_every: Option<Duration>,
    /// Network partitions, in time order and not overlapping.
    pub partitions: Vec<Partition>,
    /// `false`: the configured intervals, always (`adaptive_gossip.enabled = false`).
    pub adaptive: bool,
    pub settings: Settings,
    pub cadence: CadenceSettings,
    /// Keep a per-second series for `--csv`.
    pub series: bool,
}

impl SimConfig {
    /// The documented defaults: a `full` node's `[consensus]`, the cadence settings, and
    /// `bootstrap_expect` set to the swarm's size, as the docs advise for a cold start.
    pub fn new(nodes: usize, duration: Duration, seed: u64) -> Self {
        Self {
            nodes,
            duration,
            seed,
            loss: 0.0,
            latency: Duration::from_millis(5),
            crash_leader_every: None,
            partitions: Vec::new(),
            adaptive: true,
            settings: Settings {
                bootstrap_expect: u32::try_from(nodes).unwrap_or(u32::MAX),
                ..Settings::default()
            },
            cadence: CadenceSettings::default(),
            series: false,
        }
    }
}

/// From `at`, for `length`, a share of the nodes that includes whoever leads is cut off from
/// the rest: no message crosses the cut either way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Partition {
    pub at: Duration,
    pub length: Duration,
    /// The share of nodes cut off, in (0, 1).
    pub cut_off: f64,
}

/// How often, after a partition heals, the simulator checks whether every node follows one
/// leader again.
const HEAL_CHECK_EVERY: Duration = Duration::from_millis(10);

/// Zenoh's default lease: how long a silent link stays up.
const LEASE: Duration = Duration::from_secs(10);

/// A crashed leader comes back (with what it had stored) after this long.
const RESTART_AFTER: Duration = Duration::from_secs(5);
/// The runtime's first anti-entropy survey comes this soon after start.
const FIRST_SURVEY: Duration = Duration::from_secs(2);
const RETUNE_EVERY: Duration = Duration::from_secs(1);

enum Msg {
    Hb(Heartbeat),
    /// A leader's announcement on `swarm/<s>/leader`.
    Announce(LeaderInfo),
    Req(VoteRequest),
    Rep(VoteReply),
    Gone(u32),
    Energy,
    SurveyQuery,
    /// A leader's answer to a survey: who leads, as it would say on `swarm/<s>/leader`.
    SurveyReply(Option<LeaderInfo>),
}

/// A node's periodic timers, each restarted when its interval changes.
#[derive(Clone, Copy)]
enum Timer {
    Heartbeat = 0,
    Energy = 1,
    Survey = 2,
}

impl Timer {
    fn interval_ms(self, d: &Decision) -> u32 {
        match self {
            Timer::Heartbeat => d.heartbeat_ms,
            Timer::Energy => d.energy_ms,
            Timer::Survey => d.anti_entropy_ms,
        }
    }
}

enum Ev {
    Deliver {
        from: u32,
        to: u32,
        msg: Rc<Msg>,
    },
    Wake {
        node: u32,
    },
    /// A periodic timer of a node; stale once the node restarted that timer.
    Timer {
        node: u32,
        timer: Timer,
        generation: u32,
    },
    Retune {
        node: u32,
    },
    CrashLeader,
    Restart {
        node: u32,
    },
    PartitionStart(usize),
    PartitionEnd(usize),
    HealCheck(usize),
    /// Zenoh's lease ran out on the silent links of a partition: each side sees the other
    /// side's tokens go.
    Lease,
}

struct Node {
    id: NodeId,
    core: NodeCore,
    /// The intervals its timers run at: the core's last `Output::Pace`.
    decision: Decision,
    up: bool,
    disk: Persisted,
    /// Each `Timer`'s generation: a restart bumps it, so the old one's events are ignored.
    timers: [u32; 3],
    wake_at: Option<u64>,
    role: Role,
    role_since: u64,
    next_announce: u64,
    /// A new leader announces itself at once, whatever the swarm's size.
    announce_now: bool,
    counters: NodeCounters,
}

struct Sim {
    cfg: SimConfig,
    now: u64,
    q: Queue<Ev>,
    nodes: Vec<Node>,
    index: HashMap<NodeId, u32>,
    /// Nodes that subscribe to every member's heartbeat.
    everyone: BTreeSet<u32>,
    leaders: BTreeSet<u32>,
    up_count: usize,
    rng: u64,
    checker: SafetyChecker,
    first_leader: Option<u64>,
    elections: usize,
    /// (crash time, term of the crashed leader) awaiting a new leader.
    pending_failover: Option<(u64, u64)>,
    /// Which side of the current partition each node is on (`true`: cut off); empty while
    /// the network is whole.
    cut: Vec<bool>,
    partitions: Vec<PartitionReport>,
    failovers: Vec<f64>,
    unfinished: usize,
    series: Vec<Second>,
}

fn us(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

fn ms(interval_ms: u32) -> u64 {
    u64::from(interval_ms.max(1)) * 1000
}

/// A run's figures, and its per-second series when `SimConfig::series` asked for one.
pub struct Outcome {
    pub report: Report,
    pub series: Vec<Second>,
}

pub fn run(cfg: SimConfig) -> Outcome {
    let wall = Instant::now();
    let mut sim = Sim::new(cfg);
    sim.run();
    let report = sim.report(wall.elapsed());
    Outcome {
        report,
        series: sim.series,
    }
}

impl Sim {
    fn new(cfg: SimConfig) -> Sim {
        let width = cfg.nodes.saturating_sub(1).to_string().len();
        let mut nodes = Vec::with_capacity(cfg.nodes);
        let mut index = HashMap::with_capacity(cfg.nodes);
        for i in 0..cfg.nodes {
            let id = NodeId::new(format!("n{i:0width$}")).expect("a valid generated id");
            index.insert(id.clone(), i as u32);
            let core = NodeCore::new(
                id.clone(),
                cfg.settings.clone(),
                Persisted::default(),
                At::ZERO,
                cfg.seed.wrapping_mul(31).wrapping_add(i as u64),
                Admit::Everyone,
            )
            .with_pacing(pacing(&cfg));
            nodes.push(Node {
                id,
                core,
                decision: configured(&cfg.cadence),
                up: true,
                disk: Persisted::default(),
                timers: [0; 3],
                wake_at: None,
                role: Role::Follower,
                role_since: 0,
                next_announce: 0,
                announce_now: false,
                counters: NodeCounters::default(),
            });
        }
        let up_count = cfg.nodes;
        let rng = cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Sim {
            cfg,
            now: 0,
            q: Queue::new(),
            nodes,
            index,
            everyone: BTreeSet::new(),
            leaders: BTreeSet::new(),
            up_count,
            rng,
            checker: SafetyChecker::default(),
            first_leader: None,
            elections: 0,
            pending_failover: None,
            cut: Vec::new(),
            partitions: Vec::new(),
            failovers: Vec::new(),
            unfinished: 0,
            series: Vec::new(),
        }
    }

    fn instant(&self) -> At {
        At::from_micros(self.now)
    }

    fn rand(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    fn second(&mut self) -> Option<&mut Second> {
        if !self.cfg.series {
            return None;
        }
        let s = self.now / 1_000_000;
        while self.series.len() as u64 <= s {
            let second = self.series.len() as u64;
            self.series.push(Second {
                second,
                ..Second::default()
            });
        }
        self.series.last_mut()
    }

    fn run(&mut self) {
        for i in 0..self.nodes.len() as u32 {
            if self.cfg.adaptive {
                self.retune(i as usize);
            }
            self.start_node(i);
            self.q.push(us(RETUNE_EVERY), Ev::Retune { node: i });
        }
        if let Some(every) = self.cfg.crash_leader_every.filter(|d| !d.is_zero())
            && every < self.cfg.duration
        {
            self.q.push(us(every), Ev::CrashLeader);
        }
        for (k, p) in self.cfg.partitions.iter().enumerate() {
            self.q.push(us(p.at), Ev::PartitionStart(k));
            if LEASE < p.length {
                self.q.push(us(p.at + LEASE), Ev::Lease);
            }
            self.q.push(us(p.at + p.length), Ev::PartitionEnd(k));
        }
        let end = us(self.cfg.duration);
        while let Some((at, ev)) = self.q.pop_until(end) {
            self.now = at;
            self.handle(ev);
        }
        self.now = end;
        for i in 0..self.nodes.len() {
            if self.nodes[i].up {
                self.account_role(i);
            }
        }
        if self.pending_failover.take().is_some() {
            self.unfinished += 1;
        }
    }

    fn start_node(&mut self, i: u32) {
        let now = self.now;
        self.restart_timer(i as usize, Timer::Heartbeat, now);
        self.restart_timer(i as usize, Timer::Energy, now);
        self.restart_timer(i as usize, Timer::Survey, now + us(FIRST_SURVEY));
        self.schedule_wake(i as usize);
        self.refresh_hearing(i as usize);
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { from, to, msg } => self.deliver(from, to, &msg),
            Ev::Wake { node } => {
                let i = node as usize;
                if !self.nodes[i].up || self.nodes[i].wake_at != Some(self.now) {
                    return;
                }
                self.nodes[i].wake_at = None;
                self.feed(i, Input::Tick);
            }
            Ev::Timer {
                node,
                timer,
                generation,
            } => {
                let i = node as usize;
                if !self.nodes[i].up || self.nodes[i].timers[timer as usize] != generation {
                    return;
                }
                self.fire(i, timer);
                let next = self.now + ms(timer.interval_ms(&self.nodes[i].decision));
                let ev = Ev::Timer {
                    node,
                    timer,
                    generation,
                };
                self.q.push(next, ev);
            }
            Ev::Retune { node } => {
                self.q
                    .push(self.now + us(RETUNE_EVERY), Ev::Retune { node });
                let i = node as usize;
                if self.nodes[i].up && self.cfg.adaptive {
                    self.retune(i);
                    self.refresh_hearing(i);
                }
            }
            Ev::CrashLeader => {
                let next = self
                    .cfg
                    .crash_leader_every
                    .map(|every| self.now + us(every));
                if let Some(next) = next.filter(|t| *t < us(self.cfg.duration)) {
                    self.q.push(next, Ev::CrashLeader);
                }
                self.crash_leader();
            }
            Ev::Restart { node } => self.restart(node as usize),
            Ev::PartitionStart(k) => self.partition(k),
            Ev::PartitionEnd(k) => {
                self.cut.clear();
                self.heal_check(k);
            }
            Ev::HealCheck(k) => self.heal_check(k),
            Ev::Lease => self.lease_ends(),
        }
    }

    /// Cuts off the leader and enough others to make up the partition's share.
    fn partition(&mut self, k: usize) {
        let p = self.cfg.partitions[k];
        let n = self.nodes.len();
        let want = ((n as f64 * p.cut_off).round() as usize).clamp(1, n.saturating_sub(1).max(1));
        let mut cut = vec![false; n];
        let leader = self
            .leaders
            .iter()
            .max_by_key(|l| self.nodes[**l as usize].core.election().term())
            .copied();
        let mut count = 0;
        if let Some(l) = leader {
            cut[l as usize] = true;
            count = 1;
        }
        while count < want {
            let j = ((self.rand() * n as f64) as usize).min(n - 1);
            if !cut[j] {
                cut[j] = true;
                count += 1;
            }
        }
        let term = leader.map_or(0, |l| self.nodes[l as usize].core.election().term());
        self.cut = cut;
        self.partitions.push(PartitionReport {
            at_s: p.at.as_secs_f64(),
            length_s: p.length.as_secs_f64(),
            cut_off: count,
            term_before: term,
            new_leader_ms: None,
            healed_ms: None,
        });
    }

    /// After a partition: done once every live node follows one live leader in one term;
    /// otherwise looks again shortly.
    fn heal_check(&mut self, k: usize) {
        let Some(report) = self.partitions.get_mut(k) else {
            return;
        };
        if report.healed_ms.is_some() {
            return;
        }
        let ends = us(self.cfg.partitions[k].at + self.cfg.partitions[k].length);
        let mut up = self.nodes.iter().filter(|n| n.up);
        let agreed = up.next().and_then(|first| {
            let (leader, term) = (
                first.core.election().leader()?,
                first.core.election().term(),
            );
            let i = *self.index.get(leader)? as usize;
            let leads = self.nodes[i].up && self.nodes[i].core.election().role() == Role::Leader;
            let all = up.all(|n| {
                n.core.election().leader() == Some(leader) && n.core.election().term() == term
            });
            (leads && all).then_some(())
        });
        if agreed.is_some() {
            report.healed_ms = Some((self.now - ends) as f64 / 1000.0);
        } else if self.cut.is_empty() {
            self.q
                .push(self.now + us(HEAL_CHECK_EVERY), Ev::HealCheck(k));
        }
    }

    /// A cut closes nothing: sessions and tokens across it stay up until zenoh's lease runs
    /// out, then every node sees each token on the other side go. The election has moved on
    /// by then; this only checks that the late news changes nothing.
    fn lease_ends(&mut self) {
        let n = self.nodes.len();
        for i in 0..n {
            let gone: Vec<NodeId> = (0..n)
                .filter(|&j| self.across_cut(i as u32, j as u32) && self.nodes[j].up)
                .map(|j| self.nodes[j].id.clone())
                .collect();
            if !self.nodes[i].up {
                continue;
            }
            for id in gone {
                self.feed(i, Input::TokenGone(id));
            }
        }
    }

    /// Whether a partition stands between two nodes.
    fn across_cut(&self, a: u32, b: u32) -> bool {
        !self.cut.is_empty() && self.cut[a as usize] != self.cut[b as usize]
    }

    /// Asks node `i`'s core for its pace, telling it first how many are up (the core keeps
    /// no member table here).
    fn retune(&mut self, i: usize) {
        let now = self.instant();
        let live = self.up_count.saturating_sub(1);
        let core = &mut self.nodes[i].core;
        core.handle(now, Input::Population(live));
        for output in core.handle(now, Input::Retune) {
            if let Output::Pace(d) = output {
                self.paced(i, d);
            }
        }
    }

    /// Node `i`'s pace is `d` from now: a changed heartbeat interval starts a new timer that
    /// fires at once, as the runtime's does.
    fn paced(&mut self, i: usize, d: Decision) {
        let before = std::mem::replace(&mut self.nodes[i].decision, d);
        if d.heartbeat_ms != before.heartbeat_ms {
            self.restart_timer(i, Timer::Heartbeat, self.now);
        }
        for timer in [Timer::Energy, Timer::Survey] {
            let interval = timer.interval_ms(&d);
            if interval != timer.interval_ms(&before) {
                self.restart_timer(i, timer, self.now + ms(interval));
            }
        }
    }

    /// Every node that is up learns how many are (a crash or a restart changed it).
    fn population_changed(&mut self) {
        let now = self.instant();
        let live = self.up_count.saturating_sub(1);
        for n in self.nodes.iter_mut().filter(|n| n.up) {
            n.core.handle(now, Input::Population(live));
        }
    }

    /// Starts `timer` of node `i` afresh, first firing at `at`.
    fn restart_timer(&mut self, i: usize, timer: Timer, at: u64) {
        let generation = &mut self.nodes[i].timers[timer as usize];
        *generation += 1;
        let ev = Ev::Timer {
            node: i as u32,
            timer,
            generation: *generation,
        };
        self.q.push(at, ev);
    }

    fn fire(&mut self, i: usize, timer: Timer) {
        match timer {
            Timer::Heartbeat => {
                // As the runtime does: the tick first, so a change is announced by its own
                // heartbeat instead of this one.
                if !self.feed(i, Input::Tick) {
                    self.send_heartbeat(i);
                }
            }
            Timer::Energy => {
                self.count_tx(i);
                let node = i as u32;
                let to: Vec<u32> = self
                    .leaders
                    .iter()
                    .copied()
                    .filter(|l| *l != node)
                    .collect();
                let msg = Rc::new(Msg::Energy);
                for l in to {
                    self.send(node, l, msg.clone(), false);
                }
            }
            Timer::Survey => self.survey(i),
        }
    }

    /// Hands one input to node `i`'s core and carries out what it asks. Returns whether
    /// role, term or leader changed.
    fn feed(&mut self, i: usize, input: Input) -> bool {
        let now = self.instant();
        let outputs = self.nodes[i].core.handle(now, input);
        let mut changed = false;
        for output in outputs {
            match output {
                Output::PersistVote { term, voted_for } => {
                    let disk = &mut self.nodes[i].disk;
                    disk.term = term;
                    disk.voted_for = Some(voted_for);
                }
                Output::PersistVoters(voters) => self.nodes[i].disk.voters = voters,
                Output::RequestVotes(req) => {
                    self.tally_tx(i);
                    let msg = Rc::new(Msg::Req(req));
                    for j in 0..self.nodes.len() as u32 {
                        if j as usize != i && self.nodes[j as usize].up {
                            self.send(i as u32, j, msg.clone(), false);
                        }
                    }
                }
                Output::Reply(reply) => {
                    self.tally_tx(i);
                    if let Some(&c) = self.index.get(&reply.candidate) {
                        self.send(i as u32, c, Rc::new(Msg::Rep(reply)), false);
                    }
                }
                Output::Changed(l) => {
                    changed = true;
                    self.role_changed(i, l.role, l.term);
                }
                // Last after a `Changed`: the new leader's pace.
                Output::Pace(d) => self.paced(i, d),
                // No stranger, no token table, no energy and no operator here
                // (`Admit::Everyone`).
                Output::Refused { .. }
                | Output::Joined(_)
                | Output::Gone(_)
                | Output::LeftCleanly { .. }
                | Output::FirstHeartbeat(_)
                | Output::EnergyKept(_)
                | Output::PersistPin(_)
                | Output::Identify(_)
                | Output::CommandRefused { .. }
                // Who hears whom is the simulated network's (`refresh_hearing`).
                | Output::Subscribe(_)
                | Output::Resubscribe(_)
                // Not asked for (`NodeCore::with_snapshots`): nobody reads them here.
                | Output::Snapshot(_) => {}
            }
        }
        if changed {
            self.send_heartbeat(i);
        }
        self.schedule_wake(i);
        self.refresh_hearing(i);
        changed
    }

    fn role_changed(&mut self, i: usize, role: Role, term: u64) {
        if role != self.nodes[i].role {
            self.account_role(i);
            self.nodes[i].role = role;
        }
        if role == Role::Leader {
            self.leaders.insert(i as u32);
            self.nodes[i].next_announce = self.now;
            self.nodes[i].announce_now = true;
            self.elections += 1;
            self.first_leader.get_or_insert(self.now);
            let id = self.nodes[i].id.clone();
            self.checker.observe(term, &id);
            // Elected while the cut stands: an election just after the heal is the heal's.
            let on_majority = !self.cut.is_empty() && !self.cut[i];
            if on_majority
                && let Some(p) = self.partitions.last_mut()
                && p.new_leader_ms.is_none()
                && p.healed_ms.is_none()
                && term > p.term_before
            {
                let start = us(Duration::from_secs_f64(p.at_s));
                p.new_leader_ms = Some((self.now.saturating_sub(start)) as f64 / 1000.0);
            }
            if let Some((crashed_at, old_term)) = self.pending_failover
                && term > old_term
            {
                self.failovers.push((self.now - crashed_at) as f64 / 1000.0);
                self.pending_failover = None;
            }
        } else {
            self.leaders.remove(&(i as u32));
        }
    }

    fn account_role(&mut self, i: usize) {
        let now = self.now;
        let n = &mut self.nodes[i];
        let held = now.saturating_sub(n.role_since);
        match n.role {
            Role::Leader => n.counters.leading_us += held,
            Role::Follower | Role::Candidate => n.counters.following_us += held,
            Role::Observer => {}
        }
        n.role_since = now;
    }

    fn schedule_wake(&mut self, i: usize) {
        let Some(at) = self.nodes[i].core.election().next_wakeup() else {
            return;
        };
        let at = at.as_micros().max(self.now);
        let n = &mut self.nodes[i];
        if n.wake_at.is_none_or(|w| at < w) {
            n.wake_at = Some(at);
            self.q.push(at, Ev::Wake { node: i as u32 });
        }
    }

    fn refresh_hearing(&mut self, i: usize) {
        let now = self.instant();
        let n = &self.nodes[i];
        if n.up && n.core.election().hears_everyone(now) {
            self.everyone.insert(i as u32);
        } else {
            self.everyone.remove(&(i as u32));
        }
    }

    /// Node `i` sent a message: counted, and told to its core for its pace.
    fn count_tx(&mut self, i: usize) {
        self.tally_tx(i);
        let now = self.instant();
        self.nodes[i].core.handle(now, Input::Sent(1));
    }

    /// Node `i` sent a vote: its core counted that itself.
    fn tally_tx(&mut self, i: usize) {
        self.nodes[i].counters.tx += 1;
        if let Some(s) = self.second() {
            s.sent += 1;
        }
    }

    /// The next heartbeat of node `i`; advances its sequence number.
    fn heartbeat(&mut self, i: usize) -> Heartbeat {
        let now = self.instant();
        let n = &mut self.nodes[i];
        n.core.next_heartbeat(now, n.decision.heartbeat_ms)
    }

    /// A heartbeat goes to whoever subscribes to it: every node that hears everyone, and the
    /// sender's followers. A leader also announces itself to every member on `swarm/<s>/leader`
    /// (a message of its own, as in the runtime) when it is new, and every `ANNOUNCE_EVERY`
    /// while the swarm is large.
    fn send_heartbeat(&mut self, i: usize) {
        let hb = self.heartbeat(i);
        self.count_tx(i);
        let leads = hb.role == Role::Leader;
        let msg = Rc::new(Msg::Hb(hb));
        let from = i as u32;
        if leads {
            let now = self.instant();
            let announce = self.now >= self.nodes[i].next_announce
                && (self.nodes[i].announce_now || self.nodes[i].core.election().announces(now));
            if self.now >= self.nodes[i].next_announce {
                self.nodes[i].next_announce = self.now + us(ANNOUNCE_EVERY);
                self.nodes[i].announce_now = false;
            }
            let announcement = announce.then(|| {
                let core = &self.nodes[i].core;
                let info = LeaderInfo {
                    heir: core.election().heir(now),
                    ..core.leader_info(now, None)
                };
                Rc::new(Msg::Announce(info))
            });
            if announce {
                self.count_tx(i);
            }
            let me = self.nodes[i].id.clone();
            for j in 0..self.nodes.len() {
                if j == i || !self.nodes[j].up {
                    continue;
                }
                let follows = self.nodes[j].core.election().leader() == Some(&me);
                if follows || self.everyone.contains(&(j as u32)) {
                    self.send(from, j as u32, msg.clone(), false);
                }
                if let Some(a) = &announcement {
                    self.send(from, j as u32, a.clone(), false);
                }
            }
        } else {
            let to: Vec<u32> = self
                .everyone
                .iter()
                .copied()
                .filter(|j| *j != from)
                .collect();
            for j in to {
                self.send(from, j, msg.clone(), false);
            }
        }
    }

    /// Anti-entropy: in a small swarm every member answers; in a large one the leader alone
    /// serves the swarm's view.
    fn survey(&mut self, i: usize) {
        self.count_tx(i);
        let from = i as u32;
        let to: Vec<u32> = if self.everyone.contains(&from) {
            (0..self.nodes.len() as u32)
                .filter(|j| *j != from && self.nodes[*j as usize].up)
                .collect()
        } else {
            self.leaders
                .iter()
                .copied()
                .filter(|j| *j != from)
                .collect()
        };
        let msg = Rc::new(Msg::SurveyQuery);
        for j in to {
            self.send(from, j, msg.clone(), false);
        }
    }

    fn send(&mut self, from: u32, to: u32, msg: Rc<Msg>, reliable: bool) {
        if self.across_cut(from, to) {
            return;
        }
        if !reliable && self.cfg.loss > 0.0 && self.rand() < self.cfg.loss {
            return;
        }
        let jitter = 0.5 + self.rand();
        let at = self.now + us(self.cfg.latency.mul_f64(jitter));
        self.q.push(at, Ev::Deliver { from, to, msg });
    }

    fn deliver(&mut self, from: u32, to: u32, msg: &Msg) {
        let j = to as usize;
        if !self.nodes[j].up {
            return;
        }
        let leading = self.nodes[j].role == Role::Leader;
        let c = &mut self.nodes[j].counters;
        if leading {
            c.rx_leading += 1;
        } else {
            c.rx_following += 1;
        }
        if let Some(s) = self.second() {
            s.received += 1;
            if leading {
                s.leader_received += 1;
            }
        }
        let from_id = self.nodes[from as usize].id.clone();
        match msg {
            Msg::Announce(info) => {
                self.feed(j, Input::LeaderInfo(info.clone()));
            }
            Msg::Hb(hb) => {
                let hb = hb.clone();
                self.feed(j, Input::Heartbeat { from: from_id, hb });
            }
            Msg::Req(req) => {
                let vote = Vote::Request(req.clone());
                self.feed(
                    j,
                    Input::Vote {
                        from: from_id,
                        vote,
                    },
                );
            }
            Msg::Rep(reply) => {
                let vote = Vote::Reply(reply.clone());
                self.feed(
                    j,
                    Input::Vote {
                        from: from_id,
                        vote,
                    },
                );
            }
            Msg::Gone(node) => {
                let gone = self.nodes[*node as usize].id.clone();
                self.feed(j, Input::TokenGone(gone));
            }
            Msg::Energy => {}
            Msg::SurveyQuery => {
                self.count_tx(j);
                let now = self.instant();
                let answer = leading.then(|| self.nodes[j].core.leader_info(now, None));
                self.send(to, from, Rc::new(Msg::SurveyReply(answer)), false);
            }
            Msg::SurveyReply(answer) => {
                if let Some(info) = answer.clone() {
                    self.feed(j, Input::LeaderInfo(info));
                }
            }
        }
    }

    fn crash_leader(&mut self) {
        let Some(&l) = self
            .leaders
            .iter()
            .max_by_key(|l| self.nodes[**l as usize].core.election().term())
        else {
            return;
        };
        let i = l as usize;
        let term = self.nodes[i].core.election().term();
        self.account_role(i);
        self.nodes[i].up = false;
        self.nodes[i].role = Role::Follower;
        self.up_count -= 1;
        self.population_changed();
        self.leaders.remove(&l);
        self.everyone.remove(&l);
        if self.pending_failover.replace((self.now, term)).is_some() {
            self.unfinished += 1;
        }
        let msg = Rc::new(Msg::Gone(l));
        for j in 0..self.nodes.len() as u32 {
            if j != l && self.nodes[j as usize].up {
                self.send(l, j, msg.clone(), true);
            }
        }
        self.q
            .push(self.now + us(RESTART_AFTER), Ev::Restart { node: l });
    }

    fn restart(&mut self, i: usize) {
        let now = self.instant();
        let seed = self.cfg.seed ^ (self.now.wrapping_mul(0x2545_F491) + i as u64);
        let n = &mut self.nodes[i];
        n.core = NodeCore::new(
            n.id.clone(),
            self.cfg.settings.clone(),
            n.disk.clone(),
            now,
            seed,
            Admit::Everyone,
        )
        .with_pacing(pacing(&self.cfg));
        n.decision = configured(&self.cfg.cadence);
        n.up = true;
        n.role = Role::Follower;
        n.role_since = self.now;
        n.wake_at = None;
        self.up_count += 1;
        self.population_changed();
        if self.cfg.adaptive {
            self.retune(i);
        }
        self.start_node(i as u32);
        // The runtime asks who leads as it starts.
        self.survey(i);
    }

    fn report(&self, wall: Duration) -> Report {
        let counters: Vec<NodeCounters> = self.nodes.iter().map(|n| n.counters.clone()).collect();
        let (f_rx, f_rx_max, f_tx, l_rx, l_tx) = rates(&counters);
        let secs = self.cfg.duration.as_secs_f64().max(1e-9);
        let sent: u64 = counters.iter().map(|c| c.tx).sum();
        let leader_rx_max = self
            .series
            .iter()
            .map(|s| s.leader_received as f64)
            .fold(0.0, f64::max);
        // The median follower's: a few may be in another mode than the rest.
        let mut follower_hbs: Vec<u32> = self
            .nodes
            .iter()
            .filter(|n| n.up && n.role != Role::Leader)
            .map(|n| n.decision.heartbeat_ms)
            .collect();
        follower_hbs.sort_unstable();
        let follower_hb = follower_hbs.get(follower_hbs.len() / 2).copied();
        let mut modes = std::collections::BTreeMap::new();
        for n in self.nodes.iter().filter(|n| n.up) {
            *modes.entry(n.decision.mode.to_string()).or_insert(0) += 1;
        }
        let leader_hb = self
            .leaders
            .iter()
            .next()
            .map(|l| self.nodes[*l as usize].decision.heartbeat_ms);
        Report {
            nodes: self.cfg.nodes,
            duration_s: self.cfg.duration.as_secs(),
            seed: self.cfg.seed,
            loss_pct: self.cfg.loss * 100.0,
            latency_ms: self.cfg.latency.as_secs_f64() * 1000.0,
            adaptive: self.cfg.adaptive,
            first_leader_ms: self.first_leader.map(|t| t as f64 / 1000.0),
            failovers: self.failovers.len(),
            failover_ms: self.failovers.clone(),
            failover_ms_max: self.failovers.iter().copied().reduce(f64::max),
            failovers_unfinished: self.unfinished,
            partitions: self.partitions.clone(),
            split_brain: self.checker.violations().len(),
            elections: self.elections,
            follower_rx_per_s_mean: f_rx,
            follower_rx_per_s_max: f_rx_max,
            follower_tx_per_s_mean: f_tx,
            leader_rx_per_s_mean: l_rx,
            leader_rx_per_s_max: if self.cfg.series { leader_rx_max } else { l_rx },
            leader_tx_per_s_mean: l_tx,
            msgs_per_node_hour: sent as f64 / self.cfg.nodes.max(1) as f64 / secs * 3600.0,
            follower_heartbeat_ms: follower_hb,
            leader_heartbeat_ms: leader_hb,
            modes,
            wall_ms: wall.as_millis() as u64,
        }
    }
}

/// Intervals with the controller off: the configured base ones.
/// A node's pace: adaptive, or the configured intervals (`--fixed`).
fn pacing(cfg: &SimConfig) -> Pacing {
    if cfg.adaptive {
        Pacing::adaptive(cfg.cadence.clone(), None)
    } else {
        Pacing::fixed(&cfg.cadence)
    }
}
