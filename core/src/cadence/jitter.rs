//! Arrival jitter: how far apart consecutive heartbeats of a peer arrive, compared with the
//! interval that peer advertises, averaged over a sliding window across all peers.

use super::windows::Windows;
use alloc::collections::BTreeMap;
use swarm_bus::NodeId;

/// Fewer samples than this say nothing: one late heartbeat is not a jittery network.
const MIN_SAMPLES: u64 = 8;
/// One sample counts at most this much, so a single pause (a peer stopped for a while) cannot
/// outweigh everything else in the window.
const MAX_DEVIATION: f64 = 2.0;

#[derive(Debug, Clone, Default)]
struct Sum {
    samples: u64,
    deviation: f64,
}

#[derive(Debug, Clone)]
pub struct JitterTracker {
    /// Each peer's last sequence number and when it arrived.
    last: BTreeMap<NodeId, (u64, u64)>,
    windows: Windows<Sum>,
}

impl JitterTracker {
    pub fn new(window_ms: u64) -> Self {
        Self {
            last: BTreeMap::new(),
            windows: Windows::new(window_ms),
        }
    }

    /// A heartbeat from `peer` with sequence number `seq`, advertising `cadence_ms`, arrived.
    /// Only back-to-back heartbeats are compared: a gap is the loss tracker's business.
    pub fn heartbeat(&mut self, peer: &NodeId, seq: u64, cadence_ms: u32, now_ms: u64) {
        let previous = self.last.get(peer).copied();
        if let Some((last_seq, last_at)) = previous
            && seq == last_seq + 1
            && cadence_ms > 0
        {
            let gap = now_ms.saturating_sub(last_at) as f64;
            let interval = f64::from(cadence_ms);
            let sum = self.windows.current(now_ms);
            sum.samples += 1;
            sum.deviation += ((gap - interval).abs() / interval).min(MAX_DEVIATION);
        }
        match self.last.get_mut(peer) {
            Some(last) if seq > last.0 => *last = (seq, now_ms),
            Some(_) => {}
            None => {
                self.last.insert(peer.clone(), (seq, now_ms));
            }
        }
    }

    /// The peer left: its next heartbeat is compared with nothing.
    pub fn forget(&mut self, peer: &NodeId) {
        self.last.remove(peer);
    }

    /// Mean deviation of arrival gaps from the advertised interval, as a share of it (0.5: half
    /// an interval early or late on average); 0 with too few samples.
    pub fn jitter(&mut self, now_ms: u64) -> f64 {
        let (current, previous) = self.windows.both(now_ms);
        let samples = current.samples + previous.samples;
        if samples < MIN_SAMPLES {
            return 0.0;
        }
        (current.deviation + previous.deviation) / samples as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn steady_arrivals_have_no_jitter_and_erratic_ones_do() {
        let mut t = JitterTracker::new(10_000);
        let a = id("a");
        for seq in 0..20 {
            t.heartbeat(&a, seq, 500, seq * 500);
        }
        assert!(t.jitter(10_000) < 1e-9);

        let mut t = JitterTracker::new(10_000);
        // Alternately 250 ms and 750 ms apart: half an interval off every time.
        let mut now = 0;
        for seq in 0..20 {
            now += if seq % 2 == 0 { 250 } else { 750 };
            t.heartbeat(&a, seq, 500, now);
        }
        assert!((t.jitter(now) - 0.5).abs() < 1e-9, "{}", t.jitter(now));
    }

    #[test]
    fn gaps_duplicates_and_few_samples_are_not_jitter() {
        let mut t = JitterTracker::new(10_000);
        let a = id("a");
        for seq in [0, 1, 1, 5, 6] {
            t.heartbeat(&a, seq, 500, seq * 500);
        }
        assert_eq!(t.jitter(3_000), 0.0, "too few samples to judge");
        for seq in 7..40 {
            t.heartbeat(&a, seq, 500, seq * 500);
        }
        assert!(t.jitter(20_000) < 1e-9, "the gap 1 -> 5 was not compared");
    }
}
