//! The leader's scheduler on simulated time: priorities, dependencies, timeouts, retries,
//! the circuit breaker, reassignment, cancellation and refusals.

use core::time::Duration;
use std::collections::BTreeSet;
use swarm_bus::{NodeId, Priority, TaskId, TaskState};
use swarm_core::clock::At;
use swarm_core::tasks::{Action, Event, Rejection, Restored, Scheduler, Settings, Spec, Worker};

fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn task(s: &str) -> TaskId {
    TaskId::new(s).unwrap()
}

fn worker(caps: &[&str], slots: u32) -> Worker {
    Worker {
        capabilities: caps.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>(),
        slots,
        cpu_load: 0.1,
        on_battery: false,
        battery_low: false,
        eff_pct: None,
        idempotent: caps.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>(),
    }
}

fn spec(cap: &str) -> Spec {
    Spec {
        capability: cap.into(),
        priority: Priority::Normal,
        after: vec![],
        timeout: Duration::from_secs(10),
        retries: 0,
        fanout: None,
    }
}

struct Harness {
    s: Scheduler,
    now: At,
}

impl Harness {
    fn new(settings: Settings) -> Self {
        Self {
            s: Scheduler::new(settings),
            now: At::from_millis(1_000_000),
        }
    }

    fn on(&mut self, event: Event) -> Vec<Action> {
        self.s.handle(self.now, event)
    }

    fn worker(&mut self, id: &str, caps: &[&str], slots: u32) {
        let out = self.on(Event::WorkerUp {
            id: node(id),
            worker: worker(caps, slots),
        });
        assert!(out.is_empty(), "{out:?}");
    }

    fn submit(&mut self, id: &str, spec: Spec) -> Vec<Action> {
        self.on(Event::Submit { id: task(id), spec })
    }

