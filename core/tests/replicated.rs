//! Tasks run on several workers, on simulated time (docs/tasks.md#federated): distinct
//! workers, the vote as answers come, replicas revoked once decided, a worker that goes
//! replaced while time remains, the undecided state, reputation keeping a dissenter out, and a
//! new leader resuming a vote where the copies say it stood.

use core::time::Duration;
use std::collections::BTreeSet;
use swarm_bus::{NodeId, Priority, TaskId, TaskPick, TaskState};
use swarm_core::clock::At;
use swarm_core::tasks::replicas::Reply;
use swarm_core::tasks::{
    Action, Event, Fanout, Rejection, Replica, Restored, Scheduler, Settings, Spec, Voted, Worker,
};

fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn task(s: &str) -> TaskId {
    TaskId::new(s).unwrap()
}

fn worker(slots: u32) -> Worker {
    Worker {
        capabilities: ["read".to_string()].into_iter().collect::<BTreeSet<_>>(),
        slots,
        cpu_load: 0.1,
        on_battery: false,
        battery_low: false,
        eff_pct: None,
        idempotent: BTreeSet::new(),
    }
}

fn spec(replicas: usize, pick: TaskPick) -> Spec {
    Spec {
        capability: "read".into(),
        priority: Priority::Normal,
        after: vec![],
        timeout: Duration::from_secs(10),
        retries: 0,
        fanout: Some(Fanout { replicas, pick }),
    }
}

struct Harness {
    s: Scheduler,
    now: At,
}

impl Harness {
    /// A leader knowing workers w1..=wn, one slot each, taken in turn.
    fn new(n: usize) -> Self {
        let settings = Settings {
            strategy: swarm_core::tasks::Strategy::RoundRobin,
            ..Settings::default()
        };
        let mut h = Self {
            s: Scheduler::new(settings),
            now: At::from_millis(1_000_000),
        };
        for i in 1..=n {
            h.on(Event::WorkerUp {
                id: node(&format!("w{i}")),
                worker: worker(1),
            });
        }
        h
    }

    fn on(&mut self, event: Event) -> Vec<Action> {
        self.s.handle(self.now, event)
    }

    fn submit(&mut self, id: &str, spec: Spec) -> Vec<Action> {
        self.on(Event::Submit { id: task(id), spec })
    }

    fn answer(&mut self, id: &str, on: &str, attempt: u32, output: &str) -> Vec<Action> {
        self.on(Event::Finished {
            task: task(id),
            worker: node(on),
            attempt,
            ok: true,
            reason: None,
            output: output.as_bytes().to_vec(),
            score: None,
            joules: Some(0.5),
        })
    }

    fn advance(&mut self, by: Duration) -> Vec<Action> {
        self.now += by;
        self.on(Event::Tick)
    }

    fn state(&self, id: &str) -> TaskState {
        self.s.state(&task(id)).expect("known task").0
    }
}

fn assigned(actions: &[Action]) -> Vec<(String, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Assign {
                worker, attempt, ..
            } => Some((worker.to_string(), *attempt)),
            _ => None,
        })
        .collect()
}

fn revoked(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Revoke { worker, .. } => Some(worker.to_string()),
            _ => None,
        })
        .collect()
}

fn voted(actions: &[Action]) -> Option<&Voted> {
    actions.iter().find_map(|a| match a {
        Action::Voted { voted, .. } => Some(&**voted),
        _ => None,
    })
}

fn done(actions: &[Action]) -> Vec<(String, TaskState)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Done { task, state, .. } => Some((task.to_string(), *state)),
            _ => None,
        })
        .collect()
}

fn names(ids: &[NodeId]) -> Vec<String> {
    ids.iter().map(|n| n.to_string()).collect()
}

#[test]
fn a_majority_of_three_decides_names_the_dissenter_and_frees_every_slot() {
    let mut h = Harness::new(5);
    let out = h.submit("t1", spec(3, TaskPick::Majority));
    let workers = assigned(&out);
    assert_eq!(workers.len(), 3, "{out:?}");
    let distinct: BTreeSet<_> = workers.iter().map(|(w, _)| w.clone()).collect();
    assert_eq!(distinct.len(), 3, "three distinct workers");
    let [(a, na), (b, nb), (c, nc)] = [&workers[0], &workers[1], &workers[2]].map(|x| x.clone());
    assert!(
        h.answer("t1", &b, nb, "41").is_empty(),
        "one answer decides nothing"
    );
    assert!(h.answer("t1", &a, na, "42").is_empty(), "41 against 42");
    let out = h.answer("t1", &c, nc, "42");
    let v = voted(&out).expect("decided");
    let d = v.decision.as_ref().expect("a majority");
    assert_eq!(v.replies[d.chosen].output, b"42");
    assert_eq!(names(&d.agreeing), vec![a.clone(), c.clone()]);
    assert_eq!(names(&d.dissenting), vec![b.clone()]);
    assert_eq!(v.joules, 1.5, "three replicas at 0.5 J each");
    assert_eq!(done(&out), vec![("t1".into(), TaskState::Succeeded)]);
    // Every worker is free again: a second task of 3 runs at once.
    let out = h.submit("t2", spec(3, TaskPick::Majority));
    assert_eq!(assigned(&out).len(), 3, "{out:?}");
    // Late answers change nothing and are counted.
    let stale = h.s.stale_results;
    assert!(h.answer("t1", &b, nb, "42").is_empty());
    assert_eq!(h.s.stale_results, stale + 1);
}

