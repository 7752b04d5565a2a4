//! Loss from heartbeat sequence gaps, over a sliding window, across all peers.

use super::windows::Windows;
use std::collections::HashMap;
use swarm_bus::NodeId;

/// A jump this far back means the peer restarted and counts from 0 again.
const RESTART_GAP: u64 = 1_000;

#[derive(Debug, Clone, Default)]
struct Window {
    received: u64,
    lost: u64,
}

#[derive(Debug, Clone)]
pub struct LossTracker {
    last_seq: HashMap<NodeId, u64>,
    windows: Windows<Window>,
}

impl LossTracker {
    pub fn new(window_ms: u64) -> Self {
        Self {
            last_seq: HashMap::new(),
            windows: Windows::new(window_ms),
        }
    }

    /// A heartbeat from `peer` with sequence number `seq` arrived.
    pub fn heartbeat(&mut self, peer: &NodeId, seq: u64, now_ms: u64) {
        let current = self.windows.current(now_ms);
        current.received += 1;
        let Some(last) = self.last_seq.get_mut(peer) else {
            self.last_seq.insert(peer.clone(), seq);
            return;
        };
        if seq > *last {
            let gap = seq - *last - 1;
            if gap < RESTART_GAP {
                current.lost += gap;
            }
            *last = seq;
        } else if last.saturating_sub(seq) >= RESTART_GAP || seq == 0 {
            *last = seq;
        }
        // Otherwise a duplicate or a late arrival: counted as received, changes nothing else.
    }

    /// The peer left: its next heartbeat starts a fresh sequence.
    pub fn forget(&mut self, peer: &NodeId) {
        self.last_seq.remove(peer);
    }

    /// Lost over expected, in the current and the previous window; 0 without data.
    pub fn loss_rate(&mut self, now_ms: u64) -> f64 {
        let (current, previous) = self.windows.both(now_ms);
        let lost = current.lost + previous.lost;
        let expected = lost + current.received + previous.received;
        if expected == 0 {
            0.0
        } else {
            lost as f64 / expected as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn gaps_count_as_loss_and_age_out() {
        let mut t = LossTracker::new(10_000);
        let a = id("a");
        for (i, seq) in [0u64, 1, 2, 4, 5, 8, 9].into_iter().enumerate() {
            t.heartbeat(&a, seq, i as u64 * 100);
        }
        // 7 received, 3 missing (3, 6, 7).
        assert!((t.loss_rate(1000) - 0.3).abs() < 1e-9);
        assert_eq!(
            t.loss_rate(25_000),
            0.0,
            "two windows later it is forgotten"
        );
    }

    #[test]
    fn duplicates_reordering_and_restarts_are_not_loss() {
        let mut t = LossTracker::new(10_000);
        let a = id("a");
        for seq in [10, 11, 11, 10, 12] {
            t.heartbeat(&a, seq, 0);
        }
        t.heartbeat(&a, 0, 1); // restarted
        t.heartbeat(&a, 1, 2);
        assert_eq!(t.loss_rate(3), 0.0);
        t.forget(&a);
        t.heartbeat(&a, 500, 4);
        assert_eq!(t.loss_rate(5), 0.0, "a returning peer starts afresh");
    }
}
