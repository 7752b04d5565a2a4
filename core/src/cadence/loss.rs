//! Loss from heartbeat sequence gaps, over a sliding window, across all peers.
//!
//! A gap counts as loss only as far as time allows: the heartbeats missing between two from the
//! same peer are at most the sequence gap less one, and at most the number of the sender's
//! advertised intervals (`cadence_ms`) that fit in the time between their arrivals, rounded to
//! the nearest, less one. A sender that jumps its sequence number (5, then 1,000,000) on time
//! thus counts no loss; the rest of the jump is ignored and the peer's sequence resynchronised.
//! A real loss leaves a time gap of about two intervals and still counts as one.

use super::windows::Windows;
use alloc::collections::BTreeMap;
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
    /// Each peer's last sequence number and when it arrived. One entry per peer heard since it
    /// last left (`forget`): the caller feeds admitted members only.
    last: BTreeMap<NodeId, (u64, u64)>,
    /// An advertised interval shorter than this is taken as this long, so a sender claiming a
    /// tiny cadence cannot make a short pause look like many lost heartbeats.
    min_interval_ms: u64,
    windows: Windows<Window>,
}

impl LossTracker {
    /// Loss over windows of `window_ms`; no advertised interval is taken as shorter than
    /// `min_interval_ms` (at least 1 ms).
    pub fn new(window_ms: u64, min_interval_ms: u64) -> Self {
        Self {
            last: BTreeMap::new(),
            min_interval_ms: min_interval_ms.max(1),
            windows: Windows::new(window_ms),
        }
    }

    /// A heartbeat from `peer` with sequence number `seq`, advertising the interval
    /// `cadence_ms`, arrived at `now_ms`. A `cadence_ms` of 0 lets no loss be inferred.
    pub fn heartbeat(&mut self, peer: &NodeId, seq: u64, cadence_ms: u32, now_ms: u64) {
        let min_interval_ms = self.min_interval_ms;
        let current = self.windows.current(now_ms);
        current.received = current.received.saturating_add(1);
        let Some((last_seq, last_at)) = self.last.get_mut(peer) else {
            self.last.insert(peer.clone(), (seq, now_ms));
            return;
        };
        if seq > *last_seq {
            let gap = seq - *last_seq - 1;
            let allowed = if cadence_ms == 0 {
                0
            } else {
                let interval = u64::from(cadence_ms).max(min_interval_ms);
                let elapsed = now_ms.saturating_sub(*last_at);
                // Intervals elapsed, rounded to the nearest: an arrival up to half an interval
                // late is on time, one about two intervals after the last had one missing.
                let intervals = elapsed.saturating_add(interval / 2) / interval;
                intervals.saturating_sub(1)
            };
            current.lost = current.lost.saturating_add(gap.min(allowed));
            (*last_seq, *last_at) = (seq, now_ms);
        } else if last_seq.saturating_sub(seq) >= RESTART_GAP || seq == 0 {
            (*last_seq, *last_at) = (seq, now_ms);
        }
        // Otherwise a duplicate or a late arrival: counted as received, changes nothing else.
    }

    /// The peer left: its next heartbeat starts a fresh sequence.
    pub fn forget(&mut self, peer: &NodeId) {
        self.last.remove(peer);
    }

