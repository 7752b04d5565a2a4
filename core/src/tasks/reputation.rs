//! How often each worker's answers agreed with the swarm's decisions on replicated tasks
//! (docs/tasks.md#reputation). It weighs a worker's vote in `Weighted` and, below a floor,
//! keeps the worker out of replicated tasks. Bounded twice: the last `HISTORY` outcomes per
//! worker, and at most `max_workers` workers. It forgets too: an outcome older than
//! `memory` no longer counts, so a worker dropped for a bad spell is chosen again later.

use crate::clock::At;
use alloc::collections::{BTreeMap, VecDeque};
use core::time::Duration;
use swarm_bus::NodeId;

/// Outcomes kept per worker.
pub const HISTORY: usize = 32;
/// Workers with a record at most: one more makes the stalest make room.
pub const MAX_WORKERS: usize = 1024;
/// How long an outcome counts.
pub const MEMORY: Duration = Duration::from_secs(3600);
/// The score below which a worker is not chosen for replicated tasks, unless configured.
pub const FLOOR: f64 = 0.5;

/// A worker with no history counts as this many agreements: a newcomer is trusted, and one
/// disagreement does not drop it.
const PRIOR: u32 = 2;

#[derive(Debug, Clone)]
pub struct Reputation {
    workers: BTreeMap<NodeId, VecDeque<(At, bool)>>,
    max_workers: usize,
    memory: Duration,
    floor: f64,
}

/// A worker's record, for `status` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    pub agreed: u32,
    pub decided: u32,
    /// In [0, 1]: what its vote weighs.
    pub score: f64,
    /// Still chosen for replicated tasks.
    pub eligible: bool,
}

impl Reputation {
    /// `floor`: the score below which a worker is not chosen for replicated tasks.
    pub fn new(max_workers: usize, memory: Duration, floor: f64) -> Self {
        Self {
            workers: BTreeMap::new(),
            max_workers: max_workers.max(1),
            memory,
            floor: if floor.is_nan() {
                0.0
            } else {
                floor.clamp(0.0, 1.0)
            },
        }
    }

    /// Whether `worker`'s answer agreed with a decision made at `now`.
    pub fn record(&mut self, now: At, worker: &NodeId, agreed: bool) {
        if !self.workers.contains_key(worker) && self.workers.len() >= self.max_workers {
            self.forget_old(now);
            if self.workers.len() >= self.max_workers {
                // The worker heard from longest ago makes room.
                let stalest = self
                    .workers
                    .iter()
                    .min_by_key(|(_, h)| h.back().map(|(at, _)| *at))
                    .map(|(id, _)| id.clone());
                if let Some(id) = stalest {
                    self.workers.remove(&id);
                }
            }
        }
        let history = self.workers.entry(worker.clone()).or_default();
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back((now, agreed));
    }

    pub fn standing(&self, now: At, worker: &NodeId) -> Standing {
        let (agreed, decided) = self.workers.get(worker).map_or((0, 0), |h| {
            h.iter()
                .filter(|(at, _)| self.counts(now, *at))
                .fold((0u32, 0u32), |(a, d), (_, ok)| (a + u32::from(*ok), d + 1))
        });
        let score = f64::from(agreed + PRIOR) / f64::from(decided + PRIOR);
        Standing {
            agreed,
            decided,
            score,
            eligible: score >= self.floor,
        }
    }

    /// What `worker`'s vote weighs now.
    pub fn score(&self, now: At, worker: &NodeId) -> f64 {
        self.standing(now, worker).score
    }

    pub fn eligible(&self, now: At, worker: &NodeId) -> bool {
        self.standing(now, worker).eligible
    }

    /// Every worker with a record.
    pub fn workers(&self) -> impl Iterator<Item = &NodeId> {
        self.workers.keys()
    }

    /// Drops the outcomes too old to count, and the workers left with none.
    pub fn forget_old(&mut self, now: At) {
        let memory = self.memory;
        self.workers.retain(|_, h| {
            while h
                .front()
                .is_some_and(|(at, _)| now.saturating_duration_since(*at) > memory)
            {
                h.pop_front();
            }
            !h.is_empty()
        });
    }

    fn counts(&self, now: At, at: At) -> bool {
        now.saturating_duration_since(at) <= self.memory
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_newcomer_is_trusted_and_a_dissenter_drops_below_the_floor() {
        let mut r = Reputation::new(8, HOUR, 0.5);
        let (w, t) = (id("w"), At::from_millis(1_000));
        assert_eq!(r.score(t, &w), 1.0);
        r.record(t, &w, false);
        assert!(r.eligible(t, &w), "one disagreement does not drop it");
        r.record(t, &w, false);
        assert!(r.eligible(t, &w), "2 of 4 is the floor itself");
        r.record(t, &w, false);
        let s = r.standing(t, &w);
        assert_eq!((s.agreed, s.decided, s.eligible), (0, 3, false));
        assert!((s.score - 0.4).abs() < 1e-9);
    }

    #[test]
    fn old_outcomes_stop_counting_so_a_dropped_worker_comes_back() {
        let mut r = Reputation::new(8, HOUR, 0.5);
        let (w, t) = (id("w"), At::from_millis(1_000));
        for _ in 0..5 {
            r.record(t, &w, false);
        }
        assert!(!r.eligible(t, &w));
        let later = t + HOUR + Duration::from_secs(1);
        assert!(r.eligible(later, &w));
        r.forget_old(later);
        assert_eq!(r.workers().count(), 0, "nothing left to keep");
    }

    #[test]
    fn the_history_and_the_table_are_bounded() {
        let mut r = Reputation::new(3, HOUR, 0.5);
        let t = At::from_millis(1_000);
        let w = id("w");
        for _ in 0..HISTORY * 3 {
            r.record(t, &w, true);
        }
        assert_eq!(r.standing(t, &w).decided, HISTORY as u32);
        for i in 0..100u64 {
            r.record(
                t + Duration::from_millis(i),
                &id(&alloc::format!("x{i}")),
                true,
            );
        }
        assert_eq!(r.workers().count(), 3);
        assert!(
            r.workers().any(|x| *x == id("x99")),
            "the newest stays, the stalest made room"
        );
    }

    #[test]
    fn a_nonsense_floor_is_clamped() {
        let t = At::from_millis(1);
        assert!(Reputation::new(1, HOUR, f64::NAN).eligible(t, &id("w")));
        let mut r = Reputation::new(1, HOUR, 7.0);
        assert!(
            r.eligible(t, &id("w")),
            "a newcomer scores 1, the floor is at most 1"
        );
        r.record(t, &id("w"), false);
        assert!(!r.eligible(t, &id("w")));
    }
}
