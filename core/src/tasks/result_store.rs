//! The bounded store of task results on the nodes that hold the task table: at most
//! `max_entries` results and `max_bytes` of output, none older than `ttl`; when full, the
//! policy picks what goes. Pure: the caller passes the clock.

use crate::clock::At;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::time::Duration;
use swarm_bus::{TaskId, TaskResult};

/// What a full store drops first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Eviction {
    /// The least recently stored or read.
    #[default]
    Lru,
    /// The least often read (then the oldest).
    Lfu,
    /// The first stored.
    Fifo,
    /// The nearest to its expiry. With one TTL for all, the oldest, as FIFO.
    Ttl,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResultBounds {
    pub max_entries: usize,
    pub max_bytes: usize,
    pub ttl: Duration,
    pub policy: Eviction,
}

impl Default for ResultBounds {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: 64 * 1024 * 1024,
            ttl: Duration::from_secs(24 * 3600),
            policy: Eviction::Lru,
        }
    }
}

/// What an entry costs besides its output: ids, figures, the map's own.
const ENTRY_OVERHEAD: usize = 128;

#[derive(Debug)]
struct Entry {
    result: TaskResult,
    size: usize,
    stored_at: At,
    stored: u64,
    used: u64,
    reads: u64,
}

#[derive(Debug)]
pub struct ResultStore {
    limits: ResultBounds,
    entries: BTreeMap<TaskId, Entry>,
    bytes: usize,
    clock: u64,
}

impl ResultStore {
    pub fn new(limits: ResultBounds) -> Self {
        Self {
            limits,
            entries: BTreeMap::new(),
            bytes: 0,
            clock: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Stores (or replaces) a result; returns the ids evicted to make room. The newest result
    /// always stays, even alone over `max_bytes`: it is the one someone is waiting for.
    pub fn put(&mut self, now: At, id: TaskId, result: TaskResult) -> Vec<TaskId> {
        let mut evicted = self.expire(now);
        self.remove(&id);
        self.clock += 1;
        let size = result.output.as_bytes().len() + ENTRY_OVERHEAD;
        while !self.entries.is_empty()
            && (self.entries.len() >= self.limits.max_entries.max(1)
                || self.bytes + size > self.limits.max_bytes)
        {
            let Some(victim) = self.victim() else { break };
            self.remove(&victim);
            evicted.push(victim);
        }
        self.bytes += size;
        self.entries.insert(
            id,
            Entry {
                result,
                size,
                stored_at: now,
                stored: self.clock,
                used: self.clock,
                reads: 0,
            },
        );
        evicted
    }

    /// A result, counted as a use; `None` once evicted or expired.
    pub fn get(&mut self, now: At, id: &TaskId) -> Option<&TaskResult> {
        if self
            .entries
            .get(id)
            .is_some_and(|e| now.saturating_duration_since(e.stored_at) >= self.limits.ttl)
        {
            self.remove(id);
            return None;
        }
        self.clock += 1;
        let clock = self.clock;
        let e = self.entries.get_mut(id)?;
        e.used = clock;
        e.reads += 1;
        Some(&e.result)
    }

    /// A result, not counted as a use (for copying the table, not for a reader).
    pub fn peek(&self, id: &TaskId) -> Option<&TaskResult> {
        self.entries.get(id).map(|e| &e.result)
    }

    /// Drops what has outlived the TTL; returns their ids.
    pub fn expire(&mut self, now: At) -> Vec<TaskId> {
        let ttl = self.limits.ttl;
        let old: Vec<TaskId> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.stored_at) >= ttl)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &old {
            self.remove(id);
        }
        old
    }

    fn remove(&mut self, id: &TaskId) {
        if let Some(e) = self.entries.remove(id) {
            self.bytes -= e.size;
        }
    }

