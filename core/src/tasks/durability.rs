//! When the copies of the task table are enough (docs/tasks.md#durability): the leader's
//! replication to a majority of the voters, a new leader's takeover and a starting node's
//! catch-up. Pure: the runtime asks for copies and acknowledgements and hands over who
//! answered, with the clock and the round; these say whether that is enough, and if not, when
//! to ask again.
//!
//! `voters` is the election's voter set (distinct ids; a majority is counted on its length).
//! Only voters count, each once: an answer from a node outside the voter set, or a second one
//! from the same voter, never makes up a majority.

use super::table::{Full, TaskTable};
use crate::clock::At;
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use swarm_bus::{NodeId, TaskRecord};

/// How long a leader waits for a majority to store a task before it says no.
pub const REPLICATE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a round of asking for the copies of the table waits for answers.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(3);
/// A node that heard from too few voters asks again after this.
pub const GATHER_RETRY: Duration = Duration::from_millis(500);
/// Rounds of asking for copies before a node that hears too few caught-up voters takes what
/// it heard (a majority of the voters restarted at once: what none of them kept is lost).
pub const CATCH_UP_ROUNDS: u32 = 20;

/// Copies or acknowledgements a decision needs: a majority of `voters`.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// How many of `voters` are among `answered`: each voter once, nobody else.
pub fn heard(voters: &[NodeId], answered: &BTreeSet<NodeId>) -> usize {
    voters
        .iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|v| answered.contains(*v))
        .count()
}

/// What a starting node does with a round of copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatchUp {
    /// Too few voters answered: ask again, in round `round`, at `at`.
    AskAgain { round: u32, at: At },
    /// Merge what was heard and answer for this copy from now on. `short`: fewer than
    /// `needed` voters answered by the last round, so tasks none of them kept are lost.
    Merge {
        heard: usize,
        needed: usize,
        short: bool,
    },
}

/// A node catching up (`me`, whose copy is empty) heard the copies of the caught-up nodes in
/// `answered`, in round `round` (the first is 1), at `now`.
///
/// It takes them once they come from a majority of the voters, not counting itself (from every
/// other voter, in a swarm of two); or from nobody while no leader but itself is known (the
/// whole swarm is starting: there is nothing to lose); or in round `CATCH_UP_ROUNDS`, whatever
/// it heard. Otherwise it asks again `GATHER_RETRY` later.
pub fn catch_up(
    now: At,
    me: &NodeId,
    voters: &[NodeId],
    leader: Option<&NodeId>,
    round: u32,
    answered: &BTreeSet<NodeId>,
) -> CatchUp {
    let others: Vec<NodeId> = voters.iter().filter(|v| *v != me).cloned().collect();
    let needed = majority(voters.len()).min(others.len());
    let heard = heard(&others, answered);
    let starting = answered.is_empty() && leader.is_none_or(|l| l == me);
    let short = heard < needed && !starting;
    if short && round < CATCH_UP_ROUNDS {
        return CatchUp::AskAgain {
            round: round + 1,
            at: now + GATHER_RETRY,
        };
    }
    CatchUp::Merge {
        heard,
        needed,
        short,
    }
}

/// What a new leader does with a round of copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Takeover {
    /// Too few voters answered: ask again at `at`.
    AskAgain { heard: usize, needed: usize, at: At },
    /// A majority of the voters answered: merge their copies, then schedule.
    Merge { heard: usize },
}

/// A new leader (`me`) heard the nodes in `answered` (for their copy, or through their worker
/// offer when their copy is empty), at `now`. Its own copy counts once it has caught up: one
/// emptied by a restart holds nothing. It never gives up: accepting or handing out anything
/// on fewer than a majority's copies could lose or rerun accepted tasks.
pub fn takeover(
    now: At,
    me: &NodeId,
    voters: &[NodeId],
    caught_up: bool,
    answered: &BTreeSet<NodeId>,
) -> Takeover {
    let mut answered = answered.clone();
    if caught_up {
        answered.insert(me.clone());
    }
    let heard = heard(voters, &answered);
    let needed = majority(voters.len());
    if heard < needed {
        return Takeover::AskAgain {
            heard,
            needed,
            at: now + GATHER_RETRY,
        };
    }
    Takeover::Merge { heard }
}

/// Merges copies into `table`: for each task the most advanced record stays (`advances`: a
/// final state, then a later attempt, then a worker's report), whichever copy it came from.
/// Returns a refusal for each new task a full table could not take.
pub fn merge(table: &mut TaskTable, now: At, records: Vec<TaskRecord>) -> Vec<Full> {
    records
        .into_iter()
        .filter_map(|record| table.store(now, record).err())
        .collect()
}

/// The acknowledgements of one replication, counted as they come: the leader's own copy
/// (written first), then each voter that stored the task, once.
#[derive(Debug, Clone)]
pub struct Acks {
    voters: BTreeSet<NodeId>,
    acked: BTreeSet<NodeId>,
    needed: usize,
}

impl Acks {
    /// A replication by the leader `me`, whose copy already holds the task.
    pub fn new(me: &NodeId, voters: &[NodeId]) -> Self {
        let needed = majority(voters.len());
        let voters: BTreeSet<NodeId> = voters.iter().cloned().collect();
        let acked = voters.iter().filter(|v| *v == me).cloned().collect();
        Self {
            voters,
            acked,
            needed,
        }
    }

    /// `by` answered; true once a majority of the voters stored the task. A refusal, or an
    /// answer from a node that is not a voter, does not count.
    pub fn ack(&mut self, by: &NodeId, accepted: bool) -> bool {
        if accepted && self.voters.contains(by) {
            self.acked.insert(by.clone());
        }
        self.enough()
    }

    pub fn enough(&self) -> bool {
        self.acked.len() >= self.needed
    }

    /// The voters that hold the task.
    pub fn count(&self) -> usize {
        self.acked.len()
    }
}

/// Whether a task stored by `acks` of `voters` voters is accepted; the submitter's refusal
/// otherwise.
pub fn replicated(voters: usize, acks: usize) -> Result<(), String> {
    if acks < majority(voters) {
        return Err(format!(
            "stored by {acks} of {voters} voters, short of a majority; try again with the same id"
        ));
    }
    Ok(())
}
