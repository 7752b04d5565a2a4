//! The durability decisions on simulated time (docs/tasks.md#durability): a replication is
//! accepted once a majority of the voters stored it, a new leader schedules only once a
//! majority's copies are merged, and a starting node catches up from a majority or, after the
//! last round, from whatever it heard. Only voters count, each once.

use core::time::Duration;
use std::collections::BTreeSet;
use swarm_bus::{NodeId, TaskId, TaskRecord, TaskResult, TaskState, samples};
use swarm_core::clock::At;
use swarm_core::tasks::durability::{
    self, Acks, CATCH_UP_ROUNDS, CatchUp, GATHER_RETRY, GATHER_TIMEOUT, Takeover,
};
use swarm_core::tasks::{Full, ResultBounds, TaskTable};

fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn nodes(ids: &[&str]) -> Vec<NodeId> {
    ids.iter().map(|s| node(s)).collect()
}

fn set(ids: &[&str]) -> BTreeSet<NodeId> {
    ids.iter().map(|s| node(s)).collect()
}

fn task(s: &str) -> TaskId {
    TaskId::new(s).unwrap()
}

fn record(id: &str, state: TaskState, attempt: u32) -> TaskRecord {
    TaskRecord {
        id: task(id),
        spec: samples::task_spec(),
        state,
        worker: (attempt > 0).then(|| node("w")),
        attempt,
        result: None,
        replicas: None,
    }
}

fn report(state: TaskState, attempt: u32) -> TaskResult {
    TaskResult {
        state,
        worker: Some(node("w")),
        attempts: attempt,
        ..samples::task_result()
    }
}

/// Voters `v1..=vn`.
fn voters(n: usize) -> Vec<NodeId> {
    (1..=n).map(|i| node(&format!("v{i}"))).collect()
}

#[test]
fn a_majority_of_one_to_five_voters() {
    let majorities: Vec<usize> = (1..=5).map(durability::majority).collect();
    assert_eq!(majorities, [1, 2, 2, 3, 3]);
    // The leader's own copy and majority - 1 others are enough; one fewer is not.
    for n in 1..=5 {
        let all = voters(n);
        let needed = durability::majority(n);
        let mut acks = Acks::new(&all[0], &all);
        assert_eq!(acks.count(), 1, "the leader's own copy, {n} voters");
        assert_eq!(acks.enough(), needed == 1, "{n} voters");
        for (i, v) in all[1..needed].iter().enumerate() {
            let enough = acks.ack(v, true);
            assert_eq!(enough, i + 2 == needed, "{n} voters, {} acks", i + 2);
        }
        assert_eq!(acks.count(), needed);
        assert_eq!(durability::replicated(n, acks.count()), Ok(()));
        assert!(durability::replicated(n, needed - 1).is_err(), "{n} voters");
    }
}

#[test]
fn a_replication_short_of_a_majority_is_refused_with_the_same_id_advice() {
    assert_eq!(
        durability::replicated(5, 2),
        Err("stored by 2 of 5 voters, short of a majority; try again with the same id".into())
    );
    assert_eq!(
        durability::replicated(4, 2),
        Err("stored by 2 of 4 voters, short of a majority; try again with the same id".into())
    );
    assert_eq!(
        durability::replicated(2, 1),
        Err("stored by 1 of 2 voters, short of a majority; try again with the same id".into())
    );
    assert_eq!(durability::replicated(5, 3), Ok(()));
    assert_eq!(durability::replicated(4, 3), Ok(()));
    assert_eq!(durability::replicated(1, 1), Ok(()));
}

