//! The leader's task scheduler as a sans-IO state machine: events with a timestamp in, actions
//! out. Priority queues, a dependency DAG, per-worker slots, timeouts, retries with backoff, a
//! circuit breaker per worker and reassignment when a worker goes; no clock, no bus inside.

use super::breaker::Breaker;
use super::replicas::{Replicas, Reply, Step};
use super::reputation::{Reputation, Standing};
use super::strategy::{Candidate, Strategy};
use super::verdict::{Decision, Pick};
use crate::clock::At;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, BinaryHeap};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::time::Duration;
use swarm_bus::{NodeId, Priority, TaskId, TaskState};

#[derive(Debug, Clone)]
pub struct Settings {
    pub strategy: Strategy,
    /// Failures in a row that open a worker's breaker, and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    /// Wait before the first retry; doubled for each further one, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Most tasks the table holds unfinished; more are refused, so a flood cannot exhaust the
    /// leader's memory.
    pub max_pending: usize,
    /// Reputation below which a worker is not chosen for replicated tasks (0 to 1).
    pub reputation_floor: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            strategy: Strategy::default(),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(30),
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_pending: 100_000,
            reputation_floor: super::reputation::FLOOR,
        }
    }
}

/// What a task asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub capability: String,
    pub priority: Priority,
    /// Tasks that must succeed first.
    pub after: Vec<TaskId>,
    pub timeout: Duration,
    /// Further attempts after a failure.
    pub retries: u32,
    /// Run on several distinct workers and decide by their answers (docs/tasks.md#federated).
    pub fanout: Option<Fanout>,
}

/// A task run on several workers: how many, and how their answers become one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fanout {
    pub replicas: usize,
    pub pick: Pick,
}

/// A replica of a task as a copy of the table holds it: handed out, and answered or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    pub worker: NodeId,
    pub attempt: u32,
    pub reply: Option<Reply>,
}

/// How the replicas of a task ended: the decision (none when undecided, with why), every
/// answer, and the joules they cost together. Comes right before the task's `Done`.
#[derive(Debug, Clone, PartialEq)]
pub struct Voted {
    pub decision: Option<Decision>,
    pub why: Option<String>,
    pub replies: Vec<Reply>,
    pub joules: f32,
}

/// A worker as it advertises itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    pub capabilities: BTreeSet<String>,
    /// Tasks it runs at once.
    pub slots: u32,
    pub cpu_load: f32,
    pub on_battery: bool,
    pub battery_low: bool,
    pub eff_pct: Option<u8>,
    /// Capabilities whose handler here is marked idempotent: a timed-out attempt of one is
    /// retried. Any other may still be running, so it fails rather than run twice.
    pub idempotent: BTreeSet<String>,
}

/// A task as a new leader found it in the swarm's copies of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    pub id: TaskId,
    pub spec: Spec,
    pub state: TaskState,
    pub attempts: u32,
    pub worker: Option<NodeId>,
    /// A replicated task's replicas as the copy held them: the vote resumes where it stood.
    pub replicas: Vec<Replica>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Submit {
        id: TaskId,
        spec: Spec,
    },
    Cancel {
        id: TaskId,
    },
    /// A worker joined or its figures changed.
    WorkerUp {
        id: NodeId,
        worker: Worker,
    },
    /// Its liveliness token went: what it ran is handed out again.
    WorkerGone {
        id: NodeId,
    },
    Finished {
        task: TaskId,
        worker: NodeId,
        attempt: u32,
        ok: bool,
        reason: Option<String>,
        /// What it answered: counted when the task runs on several workers.
        output: Vec<u8>,
        score: Option<f64>,
        joules: Option<f32>,
    },
    /// Time passed: timeouts, backoffs and breaker cool-downs are due.
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Duplicate,
    UnknownCapability(String),
    UnknownDependency(TaskId),
    Cycle,
    TableFull,
    ZeroTimeout,
    /// More replicas asked for than workers offer the capability (and are trusted with it).
    TooFewWorkers {
        capability: String,
        wanted: usize,
        offering: usize,
    },
}

