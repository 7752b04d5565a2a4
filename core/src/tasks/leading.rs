//! What only the leader holds and decides about tasks: the scheduler, the workers it knows,
//! the submissions being replicated, and the takeover of the table when it takes office.
//! Sans-IO like the scheduler: the runtime asks for copies and acknowledgements, stores
//! records and publishes; every choice between those steps is made here, on simulated time
//! in the tests (`core/tests/leading.rs`).

use super::durability;
use super::replicas::Reply;
use super::reputation::{Reputation, Standing};
use super::scheduler::{
    Action, Event, Fanout, Rejection, Replica, Restored, Scheduler, Settings, Spec, Worker,
};
use super::verdict::Pick;
use crate::clock::At;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;
use swarm_bus::{Energy, NodeId, TaskId, TaskRecord, TaskSpec, TaskState, WorkerInfo};

/// Why the leader is not ready yet, as a submitter or canceller reads it.
const TAKING_OVER: &str = "the leader is taking over the task table; try again";

pub struct Leading {
    term: u64,
    voters: Vec<NodeId>,
    scheduler: Scheduler,
    /// The table was gathered from a majority: until then nothing is accepted or handed out.
    ready: bool,
    workers: BTreeMap<NodeId, WorkerInfo>,
    /// Submissions being replicated: a second one of the same id waits for the first.
    inflight: BTreeSet<TaskId>,
}

/// What the leader does with a submission.
#[derive(Debug, Clone, PartialEq)]
pub enum Submission {
    /// Say no, with this reason.
    Refuse(String),
    /// The id is taken by a task already accepted: a retried submission, accepted again.
    AlreadyAccepted,
    /// Store this record in the leader's own copy, then replicate it to the voters; the answer
    /// waits for `Leading::replicated`.
    Replicate(Box<TaskRecord>),
}

impl Leading {
    pub fn new(term: u64, voters: Vec<NodeId>, settings: Settings) -> Self {
        Self {
            term,
            voters,
            scheduler: Scheduler::new(settings),
            ready: false,
            workers: BTreeMap::new(),
            inflight: BTreeSet::new(),
        }
    }

    /// Starts from the standing of the workers this node followed as a member.
    pub fn with_reputation(mut self, reputation: Reputation) -> Self {
        self.scheduler = self.scheduler.with_reputation(reputation);
        self
    }

