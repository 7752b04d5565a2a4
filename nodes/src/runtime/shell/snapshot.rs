//! The read-only snapshot: built from the core and the shell's own state, published on a
//! `watch` channel.

use super::Shell;
use crate::runtime::view::PeerView;
use std::time::{Duration, Instant};

/// How often the snapshot is published when only samples and counters changed; a change of
/// leadership or membership is published at once.
const VIEW_EVERY: Duration = Duration::from_millis(100);

impl Shell {
    /// Publishes the snapshot if it changed: at once after a change of leadership or
    /// membership, at most every `VIEW_EVERY` otherwise.
    pub(super) fn publish_view(&mut self) {
        if self.view_dirty && (self.view_urgent || self.view_published.elapsed() >= VIEW_EVERY) {
            self.publish_view_now();
        }
    }

    pub(super) fn publish_view_now(&mut self) {
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
}
