//! The core's snapshot published on the `watch` channel, with the shell's own wall-clock facts
//! (when it last sent a heartbeat, when it learnt of the leader, whether it has joined).

use super::Shell;
use std::time::Duration;
use swarm_node::node::Snapshot;

/// How often the core hands out a snapshot when only samples and counters changed; a change of
/// leadership or membership goes out at once.
pub(super) const VIEW_EVERY: Duration = Duration::from_millis(100);

impl Shell {
    /// Publishes the core's snapshot.
    pub(super) fn show(&mut self, s: Snapshot) {
        let v = &mut self.view;
        (v.role, v.term, v.leader) = (s.leadership.role, s.leadership.term, s.leadership.leader);
        v.seq = s.seq;
        v.set_cadence(&s.pace);
        v.energy = s.energy;
        v.peers = s.members;
        (v.voters, v.answers_for_swarm) = (s.voters, s.answers_for_swarm);
        self.view_tx.send_replace(self.view.clone());
    }
}
