//! One task on several workers (docs/tasks.md#federated): which distinct workers run it, what
//! each answered, and when the answers decide it. Sans-IO; the scheduler gives it candidates
//! in the order its strategy ranks them and carries out the steps it returns. A worker that
//! goes mid-way is replaced by one that has not run the task while time remains; once the
//! answers settle it, the replicas still running are revoked at once.

use super::verdict::{Answer, Decision, Pick, Verdict, judge};
use crate::clock::At;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use swarm_bus::NodeId;

/// One worker's report.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub worker: NodeId,
    /// The attempt it answers: a late answer from an earlier assignment is not counted.
    pub attempt: u32,
    pub ok: bool,
    pub output: Vec<u8>,
    pub score: Option<f64>,
    pub joules: Option<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Run the task on `worker` as `attempt`.
    Assign { worker: NodeId, attempt: u32 },
    /// Stop it there: decided without it, or time is up.
    Revoke { worker: NodeId },
    /// The answers decided; `replies` are every answer, in the order they came.
    Decided {
        decision: Decision,
        replies: Vec<Reply>,
        joules: f32,
    },
    /// They cannot decide: no majority, too few answers in time, nothing valid.
    Undecided {
        why: String,
        replies: Vec<Reply>,
        joules: f32,
    },
}

#[derive(Debug, Clone)]
pub struct Replicas {
    wanted: usize,
    pick: Pick,
    deadline: At,
    /// Out now: worker → its attempt.
    running: BTreeMap<NodeId, u32>,
    replies: Vec<Reply>,
    /// Every worker given the task: a replica's workers are distinct, so one worker's answer
    /// never counts twice.
    tried: BTreeSet<NodeId>,
    attempts: u32,
    done: bool,
}

impl Replicas {
    /// `wanted` replicas (at least 1), decided by `pick`, answers counted until `deadline`.
    pub fn new(wanted: usize, pick: Pick, deadline: At) -> Self {
        Self {
            wanted: wanted.max(1),
            pick,
            deadline,
            running: BTreeMap::new(),
            replies: Vec::new(),
            tried: BTreeSet::new(),
            attempts: 0,
            done: false,
        }
    }

    /// Takes up a vote a previous leader left: `out` still running (worker, attempt), the
    /// `replies` already in. Workers named twice, or more answers than `wanted`, count once
    /// and up to `wanted`: a copy of the table is data from the wire.
    /// `earlier`: replicas handed out before that neither run nor answered any more (their
    /// worker went); they are not given the task again, and their attempts are not reused.
    pub fn resume(
        wanted: usize,
        pick: Pick,
        deadline: At,
        out: impl IntoIterator<Item = (NodeId, u32)>,
        replies: impl IntoIterator<Item = Reply>,
        earlier: impl IntoIterator<Item = (NodeId, u32)>,
    ) -> Self {
        let mut r = Self::new(wanted, pick, deadline);
        for (worker, attempt) in earlier {
            r.attempts = r.attempts.max(attempt);
            r.tried.insert(worker);
        }
        for reply in replies {
            if r.replies.len() < r.wanted && r.tried.insert(reply.worker.clone()) {
                r.attempts = r.attempts.max(reply.attempt);
                r.replies.push(reply);
            }
        }
        for (worker, attempt) in out {
            if r.running.len() + r.replies.len() < r.wanted && r.tried.insert(worker.clone()) {
                r.attempts = r.attempts.max(attempt);
                r.running.insert(worker, attempt);
            }
        }
        r
    }

    /// Whether `worker` runs the task as `attempt`: a report that answers it counts.
    pub fn awaits(&self, worker: &NodeId, attempt: u32) -> bool {
        !self.done && self.running.get(worker) == Some(&attempt)
    }

    /// The answers in hand decide now, if they can (after a takeover).
    pub fn settle(&mut self, now: At, weight: impl Fn(&NodeId) -> f64) -> Vec<Step> {
        if self.done || self.replies.is_empty() {
            return Vec::new();
        }
        self.judge(now >= self.deadline, weight)
    }

    /// How many replicas it runs.
    pub fn wanted(&self) -> usize {
        self.wanted
    }

