//! The shell around the node's core: it owns the core, the bus and the timers, starts them,
//! and on each [`Wake`] feeds the core and carries out what it says. What a node decides about
//! the swarm is in `swarm_node::node::NodeCore`; this file only moves it to and from the world.

use super::answers::{self, AbortOnDrop, Held};
use super::anti_entropy::{self, Findings};
use super::board_service::BoardService;
use super::heartbeat_feed::Want;
use super::pace::Pace;
use super::tasks::{self, TaskService};
use super::view::{NodeView, PeerView};
use super::vote_store::VoteStore;
use super::wake::Wake;
use super::wiring::Bus;
use super::{commands, pin_store, proposals};
use crate::config::{Config, default_state_dir};
use crate::energy::{new_sampler, sampler::Sampler};
use anyhow::Context;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use swarm_bus::clock::unix_ms;
use swarm_bus::zenoh::{self as bus, DropCounters, worth_logging};
use swarm_bus::{Energy, LeaderInfo, Leaf, Leave, NodeId, Role, SwarmKeys};
use swarm_node::node::{Admit, Input, Leadership, NodeCore, Output};
use tokio::sync::{mpsc, watch};
use tokio::time::{Interval, MissedTickBehavior};

/// A congested link must not hold up a stop.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the cumulative energy total is written: rarely, to spare SD cards.
const SAVE_EVERY: Duration = Duration::from_secs(60);
/// How often the task service hears the voter set (leadership changes reach it at once).
const TASKS_EVERY: Duration = Duration::from_secs(1);
/// How often the snapshot is published when only samples and counters changed; a change of
/// leadership or membership is published at once.
const VIEW_EVERY: Duration = Duration::from_millis(100);

/// The loop's own timers; the cadence's are in `Pace`.
pub struct Ticks {
    pub retune: Interval,
    pub save: Interval,
    pub tasks: Interval,
    pub announce: Interval,
}

pub struct Shell {
    pub core: NodeCore,
    pub pace: Pace,
    pub bus: Bus,
    pub ticks: Ticks,
    pub surveys: mpsc::Receiver<Findings>,
    survey_tx: mpsc::Sender<Findings>,
    survey_running: bool,
    id: NodeId,
    keys: SwarmKeys,
    state_dir: PathBuf,
    session: zenoh::Session,
    drops: DropCounters,
    store: VoteStore,
    sampler: Sampler,
    board: BoardService,
    bridge: Option<swarm_bridge::Bridge>,
    token: Option<zenoh::liveliness::LivelinessToken>,
    tasks: Option<TaskService>,
    /// The snapshot this loop keeps and publishes; the core's parts are filled in on publish.
    view: NodeView,
    view_tx: watch::Sender<NodeView>,
    view_dirty: bool,
    view_urgent: bool,
    view_published: Instant,
    gco2_per_kwh: f32,
    low_battery_pct: u8,
    /// Held for their lifetime: queryables, the relay and the metrics server.
    _held: Held,
}

impl Shell {
    pub async fn start(config: Config, id: NodeId) -> anyhow::Result<Shell> {
        let keys = SwarmKeys::new(config.node.swarm.clone());
        let state_dir = config
            .node
            .state_dir
            .clone()
            .unwrap_or_else(|| default_state_dir(&id));
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("creating state directory {}", state_dir.display()))?;
        // Before the session opens: a damaged vote record must stop the node before it can vote.
        let store = VoteStore::open(&state_dir)?;
        let now = Instant::now();
        let core = NodeCore::new(
            id.clone(),
            config.election_settings(),
            store.loaded().clone(),
            now,
            random_seed(),
            Admit::Members {
                max_members: config.limits.max_members,
            },
        );
        let mut sampler = new_sampler(&config.energy, &state_dir);
        let mut view = NodeView::new(
            id.clone(),
            config.node.class,
            config.consensus.heartbeat_interval_ms,
            now,
        );
        view.energy = Some(sampler.sample(now));
        let (view_tx, view_rx) = watch::channel(view.clone());