#[test]
fn refusals_strangers_and_repeats_do_not_count_toward_a_replication() {
    let all = nodes(&["a", "b", "c", "d", "e"]);
    let mut acks = Acks::new(&node("a"), &all);
    assert!(!acks.ack(&node("b"), false), "a refusal");
    assert!(!acks.ack(&node("x"), true), "not a voter");
    assert!(!acks.ack(&node("y"), true), "not a voter");
    assert!(!acks.ack(&node("b"), true));
    assert!(!acks.ack(&node("b"), true), "the same voter again");
    assert!(!acks.ack(&node("a"), true), "the leader's copy again");
    assert_eq!(acks.count(), 2);
    assert!(
        durability::replicated(all.len(), acks.count()).is_err(),
        "two of five"
    );
    assert!(acks.ack(&node("c"), true));
    assert_eq!(acks.count(), 3);
}

#[test]
fn a_leader_outside_the_voter_set_does_not_count_its_own_copy() {
    // Tighter than before the move, where the leader's copy always counted; the election's
    // voter set always holds the node itself, so no running swarm sees a difference.
    let all = nodes(&["a", "b", "c"]);
    let mut acks = Acks::new(&node("z"), &all);
    assert_eq!(acks.count(), 0);
    assert!(!acks.ack(&node("a"), true));
    assert!(acks.ack(&node("b"), true));
}

#[test]
fn a_takeover_waits_for_a_majority_of_the_voters_and_never_gives_up() {
    let me = node("l");
    let all = nodes(&["l", "a", "b", "c", "d"]);
    let mut now = At::from_millis(1_000_000);
    // Strangers, however many, and the leader's own copy before it caught up: one voter.
    for caught_up in [false, true] {
        let answered = set(&["a", "x", "y", "z"]);
        let heard = 1 + usize::from(caught_up);
        assert_eq!(
            durability::takeover(now, &me, &all, caught_up, &answered),
            Takeover::AskAgain {
                heard,
                needed: 3,
                at: now + GATHER_RETRY,
            }
        );
    }
    // Round after round of too few copies: the leader asks again every GATHER_RETRY, for ever.
    for _ in 0..10 * CATCH_UP_ROUNDS {
        now += GATHER_TIMEOUT;
        match durability::takeover(now, &me, &all, false, &set(&["a", "b"])) {
            Takeover::AskAgain { heard: 2, at, .. } => {
                assert_eq!(at, now + GATHER_RETRY);
                now = at;
            }
            other => panic!("took over on two of five: {other:?}"),
        }
    }
    assert_eq!(
        durability::takeover(now, &me, &all, false, &set(&["a", "b", "c"])),
        Takeover::Merge { heard: 3 }
    );
    assert_eq!(
        durability::takeover(now, &me, &all, true, &set(&["a", "b"])),
        Takeover::Merge { heard: 3 },
        "its own copy counts once caught up"
    );
}

#[test]
fn a_takeover_in_swarms_of_one_and_two() {
    let now = At::from_millis(1_000_000);
    let me = node("l");
    assert_eq!(
        durability::takeover(now, &me, &nodes(&["l"]), true, &BTreeSet::new()),
        Takeover::Merge { heard: 1 }
    );
    assert!(matches!(
        durability::takeover(now, &me, &nodes(&["l"]), false, &BTreeSet::new()),
        Takeover::AskAgain { needed: 1, .. }
    ));
    let two = nodes(&["l", "a"]);
    assert!(matches!(
        durability::takeover(now, &me, &two, true, &BTreeSet::new()),
        Takeover::AskAgain {
            heard: 1,
            needed: 2,
            ..
        }
    ));
    assert_eq!(
        durability::takeover(now, &me, &two, true, &set(&["a"])),
        Takeover::Merge { heard: 2 }
    );
}