    /// Assignments handed out so far, the latest attempt's number.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn deadline(&self) -> At {
        self.deadline
    }

    /// Workers running it now.
    pub fn running(&self) -> impl Iterator<Item = &NodeId> {
        self.running.keys()
    }

    /// Places to fill: replicas neither running nor answered.
    pub fn missing(&self) -> usize {
        if self.done {
            return 0;
        }
        self.wanted
            .saturating_sub(self.running.len() + self.replies.len())
    }

    /// Hands the missing places to `candidates` (best first) that have not run the task.
    pub fn fill(&mut self, now: At, candidates: impl IntoIterator<Item = NodeId>) -> Vec<Step> {
        let mut out = Vec::new();
        if self.done || now >= self.deadline {
            return out;
        }
        for worker in candidates {
            if self.missing() == 0 {
                break;
            }
            if !self.tried.insert(worker.clone()) {
                continue;
            }
            self.attempts = self.attempts.saturating_add(1);
            self.running.insert(worker.clone(), self.attempts);
            out.push(Step::Assign {
                worker,
                attempt: self.attempts,
            });
        }
        out
    }

    /// A worker's answer; `weight` is each worker's reputation, for `Weighted`. An answer from
    /// a worker not running the task, or for another attempt, changes nothing.
    pub fn answered(
        &mut self,
        now: At,
        reply: Reply,
        weight: impl Fn(&NodeId) -> f64,
    ) -> Vec<Step> {
        if self.done || self.running.get(&reply.worker) != Some(&reply.attempt) {
            return Vec::new();
        }
        self.running.remove(&reply.worker);
        self.replies.push(reply);
        self.judge(now >= self.deadline, weight)
    }

    /// A running replica's worker went: its place is free for another while time remains.
    pub fn gone(&mut self, worker: &NodeId) {
        self.running.remove(worker);
    }

    /// Time passed: at the deadline the answers in hand decide, or cannot.
    pub fn expire(&mut self, now: At, weight: impl Fn(&NodeId) -> f64) -> Vec<Step> {
        if self.done || now < self.deadline {
            return Vec::new();
        }
        self.judge(true, weight)
    }

    fn judge(&mut self, time_up: bool, weight: impl Fn(&NodeId) -> f64) -> Vec<Step> {
        let answers: Vec<Answer> = self
            .replies
            .iter()
            .map(|r| Answer {
                worker: &r.worker,
                ok: r.ok,
                output: &r.output,
                score: r.score,
                weight: weight(&r.worker),
            })
            .collect();
        let outstanding = self.wanted.saturating_sub(self.replies.len());
        let verdict = judge(self.pick, self.wanted, &answers, outstanding, time_up);
        let end = match verdict {
            Verdict::Wait => return Vec::new(),
            Verdict::Decided(decision) => Ok(decision),
            Verdict::Undecided { why } => Err(why),
        };
        self.done = true;
        let mut out: Vec<Step> = core::mem::take(&mut self.running)
            .into_keys()
            .map(|worker| Step::Revoke { worker })
            .collect();
        let replies = self.replies.clone();
        let joules = replies
            .iter()
            .filter_map(|r| r.joules)
            .filter(|j| j.is_finite() && *j >= 0.0)
            .sum();
        out.push(match end {
            Ok(decision) => Step::Decided {
                decision,
                replies,
                joules,
            },
            Err(why) => Step::Undecided {
                why,
                replies,
                joules,
            },
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use core::time::Duration;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn ids(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|n| id(n)).collect()
    }

    const T0: At = At::from_millis(1_000);

    fn deadline() -> At {
        T0 + Duration::from_secs(10)
    }

    fn reply(worker: &str, attempt: u32, out: &str) -> Reply {
        Reply {
            worker: id(worker),
            attempt,
            ok: true,
            output: out.as_bytes().to_vec(),
            score: None,
            joules: Some(1.5),
        }
    }

    fn same(_: &NodeId) -> f64 {
        1.0
    }

    fn assigned(steps: &[Step]) -> Vec<(NodeId, u32)> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Assign { worker, attempt } => Some((worker.clone(), *attempt)),
                _ => None,
            })
            .collect()
    }

    fn revoked(steps: &[Step]) -> Vec<NodeId> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Revoke { worker } => Some(worker.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_majority_of_three_decides_on_two_and_the_third_is_revoked() {
        let mut r = Replicas::new(3, Pick::Majority, deadline());
        let steps = r.fill(T0, ids(&["a", "b", "c", "d"]));
        assert_eq!(
            assigned(&steps),
            vec![(id("a"), 1), (id("b"), 2), (id("c"), 3)],
            "three distinct workers, best first"
        );
        assert!(r.answered(T0, reply("a", 1, "cat"), same).is_empty());
        let steps = r.answered(T0, reply("c", 3, "cat"), same);
        assert_eq!(revoked(&steps), vec![id("b")]);
        match steps.last() {
            Some(Step::Decided {
                decision, joules, ..
            }) => {
                assert_eq!(decision.agreeing, ids(&["a", "c"]));
                assert_eq!(*joules, 3.0, "what the two replicas cost");
            }
            other => panic!("{other:?}"),
        }
        assert!(r.is_done());
        assert!(
            r.answered(T0, reply("b", 2, "dog"), same).is_empty(),
            "after the decision"
        );
    }

    #[test]
    fn one_worker_cannot_vote_twice_nor_answer_for_another_attempt() {
        let mut r = Replicas::new(3, Pick::Majority, deadline());
        r.fill(T0, ids(&["a", "b", "c"]));
        assert!(r.answered(T0, reply("a", 1, "forged"), same).is_empty());
        assert!(
            r.answered(T0, reply("a", 1, "forged"), same).is_empty(),
            "its second answer is not counted"
        );
        assert!(
            r.answered(T0, reply("b", 7, "forged"), same).is_empty(),
            "wrong attempt"
        );
        assert!(
            r.answered(T0, reply("x", 1, "forged"), same).is_empty(),
            "not running it"
        );
        assert!(!r.is_done(), "one vote so far, not two");
        // The list of workers handed over may repeat one: it still runs the task once.
        let mut again = Replicas::new(2, Pick::Majority, deadline());
        assert_eq!(assigned(&again.fill(T0, ids(&["a", "a", "b"]))).len(), 2);
    }

    #[test]
    fn a_worker_that_goes_is_replaced_by_another_while_time_remains() {
        let mut r = Replicas::new(2, Pick::Majority, deadline());
        r.fill(T0, ids(&["a", "b"]));
        r.gone(&id("b"));
        assert_eq!(r.missing(), 1);
        let steps = r.fill(T0, ids(&["a", "b", "c"]));
        assert_eq!(
            assigned(&steps),
            vec![(id("c"), 3)],
            "neither a nor b again"
        );
        r.gone(&id("c"));
        assert!(r.fill(deadline(), ids(&["d"])).is_empty(), "no time left");
    }

    #[test]
    fn first_valid_stops_the_others_at_the_first_success() {
        let mut r = Replicas::new(3, Pick::FirstValid, deadline());
        r.fill(T0, ids(&["a", "b", "c"]));
        let failed = Reply {
            ok: false,
            ..reply("b", 2, "")
        };
        assert!(r.answered(T0, failed, same).is_empty());
        let steps = r.answered(T0, reply("a", 1, "frame"), same);
        assert_eq!(revoked(&steps), vec![id("c")]);
        assert!(
            matches!(steps.last(), Some(Step::Decided { decision, .. }) if decision.chosen == 1)
        );
    }

    #[test]
    fn time_up_decides_with_what_is_in_or_says_it_cannot() {
        let mut r = Replicas::new(5, Pick::Median, deadline());
        r.fill(T0, ids(&["a", "b", "c", "d", "e"]));
        for (w, n, v) in [("a", 1, "20.1"), ("b", 2, "20.2"), ("c", 3, "20.3")] {
            assert!(
                r.answered(T0, reply(w, n, v), same).is_empty(),
                "waits for all five"
            );
        }
        assert!(
            r.expire(deadline() - Duration::from_millis(1), same)
                .is_empty()
        );
        let steps = r.expire(deadline(), same);
        assert_eq!(revoked(&steps), ids(&["d", "e"]));
        assert!(
            matches!(steps.last(), Some(Step::Decided { decision, .. }) if decision.value == Some(20.2))
        );

        let mut r = Replicas::new(3, Pick::Majority, deadline());
        r.fill(T0, ids(&["a", "b", "c"]));
        r.answered(T0, reply("a", 1, "x"), same);
        let steps = r.expire(deadline(), same);
        assert!(
            matches!(steps.last(), Some(Step::Undecided { replies, .. }) if replies.len() == 1),
            "{steps:?}"
        );
    }

    #[test]
    fn a_resumed_vote_counts_each_worker_once_and_decides_on_what_is_in() {
        let mut r = Replicas::resume(
            3,
            Pick::Majority,
            deadline(),
            [(id("c"), 3), (id("a"), 9)],
            [reply("a", 1, "x"), reply("a", 1, "x"), reply("b", 2, "x")],
            [],
        );
        assert_eq!(r.attempts(), 3);
        assert!(
            r.awaits(&id("c"), 3) && !r.awaits(&id("a"), 9),
            "a answered already"
        );
        let steps = r.settle(T0, same);
        assert_eq!(revoked(&steps), vec![id("c")]);
        assert!(
            matches!(steps.last(), Some(Step::Decided { decision, replies, .. })
                if decision.agreeing == ids(&["a", "b"]) && replies.len() == 2),
            "{steps:?}"
        );
    }

    #[test]
    fn joules_from_the_wire_that_make_no_sense_are_not_summed() {
        let mut r = Replicas::new(1, Pick::FirstValid, deadline());
        r.fill(T0, ids(&["a"]));
        let bad = Reply {
            joules: Some(f32::NAN),
            ..reply("a", 1, "x")
        };
        let steps = r.answered(T0, bad, same);
        assert!(matches!(steps.last(), Some(Step::Decided { joules, .. }) if *joules == 0.0));
    }
}