impl core::fmt::Display for Rejection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Rejection::Duplicate => write!(f, "a task with this id exists"),
            Rejection::UnknownCapability(c) => write!(f, "no worker has capability `{c}`"),
            Rejection::UnknownDependency(d) => write!(f, "unknown dependency `{d}`"),
            Rejection::Cycle => write!(f, "the task depends on itself"),
            Rejection::TableFull => write!(f, "the task table is full; try again later"),
            Rejection::ZeroTimeout => write!(f, "a timeout of 0 can never succeed"),
            Rejection::TooFewWorkers {
                capability,
                wanted,
                offering,
            } => write!(
                f,
                "{wanted} replicas asked for, but only {offering} worker(s) offer `{capability}` \
                 (and are above the reputation floor)"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Accept {
        id: TaskId,
    },
    Reject {
        id: TaskId,
        reason: Rejection,
    },
    /// Run `task` on `worker`; `attempt` counts from 1 and tells a late result from a current one.
    Assign {
        task: TaskId,
        worker: NodeId,
        attempt: u32,
    },
    /// Stop `task` on `worker` (cancelled or timed out).
    Revoke {
        task: TaskId,
        worker: NodeId,
    },
    /// A replicated task's vote ended; its `Done` follows.
    Voted {
        task: TaskId,
        voted: Box<Voted>,
    },
    /// The task reached a final state.
    Done {
        task: TaskId,
        state: TaskState,
        reason: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct Task {
    spec: Spec,
    state: TaskState,
    attempts: u32,
    worker: Option<NodeId>,
    deadline: Option<At>,
    /// Retry backoff: not before this.
    not_before: Option<At>,
    /// Dependencies not yet succeeded.
    waiting_on: usize,
    seq: u64,
    /// A replicated task's replicas, once it runs.
    replicas: Option<Box<Replicas>>,
}

/// A task ready to run, highest priority first, then first come.
type Ready = (Priority, Reverse<u64>, TaskId);

#[derive(Debug)]
pub struct Scheduler {
    settings: Settings,
    tasks: BTreeMap<TaskId, Task>,
    /// Who waits on a task.
    dependents: BTreeMap<TaskId, Vec<TaskId>>,
    ready: BinaryHeap<Ready>,
    workers: BTreeMap<NodeId, WorkerSlot>,
    last_pick: Option<NodeId>,
    seq: u64,
    /// Tasks not yet final: timers and counts walk these, not the finished ones the table
    /// keeps for dependencies.
    open: BTreeSet<TaskId>,
    /// Results from an old attempt or a worker the task is not on.
    pub stale_results: u64,
    /// Agreement of each worker with past decisions: weighs `weighted` votes, and keeps a
    /// worker below the floor out of replicated tasks.
    reputation: Reputation,
    /// Replicated tasks running with places to fill (a worker went, or too few were free).
    filling: BTreeSet<TaskId>,
}

#[derive(Debug)]
struct WorkerSlot {
    info: Worker,
    running: BTreeSet<TaskId>,
    breaker: Breaker,
}

impl Scheduler {
    pub fn new(settings: Settings) -> Self {
        Self {
            reputation: Reputation::new(
                super::reputation::MAX_WORKERS,
                super::reputation::MEMORY,
                settings.reputation_floor,
            ),
            settings,
            tasks: BTreeMap::new(),
            dependents: BTreeMap::new(),
            ready: BinaryHeap::new(),
            workers: BTreeMap::new(),
            last_pick: None,
            seq: 0,
            open: BTreeSet::new(),
            stale_results: 0,
            filling: BTreeSet::new(),
        }
    }

    /// Starts from what the swarm already knows of its workers (a new leader takes the
    /// standing its node followed as a member).
    pub fn with_reputation(mut self, reputation: Reputation) -> Self {
        self.reputation = reputation;
        self
    }

    /// Each worker's agreement with the decisions so far.
    pub fn standings(&self, now: At) -> Vec<(NodeId, Standing)> {
        self.reputation
            .workers()
            .map(|w| (w.clone(), self.reputation.standing(now, w)))
            .collect()
    }

    pub fn state(&self, id: &TaskId) -> Option<(TaskState, u32, Option<&NodeId>)> {
        self.tasks
            .get(id)
            .map(|t| (t.state, t.attempts, t.worker.as_ref()))
    }

    /// Tasks not yet final.
    pub fn pending(&self) -> usize {
        self.open.len()
    }

    /// When the next timeout, backoff or breaker cool-down is due.
    pub fn next_wakeup(&self) -> Option<At> {
        let tasks = self
            .open
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .filter_map(|t| match t.state {
                TaskState::Running => match &t.replicas {
                    Some(r) => Some(r.deadline()),
                    None => t.deadline,
                },
                TaskState::Queued => t.not_before,
                _ => None,
            });
        let breakers = self.workers.values().filter_map(|w| w.breaker.reopens_at());
        tasks.chain(breakers).min()
    }

    pub fn handle(&mut self, now: At, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Submit { id, spec } => self.submit(now, id, spec, &mut out),
            Event::Cancel { id } => self.cancel(id, &mut out),
            Event::WorkerUp { id, worker } => match self.workers.get_mut(&id) {
                Some(w) => w.info = worker,
                None => {
                    self.workers.insert(
                        id,
                        WorkerSlot {
                            info: worker,
                            running: BTreeSet::new(),
                            breaker: Breaker::default(),
                        },
                    );
                }
            },
            Event::WorkerGone { id } => {
                if let Some(w) = self.workers.remove(&id) {
                    for task in w.running {
                        match self.tasks.get_mut(&task).and_then(|t| t.replicas.as_mut()) {
                            Some(r) => {
                                r.gone(&id);
                                self.filling.insert(task);
                            }
                            None => self.requeue(now, &task, None),
                        }
                    }
                }
            }
            Event::Finished {
                task,
                worker,
                attempt,
                ok,
                reason,
                output,
                score,
                joules,
            } => {
                let replicated = self.tasks.get(&task).is_some_and(|t| t.replicas.is_some());
                if replicated {
                    let reply = Reply {
                        worker,
                        attempt,
                        ok,
                        output,
                        score,
                        joules,
                    };
                    self.replica_answered(now, task, reply, &mut out);
                } else {
                    self.finished(now, task, worker, attempt, ok, reason, &mut out);
                }
            }
            Event::Tick => self.expire(now, &mut out),
        }
        self.dispatch(now, &mut out);
        out
    }

    /// Why a submission would be refused, without taking it: the leader asks before it
    /// replicates a task, and submits it once a majority holds the record.
    /// `Err(Duplicate)` means the id is taken: a retried submission, to be accepted again.
    pub fn check(&self, now: At, id: &TaskId, spec: &Spec) -> Result<(), Rejection> {
        if self.tasks.contains_key(id) {
            return Err(Rejection::Duplicate);
        }
        if spec.after.contains(id) {
            return Err(Rejection::Cycle);
        }
        if let Some(unknown) = spec.after.iter().find(|d| !self.tasks.contains_key(*d)) {
            return Err(Rejection::UnknownDependency(unknown.clone()));
        }
        if spec.timeout.is_zero() {
            return Err(Rejection::ZeroTimeout);
        }
        let known = self
            .workers
            .values()
            .any(|w| w.info.capabilities.contains(&spec.capability));
        if !known {
            return Err(Rejection::UnknownCapability(spec.capability.clone()));
        }
        if self.pending() >= self.settings.max_pending {
            return Err(Rejection::TableFull);
        }
        if let Some(f) = spec.fanout {
            let offering = self
                .workers
                .iter()
                .filter(|(id, w)| {
                    w.info.capabilities.contains(&spec.capability)
                        && self.reputation.eligible(now, id)
                })
                .count();
            if offering < f.replicas {
                return Err(Rejection::TooFewWorkers {
                    capability: spec.capability.clone(),
                    wanted: f.replicas,
                    offering,
                });
            }
        }
        Ok(())
    }

    fn submit(&mut self, now: At, id: TaskId, spec: Spec, out: &mut Vec<Action>) {
        match self.check(now, &id, &spec) {
            Ok(()) => {}
            // The same id again is a retry of a submission that was accepted: say so again.
            Err(Rejection::Duplicate) => return out.push(Action::Accept { id }),
            Err(reason) => return out.push(Action::Reject { id, reason }),
        }
        // A dependency already failed or cancelled: this task can never run.
        let doomed = spec.after.iter().find(|d| {
            self.tasks
                .get(*d)
                .is_some_and(|t| matches!(t.state, TaskState::Failed | TaskState::Cancelled))
        });
        let doomed = doomed.cloned();
        let waiting_on = spec
            .after
            .iter()
            .filter(|d| {
                self.tasks
                    .get(*d)
                    .is_some_and(|t| t.state != TaskState::Succeeded)
            })
            .count();
        for dep in &spec.after {
            self.dependents
                .entry(dep.clone())
                .or_default()
                .push(id.clone());
        }
        self.seq += 1;
        let priority = spec.priority;
        self.tasks.insert(
            id.clone(),
            Task {
                spec,
                state: TaskState::Queued,
                attempts: 0,
                worker: None,
                deadline: None,
                not_before: None,
                waiting_on,
                seq: self.seq,
                replicas: None,
            },
        );
        self.open.insert(id.clone());
        out.push(Action::Accept { id: id.clone() });
        if let Some(dep) = doomed {
            self.fail(
                &id,
                TaskState::Failed,
                format!("dependency `{dep}` did not succeed"),
                out,
            );
        } else if waiting_on == 0 {
            self.ready.push((priority, Reverse(self.seq), id));
        }
    }

    /// Takes over a table gathered from the swarm's copies. Final tasks stay final, so later
    /// tasks can depend on them. A task running on a worker this scheduler knows keeps running
    /// there, with a fresh deadline: it is not run twice. Every other unfinished task is
    /// queued. Workers must be known (`WorkerUp`) first.
    pub fn restore(&mut self, now: At, tasks: Vec<Restored>) -> Vec<Action> {
        let mut out = Vec::new();
        let mut restored = Vec::new();
        for r in tasks {
            if self.tasks.contains_key(&r.id) {
                continue;
            }
            let on_live_worker = r.state == TaskState::Running
                && r.worker
                    .as_ref()
                    .is_some_and(|w| self.workers.contains_key(w));
            let state = if r.state.is_final() || on_live_worker {
                r.state
            } else {
                TaskState::Queued
            };
            let worker = if on_live_worker { r.worker } else { None };
            if let Some(w) = worker.as_ref().and_then(|w| self.workers.get_mut(w)) {
                w.running.insert(r.id.clone());
            }
            // A vote under way resumes: the answers in stay, the replicas still out on live
            // workers keep running (with a fresh deadline), the places of the others refill.
            let resumed = match r.spec.fanout {
                Some(f) if r.state == TaskState::Running && !r.replicas.is_empty() => {
                    let out: Vec<(NodeId, u32)> = r
                        .replicas
                        .iter()
                        .filter(|x| x.reply.is_none() && self.workers.contains_key(&x.worker))
                        .map(|x| (x.worker.clone(), x.attempt))
                        .collect();
                    let replies = r.replicas.iter().filter_map(|x| x.reply.clone());
                    let earlier = r
                        .replicas
                        .iter()
                        .filter(|x| x.reply.is_none() && !self.workers.contains_key(&x.worker))
                        .map(|x| (x.worker.clone(), x.attempt));
                    let deadline = now + r.spec.timeout;
                    let resumed =
                        Replicas::resume(f.replicas, f.pick, deadline, out, replies, earlier);
                    for w in resumed.running() {
                        if let Some(slot) = self.workers.get_mut(w) {
                            slot.running.insert(r.id.clone());
                        }
                    }
                    Some(Box::new(resumed))
                }
                _ => None,
            };
            let state = if resumed.is_some() {
                TaskState::Running
            } else {
                state
            };
            if !state.is_final() {
                self.open.insert(r.id.clone());
            }
            self.seq += 1;
            self.tasks.insert(
                r.id.clone(),
                Task {
                    deadline: (state == TaskState::Running).then(|| now + r.spec.timeout),
                    spec: r.spec,
                    state,
                    attempts: r.attempts,
                    worker,
                    not_before: None,
                    waiting_on: 0,
                    seq: self.seq,
                    replicas: resumed,
                },
            );
            restored.push(r.id);
        }
        // Dependencies once every task is in, whatever order the copies listed them in. One
        // no copy holds any more was final and its result evicted: it no longer holds anyone up.
        let mut doomed = Vec::new();
        for id in restored {
            let Some(t) = self.tasks.get(&id) else {
                continue;
            };
            if t.state != TaskState::Queued {
                continue;
            }
            let mut waiting_on = 0;
            for dep in t.spec.after.clone() {
                match self.tasks.get(&dep).map(|d| d.state) {
                    Some(TaskState::Failed | TaskState::Cancelled) => {
                        doomed.push((id.clone(), dep.clone()));
                    }
                    Some(TaskState::Succeeded) | None => {}
                    Some(_) => {
                        waiting_on += 1;
                        self.dependents.entry(dep).or_default().push(id.clone());
                    }
                }
            }
            if let Some(t) = self.tasks.get_mut(&id) {
                t.waiting_on = waiting_on;
                if waiting_on == 0 {
                    self.ready
                        .push((t.spec.priority, Reverse(t.seq), id.clone()));
                }
            }
        }
        for (id, dep) in doomed {
            let reason = format!("dependency `{dep}` did not succeed");
            self.fail(&id, TaskState::Failed, reason, &mut out);
        }
        // Votes the answers in hand already settle are decided now; the others refill.
        let voting: Vec<TaskId> = self
            .open
            .iter()
            .filter(|id| self.tasks.get(*id).is_some_and(|t| t.replicas.is_some()))
            .cloned()
            .collect();
        for id in voting {
            let rep = &self.reputation;
            let steps = match self.tasks.get_mut(&id).and_then(|t| t.replicas.as_mut()) {
                Some(r) => r.settle(now, |w| rep.score(now, w)),
                None => continue,
            };
            self.carry_out(now, &id, steps, &mut out);
            self.filling.insert(id);
        }
        self.dispatch(now, &mut out);
        out
    }

    /// Drops a final task (its result was evicted from the store): the table stays bounded.
    /// A later task naming it as a dependency is refused as unknown.
    pub fn forget(&mut self, id: &TaskId) {
        if self.tasks.get(id).is_some_and(|t| t.state.is_final()) {
            self.tasks.remove(id);
            self.dependents.remove(id);
        }
    }

    fn cancel(&mut self, id: TaskId, out: &mut Vec<Action>) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        if task.state.is_final() {
            return;
        }
        let replicas: Vec<NodeId> = task
            .replicas
            .as_ref()
            .map(|r| r.running().cloned().collect())
            .unwrap_or_default();
        for worker in replicas {
            if let Some(w) = self.workers.get_mut(&worker) {
                w.running.remove(&id);
            }
            out.push(Action::Revoke {
                task: id.clone(),
                worker,
            });
        }
        if let Some(worker) = task.worker.clone() {
            if let Some(w) = self.workers.get_mut(&worker) {
                w.running.remove(&id);
            }
            out.push(Action::Revoke {
                task: id.clone(),
                worker,
            });
        }
        self.fail(&id, TaskState::Cancelled, "cancelled".into(), out);
    }

    #[allow(clippy::too_many_arguments)]
    fn finished(
        &mut self,
        now: At,
        id: TaskId,
        worker: NodeId,
        attempt: u32,
        ok: bool,
        reason: Option<String>,
        out: &mut Vec<Action>,
    ) {
        let current = self.tasks.get(&id).is_some_and(|t| {
            t.state == TaskState::Running
                && t.attempts == attempt
                && t.worker.as_ref() == Some(&worker)
        });
        if !current {
            self.stale_results += 1;
            return;
        }
        self.release(now, &worker, &id, ok);
        if ok {
            self.succeed(&id, out);
        } else {
            self.failed_attempt(now, &id, reason.unwrap_or_else(|| "failed".into()), out);
        }
    }

    fn succeed(&mut self, id: &TaskId, out: &mut Vec<Action>) {
        if let Some(t) = self.tasks.get_mut(id) {
            self.open.remove(id);
            self.filling.remove(id);
            t.state = TaskState::Succeeded;
            t.deadline = None;
        }
        out.push(Action::Done {
            task: id.clone(),
            state: TaskState::Succeeded,
            reason: None,
        });
        for dependent in self.dependents.remove(id).unwrap_or_default() {
            if let Some(t) = self.tasks.get_mut(&dependent) {
                t.waiting_on = t.waiting_on.saturating_sub(1);
                if t.waiting_on == 0 && t.state == TaskState::Queued {
                    self.ready
                        .push((t.spec.priority, Reverse(t.seq), dependent.clone()));
                }
            }
        }
    }

    /// An attempt failed: again after a backoff while retries are left, else the task fails.
    fn failed_attempt(&mut self, now: At, id: &TaskId, reason: String, out: &mut Vec<Action>) {
        let Some(t) = self.tasks.get(id) else {
            return;
        };
        if t.attempts > t.spec.retries {
            let reason = format!("{reason} (after {} attempts)", t.attempts);
            self.fail(id, TaskState::Failed, reason, out);
            return;
        }
        let exp = t.attempts.saturating_sub(1).min(16);
        let backoff = (self.settings.backoff * 2u32.pow(exp)).min(self.settings.max_backoff);
        self.requeue(now, id, Some(now + backoff));
    }

    /// Back to the queue: after a failed attempt (with a backoff) or from a worker that went.
    fn requeue(&mut self, now: At, id: &TaskId, not_before: Option<At>) {
        let Some(t) = self.tasks.get_mut(id) else {
            return;
        };
        if t.state.is_final() {
            return;
        }
        t.state = TaskState::Queued;
        t.worker = None;
        t.deadline = None;
        t.not_before = not_before.filter(|at| *at > now);
        self.ready
            .push((t.spec.priority, Reverse(t.seq), id.clone()));
    }

    /// A final state other than success; dependents fail with it.
    fn fail(&mut self, id: &TaskId, state: TaskState, reason: String, out: &mut Vec<Action>) {
        let mut doomed = vec![(id.clone(), state, reason)];
        while let Some((id, state, reason)) = doomed.pop() {
            let Some(t) = self.tasks.get_mut(&id) else {
                continue;
            };
            if t.state.is_final() {
                continue;
            }
            self.open.remove(&id);
            self.filling.remove(&id);
            t.state = state;
            t.deadline = None;
            t.worker = None;
            out.push(Action::Done {
                task: id.clone(),
                state,
                reason: Some(reason),
            });
            for dependent in self.dependents.remove(&id).unwrap_or_default() {
                let why = format!("dependency `{id}` {state}");
                doomed.push((dependent, TaskState::Failed, why));
            }
        }
    }

    fn expire(&mut self, now: At, out: &mut Vec<Action>) {
        let votes_due: Vec<TaskId> = self
            .open
            .iter()
            .filter(|id| {
                self.tasks
                    .get(*id)
                    .and_then(|t| t.replicas.as_ref())
                    .is_some_and(|r| r.deadline() <= now)
            })
            .cloned()
            .collect();
        for id in votes_due {
            let rep = &self.reputation;
            let steps = match self.tasks.get_mut(&id).and_then(|t| t.replicas.as_mut()) {
                Some(r) => r.expire(now, |w| rep.score(now, w)),
                None => continue,
            };
            // A replica still out at the deadline counts against its worker, as a late
            // single attempt does.
            for step in &steps {
                if let Step::Revoke { worker } = step
                    && let Some(w) = self.workers.get_mut(worker)
                {
                    let s = &self.settings;
                    w.breaker
                        .failed(now, s.breaker_failures, s.breaker_cooldown);
                }
            }
            self.carry_out(now, &id, steps, out);
        }
        let late: Vec<(TaskId, NodeId)> = self
            .open
            .iter()
            .filter_map(|id| self.tasks.get(id).map(|t| (id, t)))
            .filter(|(_, t)| t.replicas.is_none())
            .filter(|(_, t)| t.state == TaskState::Running && t.deadline.is_some_and(|d| d <= now))
            .filter_map(|(id, t)| t.worker.clone().map(|w| (id.clone(), w)))
            .collect();
        for (id, worker) in late {
            let mut retry = false;
            if let Some(w) = self.workers.get_mut(&worker) {
                w.running.remove(&id);
                let s = &self.settings;
                w.breaker
                    .failed(now, s.breaker_failures, s.breaker_cooldown);
                retry = self
                    .tasks
                    .get(&id)
                    .is_some_and(|t| w.info.idempotent.contains(&t.spec.capability));
            }
            out.push(Action::Revoke {
                task: id.clone(),
                worker,
            });
            if retry {
                self.failed_attempt(now, &id, "timed out".into(), out);
            } else {
                let reason = "timed out; not retried: the handler is not idempotent".into();
                self.fail(&id, TaskState::Failed, reason, out);
            }
        }
    }

    /// Hands out ready tasks, best first, while workers have room for them.
    fn dispatch(&mut self, now: At, out: &mut Vec<Action>) {
        for id in core::mem::take(&mut self.filling) {
            if self.fill(now, &id, out) {
                self.filling.insert(id);
            }
        }
        let mut held = Vec::new();
        while let Some(entry) = self.ready.pop() {
            // Every slot taken: nothing more can go out, whatever is queued.
            if !self
                .workers
                .values()
                .any(|w| (w.running.len() as u32) < w.info.slots)
            {
                held.push(entry);
                break;
            }
            let id = entry.2.clone();
            let Some(task) = self.tasks.get(&id) else {
                continue;
            };
            // Entries of tasks that moved on since they were queued are dropped here.
            if task.state != TaskState::Queued || task.waiting_on > 0 {
                continue;
            }
            if task.not_before.is_some_and(|at| at > now) {
                held.push(entry);
                continue;
            }
            let (capability, timeout) = (task.spec.capability.clone(), task.spec.timeout);
            if let Some(f) = task.spec.fanout {
                if self.ranked(now, &capability, true).is_empty() {
                    held.push(entry);
                    continue;
                }
                if let Some(t) = self.tasks.get_mut(&id) {
                    t.state = TaskState::Running;
                    t.not_before = None;
                    t.replicas = Some(Box::new(Replicas::new(f.replicas, f.pick, now + timeout)));
                }
                if self.fill(now, &id, out) {
                    self.filling.insert(id);
                }
                continue;
            }
            let Some(worker) = self.choose(now, &capability) else {
                held.push(entry);
                continue;
            };
            let Some(t) = self.tasks.get_mut(&id) else {
                continue;
            };
            t.state = TaskState::Running;
            t.attempts += 1;
            t.worker = Some(worker.clone());
            t.deadline = Some(now + timeout);
            t.not_before = None;
            let attempt = t.attempts;
            if let Some(w) = self.workers.get_mut(&worker) {
                w.running.insert(id.clone());
                w.breaker.assigned();
            }
            self.last_pick = Some(worker.clone());
            out.push(Action::Assign {
                task: id,
                worker,
                attempt,
            });
        }
        self.ready.extend(held);
    }

    /// Hands a running replicated task's missing places to the best free workers that have
    /// not run it; true while places are left to fill.
    fn fill(&mut self, now: At, id: &TaskId, out: &mut Vec<Action>) -> bool {
        let Some(capability) = self.tasks.get(id).map(|t| t.spec.capability.clone()) else {
            return false;
        };
        let missing = self
            .tasks
            .get(id)
            .and_then(|t| t.replicas.as_ref())
            .map_or(0, |r| r.missing());
        if missing == 0 {
            return false;
        }
        let ranked = self.ranked(now, &capability, true);
        let steps = match self.tasks.get_mut(id).and_then(|t| t.replicas.as_mut()) {
            Some(r) => r.fill(now, ranked),
            None => return false,
        };
        self.carry_out(now, id, steps, out);
        self.tasks
            .get(id)
            .and_then(|t| t.replicas.as_ref())
            .is_some_and(|r| r.missing() > 0 && now < r.deadline())
    }

    /// A run of `id` on `worker` ended: its slot is free, and its breaker hears how it went.
    fn release(&mut self, now: At, worker: &NodeId, id: &TaskId, ok: bool) {
        if let Some(w) = self.workers.get_mut(worker) {
            w.running.remove(id);
            if ok {
                w.breaker.succeeded();
            } else {
                let s = &self.settings;
                w.breaker
                    .failed(now, s.breaker_failures, s.breaker_cooldown);
            }
        }
    }

    /// A replica's answer: counted, and the vote decided once it can be.
    fn replica_answered(&mut self, now: At, id: TaskId, reply: Reply, out: &mut Vec<Action>) {
        let (worker, ok) = (reply.worker.clone(), reply.ok);
        let rep = &self.reputation;
        let steps = match self.tasks.get_mut(&id).and_then(|t| t.replicas.as_mut()) {
            Some(r) if r.awaits(&reply.worker, reply.attempt) => {
                r.answered(now, reply, |w| rep.score(now, w))
            }
            _ => {
                self.stale_results += 1;
                return;
            }
        };
        self.release(now, &worker, &id, ok);
        self.carry_out(now, &id, steps, out);
    }

    /// Carries out a replica set's steps: assignments and revocations on the workers' slots,
    /// and the vote's end as `Voted` then `Done`, with each voter's agreement remembered.
    fn carry_out(&mut self, now: At, id: &TaskId, steps: Vec<Step>, out: &mut Vec<Action>) {
        for step in steps {
            match step {
                Step::Assign { worker, attempt } => {
                    if let Some(w) = self.workers.get_mut(&worker) {
                        w.running.insert(id.clone());
                        w.breaker.assigned();
                    }
                    if let Some(t) = self.tasks.get_mut(id) {
                        t.attempts = t.attempts.max(attempt);
                    }
                    self.last_pick = Some(worker.clone());
                    out.push(Action::Assign {
                        task: id.clone(),
                        worker,
                        attempt,
                    });
                }
                Step::Revoke { worker } => {
                    if let Some(w) = self.workers.get_mut(&worker) {
                        w.running.remove(id);
                    }
                    out.push(Action::Revoke {
                        task: id.clone(),
                        worker,
                    });
                }
                Step::Decided {
                    decision,
                    replies,
                    joules,
                } => {
                    for w in &decision.agreeing {
                        self.reputation.record(now, w, true);
                    }
                    for w in &decision.dissenting {
                        self.reputation.record(now, w, false);
                    }
                    if let Some(t) = self.tasks.get_mut(id) {
                        t.worker = replies.get(decision.chosen).map(|r| r.worker.clone());
                    }
                    let voted = Voted {
                        decision: Some(decision),
                        why: None,
                        replies,
                        joules,
                    };
                    out.push(Action::Voted {
                        task: id.clone(),
                        voted: Box::new(voted),
                    });
                    self.succeed(id, out);
                }
                Step::Undecided {
                    why,
                    replies,
                    joules,
                } => {
                    let voted = Voted {
                        decision: None,
                        why: Some(why.clone()),
                        replies,
                        joules,
                    };
                    out.push(Action::Voted {
                        task: id.clone(),
                        voted: Box::new(voted),
                    });
                    self.fail(id, TaskState::Undecided, why, out);
                }
            }
        }
    }

    fn choose(&mut self, now: At, capability: &str) -> Option<NodeId> {
        self.ranked(now, capability, false).into_iter().next()
    }

    /// The workers free to run `capability` now, best first by the strategy; for a replicated
    /// task (`vouched`) only those whose reputation is above the floor.
    fn ranked(&mut self, now: At, capability: &str, vouched: bool) -> Vec<NodeId> {
        let rep = &self.reputation;
        let eligible: Vec<NodeId> = self
            .workers
            .iter_mut()
            .filter(|(_, w)| {
                w.info.capabilities.contains(capability) && (w.running.len() as u32) < w.info.slots
            })
            .filter(|(id, _)| !vouched || rep.eligible(now, id))
            .filter_map(|(id, w)| w.breaker.allows(now).then(|| id.clone()))
            .collect();
        let candidates: Vec<Candidate> = eligible
            .iter()
            .filter_map(|id| {
                let w = self.workers.get(id)?;
                Some(Candidate {
                    id,
                    running: w.running.len() as u32,
                    slots: w.info.slots,
                    cpu_load: w.info.cpu_load,
                    capabilities: w.info.capabilities.len(),
                    on_battery: w.info.on_battery,
                    battery_low: w.info.battery_low,
                    eff_pct: w.info.eff_pct,
                })
            })
            .collect();
        self.settings
            .strategy
            .rank(&candidates, self.last_pick.as_ref())
            .into_iter()
            .cloned()
            .collect()
    }
}