#[test]
fn a_worker_that_keeps_dissenting_is_no_longer_chosen() {
    // Three workers, three replicas: w3 is in every vote until its reputation drops it.
    let mut h = Harness::new(4);
    h.on(Event::WorkerGone { id: node("w4") });
    for i in 0..10 {
        let id = format!("t{i}");
        let out = h.submit(&id, spec(3, TaskPick::Majority));
        let workers = assigned(&out);
        if workers.is_empty() {
            // Too few trusted workers left for three replicas: refused, with the reason.
            assert!(
                matches!(
                    &out[..],
                    [Action::Reject {
                        reason: Rejection::TooFewWorkers { offering: 2, .. },
                        ..
                    }]
                ),
                "{out:?}"
            );
            assert!(i >= 2, "a newcomer survives one dissent; dropped after {i}");
            let standing = h.s.standings(h.now);
            let w3 = standing.iter().find(|(w, _)| *w == node("w3")).unwrap().1;
            assert!(!w3.eligible && w3.agreed == 0, "{w3:?}");
            return;
        }
        // w3 answers first, so its answer is in before the other two decide.
        let mut workers = workers;
        workers.sort_by_key(|(w, _)| w != "w3");
        for (w, n) in workers {
            let output = if w == "w3" { "wrong" } else { "right" };
            let out = h.answer(&id, &w, n, output);
            if let Some(v) = voted(&out) {
                assert_eq!(names(&v.decision.as_ref().unwrap().dissenting), vec!["w3"]);
            }
        }
        assert_eq!(h.state(&id), TaskState::Succeeded);
    }
    panic!("w3 was chosen in every round");
}

#[test]
fn first_valid_revokes_the_others_at_the_first_success() {
    let mut h = Harness::new(3);
    let out = h.submit("t1", spec(3, TaskPick::FirstValid));
    let workers = assigned(&out);
    let (w, n) = workers[1].clone();
    let out = h.answer("t1", &w, n, "frame");
    let mut others: Vec<String> = workers.iter().map(|(x, _)| x.clone()).collect();
    others.retain(|x| *x != w);
    assert_eq!(
        revoked(&out),
        others,
        "the two still running are stopped at once"
    );
    assert_eq!(done(&out), vec![("t1".into(), TaskState::Succeeded)]);
}

#[test]
fn a_worker_that_goes_is_replaced_while_time_remains_and_not_after() {
    let mut h = Harness::new(4);
    let out = h.submit("t1", spec(3, TaskPick::Majority));
    let workers = assigned(&out);
    let spare = ["w1", "w2", "w3", "w4"]
        .into_iter()
        .find(|w| workers.iter().all(|(x, _)| x != w))
        .unwrap();
    let out = h.on(Event::WorkerGone {
        id: node(&workers[0].0),
    });
    assert_eq!(assigned(&out), vec![(spare.to_string(), 4)], "{out:?}");
    // Now nobody is left to replace the next one that goes; at the deadline the two answers
    // in hand do not make a majority of three.
    h.on(Event::WorkerGone {
        id: node(&workers[1].0),
    });
    h.answer("t1", spare, 4, "x");
    let out = h.advance(Duration::from_secs(10));
    assert_eq!(revoked(&out), vec![workers[2].0.clone()]);
    let v = voted(&out).expect("the vote ended");
    assert!(v.decision.is_none() && v.replies.len() == 1, "{v:?}");
    assert_eq!(done(&out), vec![("t1".into(), TaskState::Undecided)]);
}

