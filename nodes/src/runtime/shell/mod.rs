//! The shell around the node's core: it owns the core, the bus and the timers, and on each
//! [`Wake`] feeds the core and carries out what it says. What a node decides about the swarm
//! is in `swarm_node::node::NodeCore`; the shell only moves it to and from the world.
//!
//! - `start.rs`: opening the bus and joining the swarm;
//! - `listen.rs`: waiting for the next `Wake`;
//! - `effects.rs`: the core's outputs carried out, and what a change of leadership sets off;
//! - `chores.rs`: the periodic work (energy samples, anti-entropy surveys);
//! - `snapshot.rs`: the core's snapshot published for the queryables, `/metrics` and the
//!   task service;
//! - `leave.rs`: a clean stop.

mod chores;
mod effects;
mod leave;
mod listen;
mod snapshot;
mod start;

use super::answers::Held;
use super::anti_entropy::Findings;
use super::board_service::BoardService;
use super::pace::Pace;
use super::proposals;
use super::tasks::TaskService;
use super::view::NodeView;
use super::vote_store::VoteStore;
use super::wake::Wake;
use super::wiring::Bus;
use crate::energy::sampler::Sampler;
use std::path::PathBuf;
use swarm_bus::zenoh::DropCounters;
use swarm_bus::{Leaf, NodeId, Role, SwarmKeys};
use swarm_core::clock::{At, Epoch};
use swarm_node::node::{Input, Leadership, NodeCore};
use tokio::sync::{mpsc, watch};
use tokio::time::Interval;

/// The loop's own timers; the cadence's are in `Pace`. Few, and in step: each timer that
/// fires on its own wakes the process (docs/protocol.md#quiet).
pub struct Ticks {
    /// Asks the core whether to change pace, and tells the task service the voter set.
    pub retune: Interval,
    pub save: Interval,
    /// Polled only while this node announces itself (the leader of a large swarm).
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
    /// An energy sample is due and goes out with the next heartbeat.
    energy_waiting: bool,
    /// Membership changes taken in a row ahead of everything else (listen.rs).
    members_streak: u8,
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
    /// The snapshot as last published: the core's `Output::Snapshot` and the shell's own
    /// wall-clock facts.
    view: NodeView,
    view_tx: watch::Sender<NodeView>,
    /// The cores' clock: `At`s are microseconds since the node started.
    pub epoch: Epoch,
    gco2_per_kwh: f32,
    low_battery_pct: u8,
    /// Held for their lifetime: queryables, the relay and the metrics server.
    _held: Held,
}

impl Shell {
    /// Now, on the cores' clock.
    pub fn now(&self) -> At {
        self.epoch.at_now()
    }

    /// Carries out one wake-up; `Stop` is the caller's.
    pub async fn handle(&mut self, wake: Wake) {
        let changed = match wake {
            Wake::ElectionDue => self.feed(Input::Tick).await,
            Wake::HeartbeatDue => {
                // The tick first: a leader thawed after SIGSTOP steps down before it speaks.
                let mut changed = self.feed(Input::Tick).await;
                if changed.is_none() && std::mem::take(&mut self.energy_waiting) {
                    changed = self.energy_due().await;
                }
                if changed.is_none() {
                    self.send_heartbeat().await;
                }
                changed
            }
            // A sample due at least two heartbeats apart waits for the next heartbeat, so both
            // leave in one batch: one packet and one acknowledgement instead of two of each.
            // Faster sampling, or a sample already waiting, goes at once: none is skipped.
            Wake::EnergyDue => {
                let pace = self.core.pace();
                if pace.energy_ms >= pace.heartbeat_ms.saturating_mul(2) && !self.energy_waiting {
                    self.energy_waiting = true;
                    None
                } else {
                    self.energy_waiting = false;
                    self.energy_due().await
                }
            }
            Wake::SurveyDue => {
                self.survey();
                None
            }
            Wake::Surveyed(found) => self.surveyed(found).await,
            Wake::RetuneDue => {
                // The voter set changes without a change of leadership; the task service
                // hears it on the same tick, and is woken only when it changed.
                self.update_tasks();
                self.feed(Input::Retune).await
            }
            Wake::SaveDue => {
                self.sampler.save();
                None
            }
            Wake::AnnounceDue => {
                if self.core.election().announces(self.now()) {
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
            Wake::Core(Input::Heartbeat { from, hb }) => {
                let cadence = hb.cadence_ms;
                let changed = self
                    .feed(Input::Heartbeat {
                        from: from.clone(),
                        hb,
                    })
                    .await;
                let since = self.pace.last_beat.elapsed().as_millis();
                let since = u64::try_from(since).unwrap_or(u64::MAX);
                if changed.is_none() && self.core.answers_leader(&from, cadence, since) {
                    self.send_heartbeat().await;
                    self.pace.heartbeat.reset();
                }
                changed
            }
            Wake::Core(input) => self.feed(input).await,
            Wake::Command(cmd) => self.feed(Input::Command(cmd)).await,
            Wake::Stop(_) => None,
        };
        if let Some(l) = changed {
            self.took_office_or_left_it(l).await;
        }
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
            let outputs = self.core.handle(self.now(), input);
            if let Some(l) = self.carry_out(outputs).await {
                changed = Some(l);
            }
        }
        changed
    }
}
