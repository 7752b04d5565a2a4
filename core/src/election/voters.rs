//! The voter set: eligible nodes seen within the membership window. A crashed node stays
//! counted until the window ends, so a minority cut off from the rest can never reach quorum;
//! a node that said Leave is removed at once.

use crate::clock::At;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::time::Duration;
use swarm_bus::NodeId;

#[derive(Debug, Clone)]
pub struct Voters {
    window: Duration,
    last_seen: BTreeMap<NodeId, At>,
    /// Bumped whenever a voter is added or removed, so callers can tell a change without
    /// comparing whole sets on every heartbeat.
    generation: u64,
}

impl Voters {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            last_seen: BTreeMap::new(),
            generation: 0,
        }
    }

    /// Returns true when `id` is a new voter.
    pub fn seen(&mut self, id: &NodeId, now: At) -> bool {
        // Known voters are the common case: no id copied for them.
        if let Some(t) = self.last_seen.get_mut(id) {
            *t = now;
            return false;
        }
        self.last_seen.insert(id.clone(), now);
        self.generation += 1;
        true
    }

    /// Returns true when `id` was a voter.
    pub fn left(&mut self, id: &NodeId) -> bool {
        let was = self.last_seen.remove(id).is_some();
        self.generation += u64::from(was);
        was
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.last_seen.keys().cloned().collect()
    }

    /// How many voters other than `me` are held: those inside the window, and any that left
    /// it since the last `forget_older_than_window` (at most a tick ago, so a majority is
    /// reckoned on a few too many at worst, never too few). Constant time: a candidate of a
    /// large swarm asks after every one of its thousands of replies.
    pub fn others(&self, me: &NodeId) -> usize {
        self.last_seen.len() - usize::from(self.last_seen.contains_key(me))
    }

    /// Voters still inside the window (the caller counts itself separately).
    pub fn current(&self, now: At) -> impl Iterator<Item = &NodeId> {
        self.last_seen
            .iter()
            .filter(move |(_, t)| now.saturating_duration_since(**t) <= self.window)
            .map(|(id, _)| id)
    }

    /// Votes needed, counting `me` as a voter too.
    pub fn quorum(&self, now: At, me: &NodeId) -> usize {
        let others = self.current(now).filter(|id| *id != me).count();
        let voters = others + 1;
        voters / 2 + 1
    }

    pub fn forget_older_than_window(&mut self, now: At) {
        let window = self.window;
        let before = self.last_seen.len();
        self.last_seen
            .retain(|_, t| now.saturating_duration_since(*t) <= window);
        self.generation += (before - self.last_seen.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn crashed_voters_count_until_the_window_ends_and_leavers_at_once_not() {
        let t0 = At::from_millis(1_000_000);
        let me = id("a");
        let mut v = Voters::new(Duration::from_secs(600));
        assert_eq!(v.quorum(t0, &me), 1);
        for peer in ["b", "c", "d", "e"] {
            v.seen(&id(peer), t0);
        }
        assert_eq!(v.quorum(t0, &me), 3);
        // Two crash: still 5 voters, so the 3 left form a majority and 2 would not.
        assert_eq!(v.quorum(t0 + Duration::from_secs(599), &me), 3);
        assert_eq!(v.quorum(t0 + Duration::from_secs(601), &me), 1);
        v.left(&id("e"));
        assert_eq!(v.quorum(t0, &me), 3, "4 voters need 3");
        v.left(&id("d"));
        assert_eq!(v.quorum(t0, &me), 2);
    }
}
