//! What the leader decides around its scheduler, on simulated time: submissions before and
//! after the takeover, replication short of a majority, a term that changed, cancellations,
//! the takeover of a table whose old leader died before deciding, and offers from strangers.

use core::time::Duration;
use std::collections::BTreeSet;
use swarm_bus::{NodeId, Payload, TaskId, TaskRecord, TaskResult, TaskSpec, TaskState, WorkerInfo};
use swarm_core::clock::At;
use swarm_core::tasks::{Action, Event, Leading, Settings, Submission, spec_refusal, to_worker};

const MAX_PAYLOAD: usize = 1024;

fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn task(s: &str) -> TaskId {
    TaskId::new(s).unwrap()
}

fn offer(caps: &[&str]) -> WorkerInfo {
    WorkerInfo {
        caps: caps.iter().map(|c| c.to_string()).collect(),
        idempotent: Vec::new(),
        slots: 1,
    }
}

fn spec(cap: &str, timeout_ms: u32) -> TaskSpec {
    TaskSpec {
        cap: cap.into(),
        after: Vec::new(),
        timeout_ms,
        retries: 0,
        ..swarm_bus::samples::task_spec()
    }
}

fn record(id: &str, state: TaskState, worker: Option<&str>, attempt: u32) -> TaskRecord {
    TaskRecord {
        id: task(id),
        spec: spec("echo", 5_000),
        state,
        worker: worker.map(node),
        attempt,
        result: None,
        replicas: None,
    }
}

fn report(worker: &str, attempts: u32, state: TaskState) -> TaskResult {
    TaskResult {
        state,
        worker: Some(node(worker)),
        attempts,
        ..swarm_bus::samples::task_result()
    }
}

/// A leader `a` of voters a, b, c in term 3, and the simulated clock.
struct Office {
    l: Leading,
    now: At,
}

impl Office {
    fn new() -> Self {
        Self {
            l: Leading::new(
                3,
                vec![node("a"), node("b"), node("c")],
                Settings::default(),
            ),
            now: At::from_millis(50_000),
        }
    }

    /// Takes office on `records`, with `a` (itself) offering `local`, `b` offering `echo` and
    /// `x` (not a live member) offering `forged`.
    fn take_over(&mut self, records: &[TaskRecord]) -> Vec<Action> {
        let live: BTreeSet<NodeId> = [node("a"), node("b"), node("c")].into();
        self.l.take_over(
            self.now,
            records,
            vec![
                (node("a"), offer(&["local"])),
                (node("b"), offer(&["echo"])),
                (node("x"), offer(&["forged"])),
            ],
            &live,
            |_, info| to_worker(info, None, 20),
        )
    }

    fn submit(&mut self, id: &str, spec: &TaskSpec) -> Submission {
        self.l.submit(self.now, &task(id), Some(spec), MAX_PAYLOAD)
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }
}