    fn victim(&self) -> Option<TaskId> {
        let key = |e: &Entry| match self.limits.policy {
            Eviction::Lru => (e.used, 0),
            Eviction::Lfu => (e.reads, e.stored),
            Eviction::Fifo | Eviction::Ttl => (e.stored, 0),
        };
        self.entries
            .iter()
            .min_by_key(|(_, e)| key(e))
            .map(|(id, _)| id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::Payload;

    fn id(s: &str) -> TaskId {
        TaskId::new(s).unwrap()
    }

    fn result(bytes: usize) -> TaskResult {
        TaskResult {
            output: Payload(vec![b'x'; bytes]),
            ..swarm_bus::samples::task_result()
        }
    }

    fn store(policy: Eviction) -> ResultStore {
        ResultStore::new(ResultBounds {
            max_entries: 3,
            max_bytes: 1 << 20,
            ttl: Duration::from_secs(60),
            policy,
        })
    }

    /// Stores a, b, c; reads a twice and b once; then stores d into the full store.
    fn evicted_by(policy: Eviction) -> Vec<TaskId> {
        let t0 = At::from_millis(1_000_000);
        let mut s = store(policy);
        for name in ["a", "b", "c"] {
            assert!(s.put(t0, id(name), result(1)).is_empty());
        }
        s.get(t0, &id("a"));
        s.get(t0, &id("a"));
        s.get(t0, &id("b"));
        let out = s.put(t0, id("d"), result(1));
        assert_eq!(s.len(), 3);
        out
    }

    #[test]
    fn each_policy_drops_its_own_victim() {
        assert_eq!(
            evicted_by(Eviction::Lru),
            [id("c")],
            "c was used least recently"
        );
        assert_eq!(evicted_by(Eviction::Lfu), [id("c")], "c was never read");
        assert_eq!(evicted_by(Eviction::Fifo), [id("a")], "a came first");
        assert_eq!(evicted_by(Eviction::Ttl), [id("a")], "a expires first");
        // LRU and LFU differ: a read often long ago; b and c once lately, b stored first.
        let t0 = At::from_millis(1_000_000);
        for (policy, expected) in [(Eviction::Lru, "a"), (Eviction::Lfu, "b")] {
            let mut s = store(policy);
            s.put(t0, id("a"), result(1));
            s.put(t0, id("b"), result(1));
            for _ in 0..3 {
                s.get(t0, &id("a"));
            }
            s.get(t0, &id("b"));
            s.put(t0, id("c"), result(1));
            s.get(t0, &id("c"));
            assert_eq!(s.put(t0, id("d"), result(1)), [id(expected)], "{policy:?}");
        }
    }

    #[test]
    fn bytes_are_bounded_and_the_newest_always_stays() {
        let t0 = At::from_millis(1_000_000);
        let mut s = ResultStore::new(ResultBounds {
            max_entries: 100,
            max_bytes: 1000,
            ..ResultBounds::default()
        });
        s.put(t0, id("a"), result(400));
        s.put(t0, id("b"), result(300));
        assert_eq!(s.put(t0, id("c"), result(400)), [id("a")]);
        assert!(s.bytes() <= 1000, "{}", s.bytes());
        let huge = s.put(t0, id("huge"), result(5000));
        assert_eq!(huge.len(), 2);
        assert!(s.get(t0, &id("huge")).is_some());
    }

    #[test]
    fn results_expire_after_the_ttl() {
        let t0 = At::from_millis(1_000_000);
        let mut s = store(Eviction::Lru);
        s.put(t0, id("a"), result(1));
        assert!(s.get(t0 + Duration::from_secs(59), &id("a")).is_some());
        assert!(s.get(t0 + Duration::from_secs(60), &id("a")).is_none());
        s.put(t0, id("b"), result(1));
        assert_eq!(s.expire(t0 + Duration::from_secs(61)), [id("b")]);
        assert!(s.is_empty() && s.bytes() == 0);
    }

    #[test]
    fn replacing_a_result_does_not_count_it_twice() {
        let t0 = At::from_millis(1_000_000);
        let mut s = store(Eviction::Fifo);
        s.put(t0, id("a"), result(10));
        s.put(t0, id("a"), result(20));
        assert_eq!((s.len(), s.bytes()), (1, 20 + ENTRY_OVERHEAD));
    }
}