#[test]
fn the_merge_keeps_the_most_advanced_record_of_each_task() {
    let now = At::from_millis(1_000_000);
    let mut reported = record("b", TaskState::Running, 2);
    reported.result = Some(report(TaskState::Succeeded, 2));
    let mut done = record("c", TaskState::Succeeded, 1);
    done.result = Some(report(TaskState::Succeeded, 1));
    // Three voters' copies, each behind on something.
    let copies = [
        vec![
            record("a", TaskState::Running, 1),
            record("b", TaskState::Running, 2),
            done,
        ],
        vec![
            record("a", TaskState::Running, 2),
            reported,
            record("c", TaskState::Running, 1),
        ],
        vec![
            record("a", TaskState::Queued, 0),
            record("b", TaskState::Running, 1),
            record("c", TaskState::Queued, 0),
            record("d", TaskState::Queued, 0),
        ],
    ];
    // Whichever copy comes first, the same table.
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let mut table = TaskTable::new(ResultBounds::default(), 10);
        let records = order.iter().flat_map(|&i| copies[i].clone()).collect();
        let refused = durability::merge(&mut table, now, records);
        assert!(refused.is_empty(), "{refused:?}");
        let a = table.record(&task("a")).unwrap();
        assert_eq!((a.state, a.attempt), (TaskState::Running, 2), "{order:?}");
        let b = table.record(&task("b")).unwrap();
        assert_eq!(b.attempt, 2, "{order:?}");
        assert!(b.result.is_some(), "the report on attempt 2, {order:?}");
        let c = table.status(now, &task("c")).unwrap();
        assert_eq!(c.state, TaskState::Succeeded, "final beats all, {order:?}");
        assert_eq!(c.output.as_bytes(), b"hello", "{order:?}");
        assert!(table.record(&task("d")).is_some(), "held by one copy only");
        assert_eq!(table.open_len(), 3, "{order:?}");
    }
}

#[test]
fn a_merge_into_a_full_table_says_what_it_could_not_take() {
    let now = At::from_millis(1_000_000);
    let mut table = TaskTable::new(ResultBounds::default(), 1);
    let records = vec![
        record("a", TaskState::Queued, 0),
        record("b", TaskState::Queued, 0),
        record("a", TaskState::Running, 1),
        record("c", TaskState::Queued, 0),
    ];
    assert_eq!(durability::merge(&mut table, now, records), [Full, Full]);
    assert_eq!(table.record(&task("a")).unwrap().attempt, 1);
}

/// A starting node's rounds on simulated time: each query takes `GATHER_TIMEOUT`, and
/// `answers(round)` is who answered it.
struct CatchingUp {
    me: NodeId,
    voters: Vec<NodeId>,
    leader: Option<NodeId>,
    now: At,
}

impl CatchingUp {
    fn new(me: &str, voters: &[&str], leader: Option<&str>) -> Self {
        Self {
            me: node(me),
            voters: nodes(voters),
            leader: leader.map(node),
            now: At::from_millis(1_000_000),
        }
    }

    fn round(&self, round: u32, answered: &BTreeSet<NodeId>) -> CatchUp {
        durability::catch_up(
            self.now,
            &self.me,
            &self.voters,
            self.leader.as_ref(),
            round,
            answered,
        )
    }

    /// Asks round after round until the node merges; returns the decision, its round, and the
    /// time from the first question to it.
    fn run(&mut self, answers: impl Fn(u32) -> BTreeSet<NodeId>) -> (CatchUp, u32, Duration) {
        let start = self.now;
        let mut round = 1;
        loop {
            self.now += GATHER_TIMEOUT;
            match self.round(round, &answers(round)) {
                CatchUp::AskAgain { round: next, at } => {
                    assert_eq!(next, round + 1);
                    assert_eq!(at, self.now + GATHER_RETRY);
                    (round, self.now) = (next, at);
                }
                merge => return (merge, round, self.now - start),
            }
            assert!(round <= 10 * CATCH_UP_ROUNDS, "never caught up");
        }
    }
}