fn refused(s: &Submission) -> &str {
    match s {
        Submission::Refuse(why) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn nothing_is_taken_before_the_takeover() {
    let mut o = Office::new();
    let why = refused(&o.submit("t1", &spec("echo", 1_000))).to_string();
    assert!(why.contains("taking over"), "{why}");
    assert!(
        o.l.cancel(o.now, task("t1"))
            .unwrap_err()
            .contains("taking over")
    );
    assert_eq!(o.l.next_wakeup(), None);
    assert!(o.l.handle(o.now, Event::Tick).is_empty());
}

#[test]
fn a_submission_is_accepted_on_a_majority_of_copies_and_not_on_fewer() {
    let mut o = Office::new();
    assert!(o.take_over(&[]).is_empty());
    let s = spec("echo", 1_000);
    let Submission::Replicate(rec) = o.submit("t1", &s) else {
        panic!("a sound submission is replicated");
    };
    assert_eq!(
        (rec.id.as_str(), rec.state, rec.attempt),
        ("t1", TaskState::Queued, 0)
    );
    // While it is being stored, the same id waits.
    assert!(refused(&o.submit("t1", &s)).contains("being stored"));

    // The leader's copy and nobody else's: 1 of 3.
    let short = o.l.replicated(o.now, 3, task("t1"), &s, 1).unwrap_err();
    assert!(short.contains("short of a majority"), "{short}");
    // The id is free again for the submitter's retry, which b and the leader store.
    assert!(matches!(o.submit("t1", &s), Submission::Replicate(_)));
    let actions = o.l.replicated(o.now, 3, task("t1"), &s, 2).unwrap();
    assert_eq!(
        actions,
        vec![
            Action::Accept { id: task("t1") },
            Action::Assign {
                task: task("t1"),
                worker: node("b"),
                attempt: 1
            }
        ]
    );
    // A retry of an accepted submission is accepted again, not stored twice.
    assert_eq!(o.submit("t1", &s), Submission::AlreadyAccepted);
}

#[test]
fn a_replication_that_ends_in_another_term_is_refused() {
    let mut o = Office::new();
    o.take_over(&[]);
    let s = spec("echo", 1_000);
    assert!(matches!(o.submit("t1", &s), Submission::Replicate(_)));
    let why = o.l.replicated(o.now, 2, task("t1"), &s, 3).unwrap_err();
    assert!(why.contains("leadership changed"), "{why}");
}

#[test]
fn an_attempt_times_out_on_simulated_time() {
    let mut o = Office::new();
    o.take_over(&[]);
    let s = spec("echo", 1_000);
    o.submit("t1", &s);
    o.l.replicated(o.now, 3, task("t1"), &s, 3).unwrap();
    assert_eq!(
        o.l.next_wakeup(),
        Some(o.now + Duration::from_millis(1_000))
    );
    o.advance(Duration::from_millis(999));
    assert!(o.l.handle(o.now, Event::Tick).is_empty(), "not due yet");
    o.advance(Duration::from_millis(1));
    let actions = o.l.handle(o.now, Event::Tick);
    assert!(
        actions.contains(&Action::Revoke {
            task: task("t1"),
            worker: node("b")
        }),
        "{actions:?}"
    );
}

#[test]
fn the_takeover_decides_what_the_old_leader_died_before_deciding() {
    let mut o = Office::new();
    // t1: b reported success on its current attempt, and the old leader never said so.
    let mut t1 = record("t1", TaskState::Running, Some("b"), 1);
    t1.result = Some(report("b", 1, TaskState::Succeeded));
    // t2: the report is from an earlier attempt; the current one is still running.
    let mut t2 = record("t2", TaskState::Running, Some("b"), 2);
    t2.result = Some(report("b", 1, TaskState::Failed));
    let actions = o.take_over(&[t1, t2]);
    assert_eq!(
        actions,
        vec![Action::Done {
            task: task("t1"),
            state: TaskState::Succeeded,
            reason: None
        }]
    );
    assert!(o.l.is_ready());
    assert_eq!(o.l.pending(), 1, "t2 still runs");
}

#[test]
fn an_offer_from_a_node_that_is_not_a_live_member_makes_no_worker() {
    let mut o = Office::new();
    o.take_over(&[]);
    let workers: Vec<&str> = o.l.workers().keys().map(NodeId::as_str).collect();
    assert_eq!(workers, ["a", "b"]);
    let why = refused(&o.submit("t1", &spec("forged", 1_000))).to_string();
    assert!(why.contains("no worker has capability"), "{why}");
}

#[test]
fn bad_specs_are_refused_before_anything_is_stored() {
    let mut o = Office::new();
    o.take_over(&[]);
    assert!(refused(&o.l.submit(o.now, &task("t1"), None, MAX_PAYLOAD)).contains("no task spec"));
    let big = TaskSpec {
        payload: Payload::from(&vec![0u8; MAX_PAYLOAD + 1][..]),
        ..spec("echo", 1_000)
    };
    assert!(refused(&o.submit("t1", &big)).contains("over this swarm's limit"));
    assert!(refused(&o.submit("t1", &spec("Bad Cap!", 1_000))).contains("not a capability"));
    assert!(refused(&o.submit("t1", &spec("echo", 0))).contains("timeout of 0"));
    // None of them holds the id.
    assert!(matches!(
        o.submit("t1", &spec("echo", 1_000)),
        Submission::Replicate(_)
    ));
}

#[test]
fn cancelling_names_what_it_cannot_cancel() {
    let mut o = Office::new();
    o.take_over(&[record("done", TaskState::Succeeded, Some("b"), 1)]);
    assert_eq!(
        o.l.cancel(o.now, task("nope")).unwrap_err(),
        "no task `nope`"
    );
    assert!(
        o.l.cancel(o.now, task("done"))
            .unwrap_err()
            .contains("succeeded")
    );
    let s = spec("echo", 1_000);
    o.submit("t1", &s);
    o.l.replicated(o.now, 3, task("t1"), &s, 2).unwrap();
    let actions = o.l.cancel(o.now, task("t1")).unwrap();
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Done {
                state: TaskState::Cancelled,
                ..
            }
        )),
        "{actions:?}"
    );
}