        let session = bus::open(&config.zenoh).await?;
        let drops = DropCounters::default();
        let gco2_per_kwh = config.energy.carbon_intensity_gco2_kwh;
        let tls = config.zenoh.tls_dir.is_some();
        let mut held =
            answers::serve(&session, &keys, &id, &view_rx, &drops, gco2_per_kwh, tls).await?;
        let bus = Bus::open(&session, &keys, &id, &drops).await?;
        let token = bus::declare_token(&session, &keys, &id).await?;
        let bridge = if config.bridge.enabled {
            Some(
                swarm_bridge::run_bridge(session.clone(), keys.swarm().clone(), &config.bridge)
                    .await?,
            )
        } else {
            None
        };
        if let Some(feed) = bridge.as_ref().and_then(|b| b.gateway_power.clone()) {
            sampler.measure_with(feed);
        }
        let pace = Pace::new(&config, pin_store::load(&state_dir));
        let board = BoardService::start(&config.board)?;
        if let Some(addr) = config.metrics.listen {
            let snapshot = answers::metrics_snapshot(
                view_rx.clone(),
                drops.clone(),
                pace.sent_total(),
                &keys,
                gco2_per_kwh,
                board.inputs.clone(),
                bridge.as_ref().map(|b| b.stats.clone()),
            );
            let (bound, task) = crate::metrics::server::serve(addr, snapshot).await?;
            tracing::info!(%bound, "serving Prometheus metrics on /metrics");
            held.push(Box::new(AbortOnDrop(task)));
        }
        let (survey_tx, surveys) = mpsc::channel(1);
        let mut shell = Shell {
            core,
            pace,
            bus,
            ticks: Ticks {
                retune: delayed(super::pace::RETUNE_EVERY),
                save: tokio::time::interval(SAVE_EVERY),
                tasks: delayed(TASKS_EVERY),
                announce: tokio::time::interval(swarm_node::scale::ANNOUNCE_EVERY),
            },
            surveys,
            survey_tx,
            survey_running: false,
            id: id.clone(),
            keys: keys.clone(),
            state_dir: state_dir.clone(),
            session: session.clone(),
            drops: drops.clone(),
            store,
            sampler,
            board,
            bridge,
            token: Some(token),
            tasks: None,
            view,
            view_tx,
            view_dirty: true,
            view_urgent: true,
            view_published: now,
            gco2_per_kwh,
            low_battery_pct: config.energy.low_power_threshold_percent,
            _held: held,
        };
        shell.view.set_cadence(&shell.pace.decision());
        shell.join().await;
        shell.tasks = Some(
            tasks::start(tasks::Context {
                session,
                keys,
                me: id.clone(),
                settings: config.tasks.clone(),
                view: view_rx,
                drops,
                low_battery_pct: config.energy.low_power_threshold_percent,
            })
            .await?,
        );
        shell.publish_view();
        tracing::info!(
            id = %id, swarm = %shell.keys.swarm(), class = %config.node.class,
            state_dir = %state_dir.display(), "node running"
        );
        Ok(shell)
    }

    /// Who is a member first, then who leads: only members' answers on who leads count.
    async fn join(&mut self) {
        let members = anti_entropy::members(&self.session, &self.keys).await;
        self.feed_all(members.into_iter().map(Input::TokenAppeared))
            .await;
        let infos = anti_entropy::who_leads(&self.session, &self.keys).await;
        if let Some(l) = self
            .feed_all(infos.into_iter().map(Input::LeaderInfo))
            .await
        {
            log_leadership(&l);
            self.view_since(&l);
        }
    }

    /// Carries out one wake-up; `Stop` is the caller's.
    pub async fn handle(&mut self, wake: Wake) {
        let changed = match wake {
            Wake::ElectionDue => self.feed(Input::Tick).await,
            Wake::HeartbeatDue => {
                // The tick first: a leader thawed after SIGSTOP steps down before it speaks.
                let changed = self.feed(Input::Tick).await;
                if changed.is_none() {
                    self.send_heartbeat().await;
                }
                changed
            }
            Wake::EnergyDue => self.energy_due().await,
            Wake::SurveyDue => {
                self.survey();
                None
            }
            Wake::Surveyed(found) => self.surveyed(found).await,
            Wake::RetuneDue => {
                if let Some(d) = self.pace.retune() {
                    tracing::info!(mode = %d.mode, pinned = d.pinned, heartbeat_ms = d.heartbeat_ms, energy_ms = d.energy_ms, "cadence");
                    self.view.set_cadence(&d);
                    self.view_dirty = true;
                }
                None
            }
            Wake::SaveDue => {
                self.sampler.save();
                None
            }
            Wake::TasksDue => {
                self.update_tasks();
                None
            }
            Wake::AnnounceDue => {
                if self.core.election().announces(Instant::now()) {
                    self.announce().await;
                }
                None
            }
            Wake::BallotCall(q) => {
                let local = swarm_node::proposals::Local {
                    battery_pct: self
                        .view
                        .energy
                        .as_ref()
                        .filter(|e| e.charging != Some(true))
                        .and_then(|e| e.battery_pct),
                    low_battery_pct: self.low_battery_pct,
                };
                let key = self.keys.node_leaf(&self.id, Leaf::Ballot);
                proposals::vote(q, &key, local).await;
                None
            }
            Wake::Proposal(q) => {
                // Only the leader answers; anyone else lets the query go unanswered.
                let l = self.core.leadership();
                if l.role == Role::Leader
                    && let Some(ballot) = self.bus.proposals.open(q).await
                {
                    let voters = self.core.election().voter_ids();
                    let (session, keys) = (self.session.clone(), self.keys.clone());
                    tokio::spawn(proposals::decide(session, keys, l.term, voters, ballot));
                }
                None
            }
            Wake::Core(input) => self.feed(input).await,
            Wake::Command(cmd) => {
                if cmd.op == swarm_bus::CommandOp::Identify {
                    self.board.identify(cmd.arg);
                } else if let Some(d) = commands::obey(&cmd, &mut self.pace, &self.state_dir) {
                    tracing::info!(mode = %d.mode, pinned = d.pinned, heartbeat_ms = d.heartbeat_ms, "cadence set by command");
                    self.view.set_cadence(&d);
                    self.view_dirty = true;
                }
                None
            }
            Wake::Stop(_) => None,
        };
        if let Some(l) = changed {
            self.took_office_or_left_it(l).await;
        }
        self.follow_the_election().await;
        self.publish_view();
    }

    /// Feeds one input to the core and carries out what it says; returns the new leadership
    /// when it changed.
    async fn feed(&mut self, input: Input) -> Option<Leadership> {
        self.feed_all(std::iter::once(input)).await
    }

    /// Feeds inputs one after another; returns the last change of leadership, if any.
    async fn feed_all(&mut self, inputs: impl IntoIterator<Item = Input>) -> Option<Leadership> {
        let mut changed = None;
        for input in inputs {
            let outputs = self.core.handle(Instant::now(), input);
            if let Some(l) = self.carry_out(outputs).await {
                changed = Some(l);
            }
        }
        changed
    }

    /// The one place the core's outputs meet the world. Stores what must be stored before
    /// sending what follows it; once a write fails, nothing that depended on it leaves.
    async fn carry_out(&mut self, outputs: Vec<Output>) -> Option<Leadership> {
        let mut changed = None;
        let mut unsafe_to_send = false;
        for output in outputs {
            match output {
                Output::PersistVote { term, voted_for } => {
                    if let Err(e) = self.store.vote(term, voted_for) {
                        tracing::error!("vote not stored, so not sent: {e}");
                        unsafe_to_send = true;
                    }
                }
                Output::PersistVoters(voters) => {
                    if let Err(e) = self.store.voters(voters) {
                        tracing::error!("voter set not stored, so no vote sent: {e}");
                        unsafe_to_send = true;
                    }
                }
                Output::RequestVotes(req) if !unsafe_to_send => {
                    tracing::debug!(
                        term = req.term,
                        pre_vote = req.pre_vote,
                        voters = req.voters,
                        "asking for votes"
                    );
                    self.pace.sent(1);
                    if let Err(e) = self.bus.vote_requests.put(&req).await {
                        tracing::warn!("{e}");
                    }
                }
                Output::Reply(reply) if !unsafe_to_send => {
                    tracing::debug!(candidate = %reply.candidate, term = reply.term, pre_vote = reply.pre_vote, granted = reply.granted, "vote");
                    let key = self.keys.vote_reply(&self.id, &reply.candidate);
                    self.pace.sent(1);
                    if let Err(e) = bus::publish_droppable(&self.session, &key, &reply).await {
                        tracing::warn!("{e}");
                    }
                }
                Output::RequestVotes(_) | Output::Reply(_) => {}
                Output::Changed(l) => changed = Some(l),
                Output::Refused { from, what, why } => {
                    let n = self.drops.count_refused(why);
                    if worth_logging(n) {
                        tracing::warn!(peer = %from, reason = %why, count = n, "refused a {what}");
                    }
                }
                Output::Joined(peer) => {
                    tracing::info!(%peer, "peer joined");
                    self.members_changed();
                }
                Output::Gone(peer) => {
                    tracing::info!(%peer, "peer gone (liveliness token withdrawn)");
                    self.pace.peer_left(&peer);
                    self.members_changed();
                }
                Output::LeftCleanly { peer, term } => {
                    tracing::info!(%peer, term, "peer left cleanly");
                    self.members_changed();
                }
                Output::FirstHeartbeat(peer) => {
                    tracing::info!(%peer, "first heartbeat from peer");
                    self.members_changed();
                }
                Output::PeerHeartbeat {
                    from,
                    seq,
                    cadence_ms,
                } => self.pace.heartbeat_from(&from, seq, cadence_ms),
                Output::EnergyKept(_) => self.view_dirty = true,
            }
        }
        changed
    }

    fn members_changed(&mut self) {
        let live = self.core.members().map_or(0, |m| m.len());
        self.pace.members(live);
        (self.view_dirty, self.view_urgent) = (true, true);
    }

    /// Role, term or leader changed: said at once with a heartbeat, and a new leader gathers
    /// the swarm's energy and announces itself.
    async fn took_office_or_left_it(&mut self, l: Leadership) {
        log_leadership(&l);
        let leads = l.role == Role::Leader;
        self.pace.leader(leads);
        let had_energies = self.bus.energies.is_some();
        self.bus
            .gather_energy(&self.session, &self.keys, leads, &self.drops)
            .await;
        if leads && !had_energies {
            // The survey asks every member's energy now, so the swarm total is whole
            // before the members' next samples come in.
            self.pace.anti_entropy.reset_immediately();
        }
        self.view_since(&l);
        // A new leader takes the election's pace before its first heartbeat goes out.
        if let Some(d) = self.pace.retune() {
            self.view.set_cadence(&d);
        }
        self.update_tasks();
        self.send_heartbeat().await;
        self.pace.heartbeat.reset();
        if leads {
            // Whatever the swarm's size: followers of a large one hear only this.
            self.follow_the_election().await;
            self.announce().await;
            self.ticks.announce.reset();
        }
    }

    /// When this node learnt of the current leader (Unix ms), kept across heartbeats.
    fn view_since(&mut self, l: &Leadership) {
        self.view.leader_since_ms = leader_since(&self.view, l, unix_ms());
        self.view.role = l.role;
        self.view.term = l.term;
        self.view.leader = l.leader.clone();
        (self.view_dirty, self.view_urgent) = (true, true);
    }

    async fn energy_due(&mut self) -> Option<Leadership> {
        let sample = self.sampler.sample(Instant::now());
        let low = is_low_battery(&sample, self.low_battery_pct);
        self.pace.battery(&sample);
        if let Err(e) = self.bus.energy.put(&sample).await {
            tracing::warn!("{e}");
        }
        self.pace.sent(1);
        self.view.energy = Some(sample);
        self.view_dirty = true;
        self.publish_view_now();
        let total = self
            .view_tx
            .borrow()
            .swarm_energy(unix_ms(), self.gco2_per_kwh);
        if let Some(total) = total {
            if let Err(e) = self.bus.swarm_energy.put(&total).await {
                tracing::warn!("{e}");
            }
            self.pace.sent(1);
        }
        self.feed(Input::LowBattery(low)).await
    }

    /// Anti-entropy, off the loop so a slow reply never delays a heartbeat.
    fn survey(&mut self) {
        if self.survey_running {
            return;
        }
        self.survey_running = true;
        let (session, keys, tx) = (
            self.session.clone(),
            self.keys.clone(),
            self.survey_tx.clone(),
        );
        let leads = self.bus.energies.is_some();
        tokio::spawn(async move {
            let found = anti_entropy::survey(session, keys, leads).await;
            let _ = tx.send(found).await;
        });
    }

    async fn surveyed(&mut self, found: Findings) -> Option<Leadership> {
        self.survey_running = false;
        let members = found.members.into_iter().map(Input::TokenAppeared);
        let energies = found
            .energies
            .into_iter()
            .map(|(from, sample)| Input::PeerEnergy { from, sample });
        let leaders = found.leaders.into_iter().map(Input::LeaderInfo);
        self.feed_all(members.chain(energies).chain(leaders)).await
    }

    fn update_tasks(&self) {
        if let Some(t) = &self.tasks {
            let l = self.core.leadership();
            t.update(tasks::Ctl {
                leads: l.role == Role::Leader,
                term: l.term,
                leader: l.leader,
                voters: self.core.election().voter_ids(),
            });
        }
    }

    /// Subscribes to the heartbeats the election now needs, and answers for the swarm only
    /// when it hears everyone (docs/protocol.md#scale).
    async fn follow_the_election(&mut self) {
        let now = Instant::now();
        let election = self.core.election();
        let everyone = election.hears_everyone(now);
        let want = Want::from(everyone, election.leader(), election.me());
        let voters = election.announced_voters(now);
        if let Err(e) = self
            .bus
            .heartbeats
            .follow(&self.session, &self.keys, want)
            .await
        {
            tracing::warn!("{e}");
        }
        if (self.view.answers_for_swarm, self.view.voters) != (everyone, voters) {
            (self.view.answers_for_swarm, self.view.voters) = (everyone, voters);
            (self.view_dirty, self.view_urgent) = (true, true);
        }
    }

    async fn send_heartbeat(&mut self) {
        let hb = self
            .core
            .next_heartbeat(Instant::now(), self.view.cadence_ms);
        self.view.seq = hb.seq;
        self.view.last_heartbeat_ms = unix_ms();
        self.view_dirty = true;
        if let Err(e) = self.bus.heartbeat.put(&hb).await {
            tracing::warn!("{e}");
        }
        self.pace.sent(1);
    }

    async fn announce(&mut self) {
        let now = Instant::now();
        let info = LeaderInfo {
            heir: self.core.election().heir(now),
            ..self.core.leader_info(now, self.view.leader_since_ms)
        };
        if let Err(e) = self.bus.announcer.put(&info).await {
            tracing::warn!("{e}");
        }
        self.pace.sent(1);
    }

    /// Publishes the snapshot if it changed: at once after a change of leadership or
    /// membership, at most every `VIEW_EVERY` otherwise.
    fn publish_view(&mut self) {
        if self.view_dirty && (self.view_urgent || self.view_published.elapsed() >= VIEW_EVERY) {
            self.publish_view_now();
        }
    }

    fn publish_view_now(&mut self) {
        let l = self.core.leadership();
        (self.view.role, self.view.term, self.view.leader) = (l.role, l.term, l.leader);
        self.view.peers = self
            .core
            .members()
            .into_iter()
            .flat_map(|m| m.iter())
            .map(|(id, p)| {
                let heard = p.last_heartbeat.as_ref();
                let peer = PeerView {
                    heard: heard.is_some(),
                    class: heard.map(|(_, hb)| hb.class),
                    energy: p.energy.clone(),
                };
                (id.clone(), peer)
            })
            .collect();
        self.view_tx.send_replace(self.view.clone());
        (self.view_dirty, self.view_urgent) = (false, false);
        self.view_published = Instant::now();
    }

    /// A clean stop: Leave, hand over if this node led, withdraw the token, close.
    pub async fn leave(mut self) -> anyhow::Result<()> {
        // Handlers still running stop with the node; their tasks go to others with its token.
        drop(self.tasks.take());
        if let Some(voters) = self.core.unsaved_voters()
            && let Err(e) = self.store.voters(voters)
        {
            tracing::warn!("voter set not stored on stop: {e}");
        }
        let l = self.core.leadership();
        let led =
            l.role == Role::Leader && self.core.members().is_some_and(|m| !m.live().is_empty());
        let leave_key = self.keys.node_leaf(&self.id, Leaf::Leave);
        let leave = Leave { term: l.term };
        let sent = tokio::time::timeout(
            LEAVE_TIMEOUT,
            bus::publish(&self.session, &leave_key, &leave),
        );
        let left = match sent.await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!("{e}");
                false
            }
            Err(_) => {
                tracing::warn!("Leave not sent within {LEAVE_TIMEOUT:?}; peers rely on the token");
                false
            }
        };
        if led && left {
            let bus = &self.bus;
            let heard = super::handoff::successor_heard(
                &bus.heartbeats,
                &bus.announcements,
                &self.id,
                l.term,
            );
            if heard.await {
                tracing::info!("a successor leads; closing");
            } else {
                let wait = super::handoff::HANDOFF_TIMEOUT;
                tracing::info!("no successor heard within {wait:?}; closing");
            }
        }
        // Devices leave with the node that carried them.
        drop(self.bridge.take());
        if let Some(token) = self.token.take()
            && let Err(e) = token.undeclare().await
        {
            tracing::warn!("undeclaring liveliness token: {e}");
        }
        self.sampler.save();
        // Withdraw interest before closing, so peers stop sending to a session that is going
        // away.
        let Shell {
            session,
            drops,
            bus,
            _held,
            ..
        } = self;
        drop((bus, _held));
        if let Err(e) = session.close().await {
            tracing::warn!("closing zenoh session: {e}");
        }
        tracing::info!(dropped = drops.total(), "stopped");
        Ok(())
    }
}