#[test]
fn catching_up_waits_for_a_majority_of_the_other_voters() {
    let mut c = CatchingUp::new("e", &["a", "b", "c", "d", "e"], Some("a"));
    // Its own answer, strangers' and two voters' do not make three.
    let short = set(&["a", "b", "e", "x", "y"]);
    assert_eq!(
        c.round(1, &short),
        CatchUp::AskAgain {
            round: 2,
            at: c.now + GATHER_RETRY,
        }
    );
    // The third voter answers in round 4.
    let (merge, round, took) = c.run(|round| {
        if round < 4 {
            set(&["a", "b", "x"])
        } else {
            set(&["a", "b", "c"])
        }
    });
    assert_eq!(
        merge,
        CatchUp::Merge {
            heard: 3,
            needed: 3,
            short: false,
        }
    );
    assert_eq!(round, 4);
    assert_eq!(took, 4 * GATHER_TIMEOUT + 3 * GATHER_RETRY);
}

#[test]
fn catching_up_gives_up_after_the_last_round_and_takes_what_it_heard() {
    let mut c = CatchingUp::new("e", &["a", "b", "c", "d", "e"], Some("a"));
    let (merge, round, took) = c.run(|_| set(&["a", "x"]));
    assert_eq!(
        merge,
        CatchUp::Merge {
            heard: 1,
            needed: 3,
            short: true,
        }
    );
    assert_eq!(round, CATCH_UP_ROUNDS);
    assert_eq!(CATCH_UP_ROUNDS, 20);
    // About 10 s of waiting between rounds, as docs/tasks.md says.
    assert_eq!(took, 20 * GATHER_TIMEOUT + 19 * GATHER_RETRY, "{took:?}");
    assert_eq!(GATHER_RETRY, Duration::from_millis(500));
    // Enough answers in the last round are no shortfall.
    assert_eq!(
        c.round(CATCH_UP_ROUNDS, &set(&["a", "b", "c"])),
        CatchUp::Merge {
            heard: 3,
            needed: 3,
            short: false,
        }
    );
}

#[test]
fn catching_up_in_swarms_of_one_two_and_three() {
    // Alone: nothing to wait for.
    let c = CatchingUp::new("a", &["a"], Some("a"));
    assert_eq!(
        c.round(1, &BTreeSet::new()),
        CatchUp::Merge {
            heard: 0,
            needed: 0,
            short: false,
        }
    );
    // Two: every other voter.
    let c = CatchingUp::new("b", &["a", "b"], Some("a"));
    assert!(matches!(
        c.round(1, &BTreeSet::new()),
        CatchUp::AskAgain { round: 2, .. }
    ));
    assert!(matches!(
        c.round(1, &set(&["b", "x"])),
        CatchUp::AskAgain { round: 2, .. }
    ));
    assert_eq!(
        c.round(1, &set(&["a"])),
        CatchUp::Merge {
            heard: 1,
            needed: 1,
            short: false,
        }
    );
    // Three: a majority is two, and its own emptied copy is not one of them.
    let c = CatchingUp::new("c", &["a", "b", "c"], Some("a"));
    assert!(matches!(
        c.round(1, &set(&["a", "c"])),
        CatchUp::AskAgain { round: 2, .. }
    ));
    assert_eq!(
        c.round(1, &set(&["a", "b"])),
        CatchUp::Merge {
            heard: 2,
            needed: 2,
            short: false,
        }
    );
}

#[test]
fn a_starting_swarm_has_nothing_to_catch_up_on() {
    let all = ["a", "b", "c"];
    let merged = CatchUp::Merge {
        heard: 0,
        needed: 2,
        short: false,
    };
    // Nobody answers and no leader but itself is known: the whole swarm is starting.
    for leader in [None, Some("c")] {
        let c = CatchingUp::new("c", &all, leader);
        assert_eq!(c.round(1, &BTreeSet::new()), merged, "{leader:?}");
    }
    // Another leader is known: someone holds the table, so wait for it.
    let c = CatchingUp::new("c", &all, Some("a"));
    assert!(matches!(
        c.round(1, &BTreeSet::new()),
        CatchUp::AskAgain { round: 2, .. }
    ));
    // Somebody answered: not a starting swarm, however few.
    let c = CatchingUp::new("c", &all, None);
    assert!(matches!(
        c.round(1, &set(&["x"])),
        CatchUp::AskAgain { round: 2, .. }
    ));
}