    fn finish(&mut self, id: &str, on: &str, attempt: u32, ok: bool) -> Vec<Action> {
        self.on(Event::Finished {
            task: task(id),
            worker: node(on),
            attempt,
            ok,
            reason: (!ok).then(|| "exit 1".to_string()),
            output: Vec::new(),
            score: None,
            joules: None,
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

fn assigned(actions: &[Action]) -> Vec<(String, String, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Assign {
                task,
                worker,
                attempt,
            } => Some((task.to_string(), worker.to_string(), *attempt)),
            _ => None,
        })
        .collect()
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

#[test]
fn higher_priority_runs_first_and_slots_are_respected() {
    let mut h = Harness::new(Settings::default());
    h.worker("w1", &["echo"], 1);
    // The slot is taken by the first task; the others queue.
    assert_eq!(assigned(&h.submit("first", spec("echo"))).len(), 1);
    h.submit(
        "low",
        Spec {
            priority: Priority::Low,
            ..spec("echo")
        },
    );
    h.submit(
        "critical",
        Spec {
            priority: Priority::Critical,
            ..spec("echo")
        },
    );
    h.submit("normal", spec("echo"));
    let mut order = vec![];
    let mut running = ("first".to_string(), 1);
    for _ in 0..3 {
        let out = h.finish(&running.0, "w1", running.1, true);
        let next = assigned(&out);
        assert_eq!(next.len(), 1, "{out:?}");
        order.push(next[0].0.clone());
        running = (next[0].0.clone(), next[0].2);
    }
    assert_eq!(order, ["critical", "normal", "low"]);
}

#[test]
fn a_task_runs_only_after_its_dependencies_succeed_and_fails_with_them() {
    let mut h = Harness::new(Settings::default());
    h.worker("w1", &["echo"], 4);
    h.submit("a", spec("echo"));
    h.submit("b", spec("echo"));
    let out = h.submit(
        "c",
        Spec {
            after: vec![task("a"), task("b")],
            ..spec("echo")
        },
    );
    assert!(assigned(&out).is_empty(), "c waits: {out:?}");
    assert!(
        assigned(&h.finish("a", "w1", 1, true)).is_empty(),
        "b still runs"
    );
    assert_eq!(assigned(&h.finish("b", "w1", 1, true))[0].0, "c");

    // A failed dependency fails its dependents, and theirs, with a reason.
    h.submit("x", spec("echo"));
    h.submit(
        "y",
        Spec {
            after: vec![task("x")],
            ..spec("echo")
        },
    );
    h.submit(
        "z",
        Spec {
            after: vec![task("y")],
            ..spec("echo")
        },
    );
    let out = h.finish("x", "w1", 1, false);
    assert_eq!(
        done(&out),
        [
            ("x".into(), TaskState::Failed),
            ("y".into(), TaskState::Failed),
            ("z".into(), TaskState::Failed)
        ]
    );
    let why = out.iter().find_map(|a| match a {
        Action::Done {
            task: t, reason, ..
        } if t.as_str() == "z" => reason.clone(),
        _ => None,
    });
    assert_eq!(why.as_deref(), Some("dependency `y` failed"));
    // Depending on a task that already failed fails at once.
    let out = h.submit(
        "late",
        Spec {
            after: vec![task("x")],
            ..spec("echo")
        },
    );
    assert_eq!(done(&out), [("late".into(), TaskState::Failed)]);
}

#[test]
fn bad_specs_are_refused_with_a_reason() {
    let mut h = Harness::new(Settings {
        max_pending: 2,
        ..Settings::default()
    });
    h.worker("w1", &["echo"], 1);
    let reason = |out: Vec<Action>| match out.as_slice() {
        [Action::Reject { reason, .. }] => reason.clone(),
        other => panic!("not refused: {other:?}"),
    };
    assert_eq!(
        reason(h.submit("cam", spec("camera.capture"))),
        Rejection::UnknownCapability("camera.capture".into())
    );
    assert_eq!(
        reason(h.submit(
            "self",
            Spec {
                after: vec![task("self")],
                ..spec("echo")
            }
        )),
        Rejection::Cycle
    );
    assert_eq!(
        reason(h.submit(
            "orphan",
            Spec {
                after: vec![task("nope")],
                ..spec("echo")
            }
        )),
        Rejection::UnknownDependency(task("nope"))
    );
    assert_eq!(
        reason(h.submit(
            "now",
            Spec {
                timeout: Duration::ZERO,
                ..spec("echo")
            }
        )),
        Rejection::ZeroTimeout
    );
    h.submit("one", spec("echo"));
    h.submit("two", spec("echo"));
    assert_eq!(
        reason(h.submit("three", spec("echo"))),
        Rejection::TableFull
    );
    // The same id again is the same task: accepted again, not run twice.
    let again = h.submit("one", spec("echo"));
    assert_eq!(again, [Action::Accept { id: task("one") }]);
}

#[test]
fn a_timed_out_attempt_is_revoked_and_retried_after_a_backoff() {
    let mut h = Harness::new(Settings {
        backoff: Duration::from_secs(1),
        ..Settings::default()
    });
    h.worker("w1", &["echo"], 1);
    h.submit(
        "t",
        Spec {
            retries: 2,
            fanout: None,
            timeout: Duration::from_secs(5),
            ..spec("echo")
        },
    );
    assert_eq!(h.s.next_wakeup(), Some(h.now + Duration::from_secs(5)));
    let out = h.advance(Duration::from_secs(5));
    assert!(
        out.contains(&Action::Revoke {
            task: task("t"),
            worker: node("w1")
        }),
        "{out:?}"
    );
    assert!(assigned(&out).is_empty(), "backing off: {out:?}");
    assert_eq!(h.state("t"), TaskState::Queued);
    let out = h.advance(Duration::from_secs(1));
    assert_eq!(assigned(&out), [("t".into(), "w1".into(), 2)]);
    // The first attempt's late result is not the current one.
    assert!(h.finish("t", "w1", 1, true).is_empty());
    assert_eq!(h.s.stale_results, 1);
    // Second failure: the backoff doubles.
    h.finish("t", "w1", 2, false);
    assert!(assigned(&h.advance(Duration::from_secs(1))).is_empty());
    assert_eq!(
        assigned(&h.advance(Duration::from_secs(1))),
        [("t".into(), "w1".into(), 3)]
    );
    // Out of retries: failed, saying how often it tried.
    let out = h.finish("t", "w1", 3, false);
    assert_eq!(done(&out), [("t".into(), TaskState::Failed)]);
}

#[test]
fn a_gone_worker_tasks_go_to_another_and_complete_once() {
    let mut h = Harness::new(Settings::default());
    h.worker("w1", &["echo"], 2);
    let first = assigned(&h.submit("t", spec("echo")));
    assert_eq!(first, [("t".into(), "w1".into(), 1)]);
    h.worker("w2", &["echo"], 2);
    let out = h.on(Event::WorkerGone { id: node("w1") });
    assert_eq!(assigned(&out), [("t".into(), "w2".into(), 2)]);
    // The gone worker's result, should it arrive, does not complete the task twice.
    assert!(h.finish("t", "w1", 1, true).is_empty());
    assert_eq!(
        done(&h.finish("t", "w2", 2, true)),
        [("t".into(), TaskState::Succeeded)]
    );
    assert!(
        h.finish("t", "w2", 2, true).is_empty(),
        "a repeated result is ignored"
    );
}

#[test]
fn the_breaker_opens_after_failures_and_one_probe_closes_it() {
    let settings = Settings {
        breaker_failures: 2,
        breaker_cooldown: Duration::from_secs(30),
        ..Settings::default()
    };
    let mut h = Harness::new(settings);
    h.worker("flaky", &["echo"], 4);
    for (i, name) in ["f1", "f2"].into_iter().enumerate() {
        h.submit(name, spec("echo"));
        h.finish(name, "flaky", 1, false);
        assert_eq!(h.state(name), TaskState::Failed, "attempt {i}");
    }
    // Open: new work waits for the cool-down even though slots are free.
    assert!(assigned(&h.submit("a", spec("echo"))).is_empty());
    assert!(assigned(&h.submit("b", spec("echo"))).is_empty());
    assert_eq!(h.s.next_wakeup(), Some(h.now + Duration::from_secs(30)));
    // Half-open: exactly one probe.
    let out = h.advance(Duration::from_secs(30));
    assert_eq!(assigned(&out), [("a".into(), "flaky".into(), 1)]);
    // The probe succeeds: closed, the rest flows.
    assert_eq!(
        assigned(&h.finish("a", "flaky", 1, true)),
        [("b".into(), "flaky".into(), 1)]
    );
}

#[test]
fn cancelling_stops_the_task_and_fails_its_dependents() {
    let mut h = Harness::new(Settings::default());
    h.worker("w1", &["echo"], 1);
    h.submit("run", spec("echo"));
    h.submit("queued", spec("echo"));
    h.submit(
        "after",
        Spec {
            after: vec![task("run")],
            ..spec("echo")
        },
    );
    let out = h.on(Event::Cancel { id: task("run") });
    assert!(
        out.contains(&Action::Revoke {
            task: task("run"),
            worker: node("w1")
        }),
        "{out:?}"
    );
    assert_eq!(h.state("run"), TaskState::Cancelled);
    assert_eq!(h.state("after"), TaskState::Failed);
    // Its slot is free again: the queued task takes it.
    assert_eq!(assigned(&out), [("queued".into(), "w1".into(), 1)]);
    assert!(
        h.on(Event::Cancel { id: task("run") }).is_empty(),
        "cancelling twice does nothing"
    );
}

#[test]
fn thousands_of_tasks_all_finish_exactly_once() {
    let mut h = Harness::new(Settings::default());
    for w in ["w1", "w2", "w3", "w4", "w5"] {
        h.worker(w, &["echo"], 8);
    }
    let mut queue: Vec<(String, String, u32)> = vec![];
    for i in 0..5000 {
        queue.extend(assigned(&h.submit(&format!("t{i}"), spec("echo"))));
    }
    let mut finished = BTreeSet::new();
    while let Some((t, w, attempt)) = queue.pop() {
        let out = h.finish(&t, &w, attempt, true);
        for (task, state) in done(&out) {
            assert_eq!(state, TaskState::Succeeded);
            assert!(finished.insert(task.clone()), "{task} finished twice");
        }
        queue.extend(assigned(&out));
    }
    assert_eq!(finished.len(), 5000);
    assert_eq!(h.s.pending(), 0);
}

#[test]
fn a_timed_out_task_whose_handler_is_not_idempotent_fails_rather_than_run_twice() {
    let mut h = Harness::new(Settings::default());
    let out = h.on(Event::WorkerUp {
        id: node("w1"),
        worker: Worker {
            idempotent: BTreeSet::new(),
            ..worker(&["camera"], 1)
        },
    });
    assert!(out.is_empty());
    h.submit(
        "snap",
        Spec {
            retries: 3,
            fanout: None,
            timeout: Duration::from_secs(5),
            ..spec("camera")
        },
    );
    let out = h.advance(Duration::from_secs(5));
    assert_eq!(done(&out), [("snap".into(), TaskState::Failed)]);
    assert!(assigned(&h.advance(Duration::from_secs(60))).is_empty());
}

#[test]
fn a_new_leader_restores_the_table_without_running_anything_twice() {
    let mut h = Harness::new(Settings::default());
    h.worker("alive", &["echo"], 4);
    let restored = |id: &str, state, attempts, worker: Option<&str>, after: &[&str]| Restored {
        id: task(id),
        spec: Spec {
            after: after.iter().map(|a| task(a)).collect(),
            ..spec("echo")
        },
        state,
        attempts,
        worker: worker.map(node),
        replicas: vec![],
    };
    let out = h.s.restore(
        h.now,
        vec![
            // Listed before its dependency: the order of a copy is no order at all.
            restored("waits", TaskState::Queued, 0, None, &["running"]),
            restored("done", TaskState::Succeeded, 1, Some("alive"), &[]),
            restored("running", TaskState::Running, 1, Some("alive"), &[]),
            restored("orphan", TaskState::Running, 2, Some("dead"), &[]),
            restored("queued", TaskState::Queued, 0, None, &["done"]),
            restored("doomed", TaskState::Queued, 0, None, &["lost"]),
            restored("lost", TaskState::Failed, 1, Some("alive"), &[]),
        ],
    );
    let mut got = assigned(&out);
    got.sort();
    assert_eq!(
        got,
        [
            ("orphan".into(), "alive".into(), 3),
            ("queued".into(), "alive".into(), 1),
        ],
        "the task on a live worker stays there, unassigned again: {out:?}"
    );
    assert_eq!(done(&out), [("doomed".into(), TaskState::Failed)]);
    assert_eq!(h.state("running"), TaskState::Running);
    assert_eq!(h.state("waits"), TaskState::Queued);
    // The kept task's result is current, and its dependent goes next.
    let out = h.finish("running", "alive", 1, true);
    assert_eq!(done(&out), [("running".into(), TaskState::Succeeded)]);
    assert_eq!(assigned(&out), [("waits".into(), "alive".into(), 1)]);
    // A final task can be forgotten (its result evicted); a new task may not depend on it.
    h.s.forget(&task("done"));
    let out = h.submit(
        "late",
        Spec {
            after: vec![task("done")],
            ..spec("echo")
        },
    );
    assert!(
        out.iter().any(|a| matches!(a, Action::Reject { .. })),
        "{out:?}"
    );
}