#[test]
fn a_worker_that_goes_hands_its_task_back() {
    let mut o = Office::new();
    o.take_over(&[]);
    let s = spec("echo", 60_000);
    o.submit("t1", &s);
    o.l.replicated(o.now, 3, task("t1"), &s, 2).unwrap();
    o.l.worker_gone(o.now, node("b"));
    assert!(!o.l.workers().contains_key(&node("b")));
    let actions = o.l.worker_up(
        o.now,
        node("c"),
        offer(&["echo"]),
        to_worker(&offer(&["echo"]), None, 20),
    );
    assert_eq!(
        actions,
        vec![Action::Assign {
            task: task("t1"),
            worker: node("c"),
            attempt: 2
        }]
    );
}

#[test]
fn replicas_and_submissions_share_the_limits() {
    let sized = |cap: &str, size: usize| TaskSpec {
        cap: cap.into(),
        payload: Payload::from(&vec![0u8; size][..]),
        ..swarm_bus::samples::task_spec()
    };
    assert_eq!(spec_refusal(&sized("echo", 10), 10), None);
    assert!(
        spec_refusal(&sized("echo", 11), 10)
            .unwrap()
            .contains("limit of 10")
    );
    assert!(spec_refusal(&sized("Bad Cap!", 1), 10).is_some());
}

#[test]
fn a_pick_without_replicas_or_zero_replicas_is_refused_with_a_reason() {
    let replicated = |replicas, pick| TaskSpec {
        replicas,
        pick,
        ..swarm_bus::samples::task_spec()
    };
    assert_eq!(spec_refusal(&replicated(Some(1), None), 1_000), None);
    assert_eq!(spec_refusal(&replicated(None, None), 1_000), None);
    assert!(
        spec_refusal(&replicated(Some(0), None), 1_000)
            .unwrap()
            .contains("at least 1")
    );
    assert_eq!(spec_refusal(&replicated(Some(3), None), 1_000), None);
    for replicas in [None, Some(1)] {
        let why = spec_refusal(
            &replicated(replicas, Some(swarm_bus::TaskPick::Median)),
            1_000,
        )
        .expect("refused");
        assert!(why.contains("2 or more"), "{why}");
    }
}

#[test]
fn more_replicas_than_workers_offering_the_capability_is_refused() {
    let mut o = Office::new();
    o.take_over(&[]);
    let three = TaskSpec {
        replicas: Some(3),
        pick: Some(swarm_bus::TaskPick::Majority),
        ..spec("echo", 1_000)
    };
    let why = refused(&o.submit("t1", &three)).to_string();
    assert!(
        why.contains("3 replicas") && why.contains("only 1"),
        "{why}"
    );
}
