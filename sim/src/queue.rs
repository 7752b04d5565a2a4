//! Simulated time: a queue of events ordered by when they are due, ties broken by insertion
//! order so a run is the same for the same seed.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

struct Entry<E> {
    at_us: u64,
    order: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at_us, self.order) == (other.at_us, other.order)
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at_us, self.order).cmp(&(other.at_us, other.order))
    }
}

pub struct Queue<E> {
    heap: BinaryHeap<Reverse<Entry<E>>>,
    order: u64,
}

impl<E> Queue<E> {
    pub fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            order: 0,
        }
    }

    pub fn push(&mut self, at_us: u64, event: E) {
        self.order += 1;
        self.heap.push(Reverse(Entry {
            at_us,
            order: self.order,
            event,
        }));
    }

    /// The next event due at or before `until_us`.
    pub fn pop_until(&mut self, until_us: u64) -> Option<(u64, E)> {
        if self.heap.peek()?.0.at_us > until_us {
            return None;
        }
        self.heap.pop().map(|Reverse(e)| (e.at_us, e.event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_then_insertion_order_and_stops_at_the_horizon() {
        let mut q = Queue::new();
        q.push(30, "c");
        q.push(10, "a");
        q.push(10, "b");
        q.push(50, "late");
        let mut seen = Vec::new();
        while let Some((at, e)) = q.pop_until(40) {
            seen.push((at, e));
        }
        assert_eq!(seen, [(10, "a"), (10, "b"), (30, "c")]);
        assert_eq!(q.pop_until(100), Some((50, "late")));
    }
}
