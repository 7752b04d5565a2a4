//! The read-only snapshot of what a node knows, handed out by the core as
//! [`Output::Snapshot`](super::Output::Snapshot): the adapter publishes it (on a `watch`
//! channel in `swarm-node run`) for its queryables and `/metrics` to read without waiting on
//! the loop. When to hand one out is decided here: at once after a change of leadership or
//! membership, at most every `every` when only samples and counters moved.

use super::Leadership;
use crate::cadence::Decision;
use crate::clock::At;
use alloc::collections::BTreeMap;
use core::time::Duration;
use swarm_bus::{DeviceClass, Energy, NodeId};

/// A member as the snapshot shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberView {
    /// Heard since it (re)joined.
    pub heard: bool,
    /// From its last heartbeat.
    pub class: Option<DeviceClass>,
    /// Its latest energy sample, kept by the leader (which sums the swarm's).
    pub energy: Option<Energy>,
}

/// The core's part of what a node shows the world.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub leadership: Leadership,
    /// The sequence number of the last heartbeat sent.
    pub seq: u64,
    /// The intervals in force.
    pub pace: Decision,
    /// This node's latest energy sample.
    pub energy: Option<Energy>,
    pub members: BTreeMap<NodeId, MemberView>,
    /// The voter count this node states in its heartbeats and answers.
    pub voters: Option<u32>,
    /// Whether it answers `swarm/<s>/leader`: every member of a small swarm, only the leader
    /// of a large one (docs/protocol.md#scale).
    pub answers_for_swarm: bool,
}

/// How much a change matters to the snapshot's readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Change {
    /// Samples, counters, the pace: shown within `every`.
    Minor,
    /// Leadership, membership, what this node answers: shown at once.
    Urgent,
}

/// When the next snapshot is due.
#[derive(Debug)]
pub(super) struct Publishing {
    every: Duration,
    last: Option<At>,
    pending: Option<Change>,
    /// What `answers_for_swarm` and `voters` were in the last snapshot: both move with time
    /// and the voters heard, not with one kind of input.
    answered: (bool, Option<u32>),
}

impl Publishing {
    pub(super) fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            // The first one goes out at once: readers start with something.
            pending: Some(Change::Urgent),
            answered: (true, None),
        }
    }

    pub(super) fn mark(&mut self, change: Change) {
        self.pending = self.pending.max(Some(change));
    }

    /// Marks a change of what this node answers for the swarm, if any.
    pub(super) fn answering(&mut self, everyone: bool, voters: Option<u32>) {
        if self.answered != (everyone, voters) {
            self.answered = (everyone, voters);
            self.mark(Change::Urgent);
        }
    }

    /// Whether a snapshot is due at `now`; if so, counts it as handed out.
    pub(super) fn take(&mut self, now: At) -> bool {
        let due = match (self.pending, self.last) {
            (None, _) => false,
            (Some(Change::Urgent), _) | (Some(Change::Minor), None) => true,
            (Some(Change::Minor), Some(last)) => now >= last + self.every,
        };
        if due {
            (self.pending, self.last) = (None, Some(now));
        }
        due
    }

    /// When a held-back snapshot falls due: a time already past when it is due now.
    pub(super) fn next_wakeup(&self) -> Option<At> {
        match (self.pending, self.last) {
            (None, _) => None,
            (Some(Change::Minor), Some(last)) => Some(last + self.every),
            (Some(_), last) => Some(last.unwrap_or(At::ZERO)),
        }
    }
}