    /// Each worker's agreement with the decisions made so far.
    pub fn standings(&self, now: At) -> Vec<(NodeId, Standing)> {
        self.scheduler.standings(now)
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn voters(&self) -> &[NodeId] {
        &self.voters
    }

    /// The voter set changed within the same term.
    pub fn set_voters(&mut self, voters: &[NodeId]) {
        self.voters = voters.to_vec();
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Tasks not yet final.
    pub fn pending(&self) -> usize {
        self.scheduler.pending()
    }

    pub fn workers(&self) -> &BTreeMap<NodeId, WorkerInfo> {
        &self.workers
    }

    /// When the scheduler's next timer is due, once the table is taken over.
    pub fn next_wakeup(&self) -> Option<At> {
        self.ready.then(|| self.scheduler.next_wakeup()).flatten()
    }

    /// Takes office on the copies of the table a majority of the voters held, now merged into
    /// `records` (`durability::takeover` said they are enough). The workers are those of
    /// `offers` (this node's own among them) that are `live` members; `worker_of` says how
    /// each looks to the scheduler now. Reports the old leader died before deciding on are decided
    /// here, so no finished task waits for a worker that will never report again.
    pub fn take_over(
        &mut self,
        now: At,
        records: &[TaskRecord],
        offers: Vec<(NodeId, WorkerInfo)>,
        live: &BTreeSet<NodeId>,
        worker_of: impl Fn(&NodeId, &WorkerInfo) -> Worker,
    ) -> Vec<Action> {
        for (node, info) in offers {
            if live.contains(&node) {
                self.workers.insert(node, info);
            }
        }
        for (id, info) in &self.workers {
            let worker = worker_of(id, info);
            self.scheduler.handle(
                now,
                Event::WorkerUp {
                    id: id.clone(),
                    worker,
                },
            );
        }
        let restored = records.iter().map(restored).collect();
        let mut actions = self.scheduler.restore(now, restored);
        // A replicated task's answers are in its record's replicas, resumed by `restore`.
        for r in records
            .iter()
            .filter(|r| r.state == TaskState::Running && r.spec.replicas.unwrap_or(1) <= 1)
        {
            if let Some(report) = r.result.as_ref().filter(|x| x.attempts == r.attempt)
                && let Some(worker) = report.worker.clone()
            {
                actions.extend(self.scheduler.handle(
                    now,
                    Event::Finished {
                        task: r.id.clone(),
                        worker,
                        attempt: report.attempts,
                        ok: report.state == TaskState::Succeeded,
                        reason: report.reason.clone(),
                        output: report.output.as_bytes().to_vec(),
                        score: report.score,
                        joules: report.joules,
                    },
                ));
            }
        }
        self.ready = true;
        actions
    }

    /// A submission of `spec` (none if the query carried no spec) under `id`. On `Replicate`
    /// the id is held until `replicated`, so a second submission of it waits.
    pub fn submit(
        &mut self,
        now: At,
        id: &TaskId,
        spec: Option<&TaskSpec>,
        max_payload: usize,
    ) -> Submission {
        if !self.ready {
            return Submission::Refuse(TAKING_OVER.into());
        }
        let Some(spec) = spec else {
            return Submission::Refuse("the query carries no task spec".into());
        };
        if let Some(why) = spec_refusal(spec, max_payload) {
            return Submission::Refuse(why);
        }
        if self.inflight.contains(id) {
            return Submission::Refuse("a submission of this id is being stored; try again".into());
        }
        match self.scheduler.check(now, id, &to_spec(spec)) {
            Ok(()) => {}
            Err(Rejection::Duplicate) => return Submission::AlreadyAccepted,
            Err(r) => return Submission::Refuse(r.to_string()),
        }
        self.inflight.insert(id.clone());
        Submission::Replicate(Box::new(TaskRecord {
            id: id.clone(),
            spec: spec.clone(),
            state: TaskState::Queued,
            worker: None,
            attempt: 0,
            result: None,
            replicas: None,
        }))
    }

    /// The leader's own copy could not take the record `submit` handed out: the id is free
    /// for another submission.
    pub fn abandon(&mut self, id: &TaskId) {
        self.inflight.remove(id);
    }

    /// The replication of a submission made in `term` ended with `acks` voters holding it
    /// (the leader's own copy among them): accepted and scheduled on a majority, refused
    /// otherwise. The scheduler's `Accept` or `Reject` answers the submitter.
    pub fn replicated(
        &mut self,
        now: At,
        term: u64,
        id: TaskId,
        spec: &TaskSpec,
        acks: usize,
    ) -> Result<Vec<Action>, String> {
        if term != self.term {
            return Err("leadership changed while storing the task; try again".into());
        }
        self.inflight.remove(&id);
        durability::replicated(self.voters.len(), acks)?;
        Ok(self.scheduler.handle(
            now,
            Event::Submit {
                id,
                spec: to_spec(spec),
            },
        ))
    }

    /// A cancellation of `id`: what to carry out, or why not.
    pub fn cancel(&mut self, now: At, id: TaskId) -> Result<Vec<Action>, String> {
        if !self.ready {
            return Err(TAKING_OVER.into());
        }
        match self.scheduler.state(&id) {
            None => return Err(format!("no task `{id}`")),
            Some((state, _, _)) if state.is_final() => return Err(format!("the task is {state}")),
            Some(_) => {}
        }
        Ok(self.scheduler.handle(now, Event::Cancel { id }))
    }

    /// A worker offered `info` (`worker`: how it looks to the scheduler now).
    pub fn worker_up(
        &mut self,
        now: At,
        node: NodeId,
        info: WorkerInfo,
        worker: Worker,
    ) -> Vec<Action> {
        self.workers.insert(node.clone(), info);
        self.handle(now, Event::WorkerUp { id: node, worker })
    }

    /// A member's token went: what it ran is handed out again.
    pub fn worker_gone(&mut self, now: At, node: NodeId) -> Vec<Action> {
        self.workers.remove(&node);
        self.handle(now, Event::WorkerGone { id: node })
    }

    /// A task's record left this node's copy: the scheduler forgets it too.
    pub fn forget(&mut self, id: &TaskId) {
        self.scheduler.forget(id);
    }

    /// Feeds the scheduler once the table is taken over; what happened before is covered by
    /// the takeover itself.
    pub fn handle(&mut self, now: At, event: Event) -> Vec<Action> {
        if !self.ready {
            return Vec::new();
        }
        self.scheduler.handle(now, event)
    }
}

/// Why a task spec may not be held, submitted or replicated: a payload over the limit or a
/// capability that is no capability name. Replicas and submissions share it, so a forged
/// replica cannot store what the leader would refuse.
pub fn spec_refusal(spec: &TaskSpec, max_payload: usize) -> Option<String> {
    let size = spec.payload.as_bytes().len();
    if size > max_payload {
        Some(format!(
            "a payload of {size} bytes is over this swarm's limit of {max_payload}"
        ))
    } else if !is_capability_name(&spec.cap) {
        Some(format!("`{}` is not a capability name", spec.cap))
    } else if spec.replicas == Some(0) {
        Some("a task runs on at least 1 worker (`replicas` 0)".into())
    } else if spec.pick.is_some() && spec.replicas.unwrap_or(1) <= 1 {
        // Said, not ignored: one answer is no vote.
        Some("a `pick` decides between the answers of several replicas: ask for 2 or more".into())
    } else {
        None
    }
}

/// A capability's name as configs hold it and task specs carry it: a-z, 0-9, `.`, `_`, `-`,
/// at most 63 characters.
pub fn is_capability_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// A spec as the scheduler takes it.
pub fn to_spec(s: &TaskSpec) -> Spec {
    Spec {
        capability: s.cap.clone(),
        priority: s.priority,
        after: s.after.clone(),
        timeout: Duration::from_millis(u64::from(s.timeout_ms)),
        retries: u32::from(s.retries),
        fanout: s.replicas.filter(|n| *n > 1).map(|n| Fanout {
            replicas: usize::from(n),
            pick: s.pick.unwrap_or(Pick::Majority),
        }),
    }
}

fn restored(r: &TaskRecord) -> Restored {
    Restored {
        id: r.id.clone(),
        spec: to_spec(&r.spec),
        state: r.state,
        attempts: r.attempt,
        worker: r.worker.clone(),
        replicas: r
            .replicas
            .iter()
            .flatten()
            .map(|a| Replica {
                worker: a.worker.clone(),
                attempt: a.attempt,
                reply: a.state.is_final().then(|| Reply {
                    worker: a.worker.clone(),
                    attempt: a.attempt,
                    ok: a.state == TaskState::Succeeded,
                    output: a.output.as_bytes().to_vec(),
                    score: a.score,
                    joules: a.joules,
                }),
            })
            .collect(),
    }
}

/// A worker as the scheduler sees it: what it offers, and its load and power from its latest
/// energy sample.
pub fn to_worker(info: &WorkerInfo, energy: Option<&Energy>, low_battery_pct: u8) -> Worker {
    let on_battery = energy.is_some_and(|e| e.battery_pct.is_some() && e.charging != Some(true));
    Worker {
        capabilities: info.caps.iter().cloned().collect::<BTreeSet<_>>(),
        slots: u32::from(info.slots.max(1)),
        cpu_load: energy.map_or(0.0, |e| f32::from(e.cpu_pct) / 100.0),
        on_battery,
        battery_low: on_battery
            && energy
                .and_then(|e| e.battery_pct)
                .is_some_and(|p| p < low_battery_pct),
        eff_pct: energy.and_then(|e| e.eff_pct),
        idempotent: info.idempotent.iter().cloned().collect(),
    }
}