#[test]
fn an_undecided_task_fails_what_depends_on_it() {
    let mut h = Harness::new(2);
    let out = h.submit("t1", spec(2, TaskPick::Majority));
    let later = Spec {
        after: vec![task("t1")],
        fanout: None,
        ..spec(1, TaskPick::Majority)
    };
    h.submit("t2", later);
    let workers = assigned(&out);
    h.answer("t1", &workers[0].0, workers[0].1, "a");
    let out = h.answer("t1", &workers[1].0, workers[1].1, "b");
    assert_eq!(
        done(&out),
        vec![
            ("t1".into(), TaskState::Undecided),
            ("t2".into(), TaskState::Failed)
        ],
        "{out:?}"
    );
    assert!(
        voted(&out)
            .unwrap()
            .why
            .as_ref()
            .unwrap()
            .contains("no majority")
    );
}

#[test]
fn the_median_of_five_names_the_outlier() {
    let mut h = Harness::new(5);
    let out = h.submit("t1", spec(5, TaskPick::Median));
    let mut last = Vec::new();
    for ((w, n), v) in assigned(&out)
        .into_iter()
        .zip(["20.1", "20.4", "85.0", "20.2", "20.3"])
    {
        last = h.answer("t1", &w, n, v);
    }
    let v = voted(&last).expect("decided once all five are in");
    let d = v.decision.as_ref().unwrap();
    assert_eq!(d.value, Some(20.3));
    assert_eq!(d.dissenting.len(), 1);
    assert_eq!(
        v.replies
            .iter()
            .find(|r| r.worker == d.dissenting[0])
            .unwrap()
            .output,
        b"85.0"
    );
}

#[test]
fn cancelling_revokes_every_replica() {
    let mut h = Harness::new(3);
    let out = h.submit("t1", spec(3, TaskPick::Majority));
    let mut workers: Vec<String> = assigned(&out).into_iter().map(|(w, _)| w).collect();
    workers.sort();
    let out = h.on(Event::Cancel { id: task("t1") });
    let mut gone = revoked(&out);
    gone.sort();
    assert_eq!(gone, workers);
    assert_eq!(done(&out), vec![("t1".into(), TaskState::Cancelled)]);
}

#[test]
fn too_many_replicas_for_the_workers_offering_it_are_refused() {
    let mut h = Harness::new(2);
    let out = h.submit("t1", spec(3, TaskPick::Majority));
    assert!(
        matches!(
            &out[..],
            [Action::Reject {
                reason: Rejection::TooFewWorkers {
                    wanted: 3,
                    offering: 2,
                    ..
                },
                ..
            }]
        ),
        "{out:?}"
    );
}

fn reply(worker: &str, attempt: u32, output: &str) -> Reply {
    Reply {
        worker: node(worker),
        attempt,
        ok: true,
        output: output.as_bytes().to_vec(),
        score: None,
        joules: None,
    }
}

fn restored(replicas: Vec<Replica>) -> Restored {
    Restored {
        id: task("t1"),
        spec: spec(3, TaskPick::Majority),
        state: TaskState::Running,
        attempts: 3,
        worker: None,
        replicas,
    }
}

#[test]
fn a_new_leader_decides_a_vote_the_copies_show_settled_once() {
    let mut h = Harness::new(3);
    let out = h.s.restore(
        h.now,
        vec![restored(vec![
            Replica {
                worker: node("w1"),
                attempt: 1,
                reply: Some(reply("w1", 1, "42")),
            },
            Replica {
                worker: node("w2"),
                attempt: 2,
                reply: Some(reply("w2", 2, "42")),
            },
            Replica {
                worker: node("w3"),
                attempt: 3,
                reply: None,
            },
        ])],
    );
    assert_eq!(revoked(&out), vec!["w3"]);
    assert_eq!(done(&out), vec![("t1".into(), TaskState::Succeeded)]);
    assert!(assigned(&out).is_empty(), "nothing runs twice");
    let again = h.answer("t1", "w3", 3, "42");
    assert!(done(&again).is_empty(), "decided once");
}

#[test]
fn a_new_leader_resumes_a_vote_and_refills_the_place_of_a_worker_that_went() {
    let mut h = Harness::new(4);
    h.on(Event::WorkerGone { id: node("w3") });
    let out = h.s.restore(
        h.now,
        vec![restored(vec![
            Replica {
                worker: node("w1"),
                attempt: 1,
                reply: Some(reply("w1", 1, "42")),
            },
            Replica {
                worker: node("w2"),
                attempt: 2,
                reply: None,
            },
            Replica {
                worker: node("w3"),
                attempt: 3,
                reply: None,
            },
        ])],
    );
    assert_eq!(
        assigned(&out),
        vec![("w4".to_string(), 4)],
        "w3 went: w4 takes its place"
    );
    assert!(done(&out).is_empty());
    let out = h.answer("t1", "w2", 2, "42");
    assert_eq!(revoked(&out), vec!["w4"]);
    let v = voted(&out).unwrap();
    assert_eq!(
        names(&v.decision.as_ref().unwrap().agreeing),
        vec!["w1", "w2"]
    );
}