    /// Lost over expected, in the current and the previous window; 0 without data.
    pub fn loss_rate(&mut self, now_ms: u64) -> f64 {
        let (current, previous) = self.windows.both(now_ms);
        let lost = current.lost.saturating_add(previous.lost);
        let expected = lost
            .saturating_add(current.received)
            .saturating_add(previous.received);
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

    fn tracker() -> LossTracker {
        LossTracker::new(10_000, 250)
    }

    #[test]
    fn gaps_count_as_loss_and_age_out() {
        let mut t = tracker();
        let a = id("a");
        // Every 500 ms, so the missing ones leave a time gap too.
        for seq in [0u64, 1, 2, 4, 5, 8, 9] {
            t.heartbeat(&a, seq, 500, seq * 500);
        }
        // 7 received, 3 missing (3, 6, 7).
        assert!((t.loss_rate(5_000) - 0.3).abs() < 1e-9);
        assert_eq!(
            t.loss_rate(30_000),
            0.0,
            "two windows later it is forgotten"
        );
    }

    #[test]
    fn duplicates_reordering_and_restarts_are_not_loss() {
        let mut t = tracker();
        let a = id("a");
        for seq in [10, 11, 11, 10, 12] {
            t.heartbeat(&a, seq, 500, 0);
        }
        t.heartbeat(&a, 0, 500, 1); // restarted
        t.heartbeat(&a, 1, 500, 2);
        assert_eq!(t.loss_rate(3), 0.0);
        t.forget(&a);
        t.heartbeat(&a, 500, 500, 4);
        assert_eq!(t.loss_rate(5), 0.0, "a returning peer starts afresh");
    }

    #[test]
    fn a_sequence_jump_on_time_is_not_loss() {
        let mut t = tracker();
        let a = id("a");
        let mut now = 0;
        for seq in [
            1, 2, 3, 4, 5, 1_000_000, 1_000_001, 1_000_900, 1_001_800, 1_001_801,
        ] {
            t.heartbeat(&a, seq, 500, now);
            // On time, give or take a fifth of the interval.
            now += if seq % 2 == 0 { 400 } else { 600 };
        }
        assert_eq!(t.loss_rate(now), 0.0);
        // Two intervals of silence let one be missing, however far the sequence jumped.
        t.heartbeat(&a, 2_000_000, 500, now + 500);
        let rate = t.loss_rate(now + 500);
        assert!((rate - 1.0 / 12.0).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn real_loss_still_counts_as_far_as_time_allows() {
        let mut t = tracker();
        let (honest, jumpy) = (id("honest"), id("jumpy"));
        let mut jumpy_seq = 0u64;
        for slot in 0..200u64 {
            // Arrivals up to 100 ms early or late.
            let at = slot * 500 + [0, 100, 50, 0, 100][(slot % 5) as usize];
            if slot % 5 == 0 {
                // Every fifth heartbeat lost; the jumpy peer's next also skips 500 numbers.
                jumpy_seq += 500;
                continue;
            }
            jumpy_seq += 1;
            t.heartbeat(&honest, slot, 500, at);
            t.heartbeat(&jumpy, jumpy_seq, 500, at);
        }
        let rate = t.loss_rate(99_999);
        assert!((rate - 0.2).abs() < 0.01, "{rate}");
    }

    #[test]
    fn extreme_and_backward_sequences_and_times_never_panic_nor_count() {
        let mut t = tracker();
        let a = id("a");
        let seqs = [
            1,
            2,
            u64::MAX - 600,
            u64::MAX,
            u64::MAX,
            u64::MAX - 5,
            0,
            1,
            u64::MAX,
            3,
        ];
        let mut now = 1_000;
        for seq in seqs {
            t.heartbeat(&a, seq, 500, now);
            now += 500;
        }
        assert_eq!(t.loss_rate(now), 0.0);
        // Time going backwards, and advertised intervals of 0 and u32::MAX.
        t.heartbeat(&a, 10, 500, 0);
        t.heartbeat(&a, 900, 0, now + 1_000);
        t.heartbeat(&a, 1_800, u32::MAX, now + 2_000);
        assert_eq!(t.loss_rate(now + 2_000), 0.0);
        // Ages apart, a jump to u64::MAX is allowed by time: a huge count, saturated, no panic.
        t.heartbeat(&a, u64::MAX, 1, u64::MAX / 2);
        let rate = t.loss_rate(u64::MAX / 2);
        assert!(rate > 0.99 && rate <= 1.0, "{rate}");
    }
}