fn delayed(every: Duration) -> Interval {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}

/// Every change of role, term or leader, in one format: operators and the partition tests
/// read a node's part in the election from these lines.
pub fn log_leadership(l: &Leadership) {
    tracing::info!(role = %l.role, term = l.term, leader = ?l.leader.as_ref().map(NodeId::as_str), "election");
}

/// When this node learnt of the leader `l` names: kept while the leader and term stay.
fn leader_since(before: &NodeView, l: &Leadership, unix_ms: u64) -> Option<u64> {
    match &l.leader {
        None => None,
        Some(_) if l.leader == before.leader && l.term == before.term => before.leader_since_ms,
        Some(_) => Some(unix_ms),
    }
}

/// On battery (not charging) and below the threshold: this node should not lead while a
/// better candidate is around.
fn is_low_battery(sample: &Energy, threshold_pct: u8) -> bool {
    sample.charging != Some(true) && sample.battery_pct.is_some_and(|p| p < threshold_pct)
}

/// Different on every start, so nodes started together draw different timeouts.
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::DeviceClass;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn low_battery_means_on_battery_below_the_threshold() {
        let sample = |pct: Option<u8>, charging: Option<bool>| Energy {
            battery_pct: pct,
            charging,
            ..swarm_bus::samples::energy()
        };
        assert!(is_low_battery(&sample(Some(15), Some(false)), 20));
        assert!(is_low_battery(&sample(Some(15), None), 20));
        assert!(
            !is_low_battery(&sample(Some(15), Some(true)), 20),
            "charging"
        );
        assert!(!is_low_battery(&sample(Some(20), Some(false)), 20));
        assert!(
            !is_low_battery(&sample(None, None), 20),
            "mains, no battery"
        );
    }

    #[test]
    fn leader_since_moves_only_with_a_new_leader_or_term() {
        let mut v = NodeView::new(id("a"), DeviceClass::Full, 500, Instant::now());
        let mut step = |role, term, leader: Option<&str>, at| {
            let l = Leadership {
                role,
                term,
                leader: leader.map(id),
            };
            v.leader_since_ms = leader_since(&v, &l, at);
            (v.role, v.term, v.leader) = (l.role, l.term, l.leader);
            v.leader_since_ms
        };
        assert_eq!(step(Role::Follower, 3, Some("b"), 100), Some(100));
        assert_eq!(step(Role::Follower, 3, Some("b"), 200), Some(100));
        assert_eq!(step(Role::Leader, 4, Some("a"), 300), Some(300));
        assert_eq!(step(Role::Follower, 5, None, 400), None);
    }
}
