//! The core's outputs carried out, and what a change of leadership sets off.

use super::Shell;
use crate::runtime::pin_store;
use crate::runtime::tasks;
use crate::runtime::view::NodeView;
use swarm_bus::clock::unix_ms;
use swarm_bus::zenoh::{self as bus, worth_logging};
use swarm_bus::{LeaderInfo, NodeId, Role};
use swarm_node::node::{Input, Leadership, Output};

impl Shell {
    /// The one place the core's outputs meet the world. Stores what must be stored before
    /// sending what follows it; once a write fails, nothing that depended on it leaves.
    pub(super) async fn carry_out(&mut self, outputs: Vec<Output>) -> Option<Leadership> {
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
                    // The core counted it for its pace; this is for `/metrics`.
                    self.pace.count_sent(1);
                    if let Err(e) = self.bus.vote_requests.put(&req).await {
                        tracing::warn!("{e}");
                    }
                }
                Output::Reply(reply) if !unsafe_to_send => {
                    tracing::debug!(candidate = %reply.candidate, term = reply.term, pre_vote = reply.pre_vote, granted = reply.granted, "vote");
                    let key = self.keys.vote_reply(&self.id, &reply.candidate);
                    // The core counted it for its pace; this is for `/metrics`.
                    self.pace.count_sent(1);
                    if let Err(e) = bus::publish_droppable(&self.session, &key, &reply).await {
                        tracing::warn!("{e}");
                    }
                }
                Output::RequestVotes(_) | Output::Reply(_) => {}
                Output::Changed(l) => {
                    self.view.leader_since_ms = leader_since(&self.view, &l, unix_ms());
                    (self.view.role, self.view.term, self.view.leader) =
                        (l.role, l.term, l.leader.clone());
                    changed = Some(l);
                }
                Output::Refused { from, what, why } => {
                    let n = self.drops.count_refused(why);
                    if worth_logging(n) {
                        tracing::warn!(peer = %from, reason = %why, count = n, "refused a {what}");
                    }
                }
                Output::Joined(peer) => tracing::info!(%peer, "peer joined"),
                Output::Gone(peer) => {
                    tracing::info!(%peer, "peer gone (liveliness token withdrawn)");
                }
                Output::LeftCleanly { peer, term } => {
                    tracing::info!(%peer, term, "peer left cleanly");
                }
                Output::FirstHeartbeat(peer) => tracing::info!(%peer, "first heartbeat from peer"),
                Output::EnergyKept(_) => {}
                Output::Pace(d) => {
                    if self.pace.apply(d) {
                        tracing::info!(mode = %d.mode, pinned = d.pinned, heartbeat_ms = d.heartbeat_ms, energy_ms = d.energy_ms, "cadence");
                    }
                }
                Output::PersistPin(mode) => {
                    tracing::info!(?mode, "cadence pinned by command");
                    if let Err(e) = pin_store::save(&self.state_dir, mode) {
                        tracing::warn!("keeping the pinned cadence: {e}; it holds until restart");
                    }
                }
                Output::Identify(seconds) => self.board.identify(seconds),
                Output::CommandRefused { op, arg, why } => {
                    tracing::warn!(%op, arg, "command refused: {why}");
                }
                Output::Subscribe(want) => {
                    let (session, keys) = (&self.session, &self.keys);
                    if let Err(e) = self.bus.heartbeats.follow(session, keys, want).await {
                        tracing::warn!("{e}");
                    }
                }
                Output::Resubscribe(want) => {
                    tracing::warn!(
                        ?want,
                        "hearing no leader that others hear: declaring the heartbeat subscription anew"
                    );
                    let (session, keys) = (&self.session, &self.keys);
                    if let Err(e) = self.bus.heartbeats.refollow(session, keys, want).await {
                        tracing::warn!("{e}");
                    }
                }
                Output::Snapshot(s) => self.show(*s),
            }
        }
        changed
    }

    /// `count` messages left this node: for `/metrics`, and for the core's measure of its
    /// own sending (whose only output is a snapshot that fell due).
    pub(super) fn sent(&mut self, count: u64) {
        self.pace.count_sent(count);
        let now = self.now();
        for output in self.core.handle(now, Input::Sent(count)) {
            if let Output::Snapshot(s) = output {
                self.show(*s);
            }
        }
    }

    /// Role, term or leader changed: said at once with a heartbeat, and a new leader gathers
    /// the swarm's energy and announces itself.
    pub(super) async fn took_office_or_left_it(&mut self, l: Leadership) {
        log_leadership(&l);
        let leads = l.role == Role::Leader;
        let had_energies = self.bus.energies.is_some();
        self.bus
            .gather_energy(&self.session, &self.keys, leads, &self.drops)
            .await;
        if leads && !had_energies {
            // The survey asks every member's energy now, so the swarm total is whole
            // before the members' next samples come in.
            self.pace.anti_entropy.reset_immediately();
        }
        // Its pace came with the change (`Output::Pace`), so the heartbeat below goes out at
        // the new interval.
        self.update_tasks();
        self.send_heartbeat().await;
        self.pace.heartbeat.reset();
        if leads {
            // Whatever the swarm's size: followers of a large one hear only this.
            self.announce().await;
            self.ticks.announce.reset();
        }
    }

    pub(super) fn update_tasks(&self) {
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

    pub(super) async fn send_heartbeat(&mut self) {
        let hb = self
            .core
            .next_heartbeat(self.now(), self.core.pace().heartbeat_ms);
        // Shown with the next snapshot, which the new seq makes due.
        self.view.last_heartbeat_ms = unix_ms();
        self.pace.last_beat = tokio::time::Instant::now();
        if let Err(e) = self.bus.heartbeat.put(&hb).await {
            tracing::warn!("{e}");
        }
        self.sent(1);
    }

    pub(super) async fn announce(&mut self) {
        let now = self.now();
        let info = LeaderInfo {
            heir: self.core.election().heir(now),
            ..self.core.leader_info(now, self.view.leader_since_ms)
        };
        if let Err(e) = self.bus.announcer.put(&info).await {
            tracing::warn!("{e}");
        }
        self.sent(1);
    }
}

/// Every change of role, term or leader, in one format: operators and the partition tests
/// read a node's part in the election from these lines.
pub(super) fn log_leadership(l: &Leadership) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use swarm_bus::DeviceClass;

    pub(super) fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    pub(super) fn leader_since_moves_only_with_a_new_leader_or_term() {
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
