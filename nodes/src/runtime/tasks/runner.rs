//! The worker side: runs the attempts the leader hands this node, with handlers from its own
//! config, at most once per task id. An assignment of a task already running here only
//! changes the attempt its result will answer; one of a task already finished here gets the
//! kept result again, not a second run.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use swarm_bus::{NodeId, Payload, TaskAssign, TaskId, TaskResult};
use swarm_node::worker::{self, settings::TasksSettings};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Finished tasks remembered, so a repeated assignment is answered without running again.
const REMEMBERED: usize = 4096;

struct Running {
    attempt: u32,
    abort: AbortHandle,
}

pub struct Runner {
    me: NodeId,
    settings: Arc<TasksSettings>,
    running: HashMap<TaskId, Running>,
    done: HashMap<TaskId, TaskResult>,
    done_order: VecDeque<TaskId>,
    /// The highest leader term heard: orders from an older one are a deposed leader's.
    term: u64,
    finished_tx: mpsc::Sender<(TaskId, worker::Outcome)>,
}

/// What to do about an assignment.
pub enum Answer {
    /// Nothing to say now; a result follows when the run ends.
    Started,
    /// Already running here under an earlier attempt; the result will answer this one.
    Adopted,
    /// Already finished here: this is its result, for the new attempt.
    Again(TaskResult),
    /// Not for this node, or from a deposed leader.
    Ignored,
    /// Every slot (`tasks.slots`) is taken: an honest leader never asks this, so it is not run.
    Busy,
}

impl Runner {
    pub fn new(
        me: NodeId,
        settings: Arc<TasksSettings>,
    ) -> (Runner, mpsc::Receiver<(TaskId, worker::Outcome)>) {
        let (finished_tx, finished) = mpsc::channel(1024);
        let runner = Runner {
            me,
            settings,
            running: HashMap::new(),
            done: HashMap::new(),
            done_order: VecDeque::new(),
            term: 0,
            finished_tx,
        };
        (runner, finished)
    }

    pub fn assign(&mut self, id: TaskId, a: TaskAssign) -> Answer {
        if a.worker != self.me || a.term < self.term {
            return Answer::Ignored;
        }
        self.term = a.term;
        if let Some(r) = self.running.get_mut(&id) {
            r.attempt = r.attempt.max(a.attempt);
            return Answer::Adopted;
        }
        if let Some(kept) = self.done.get(&id) {
            return Answer::Again(TaskResult {
                attempts: a.attempt,
                ..kept.clone()
            });
        }
        if self.running.len() >= usize::try_from(self.settings.slots).unwrap_or(usize::MAX) {
            return Answer::Busy;
        }
        let (settings, tx, task) = (self.settings.clone(), self.finished_tx.clone(), id.clone());
        let timeout = Duration::from_millis(u64::from(a.timeout_ms));
        let job = tokio::spawn(async move {
            let outcome = worker::run_task(
                &settings,
                &a.cap,
                task.as_str(),
                a.payload.as_bytes(),
                timeout,
            )
            .await;
            let _ = tx.send((task, outcome)).await;
        });
        self.running.insert(
            id,
            Running {
                attempt: a.attempt,
                abort: job.abort_handle(),
            },
        );
        Answer::Started
    }

    /// Tasks running here now.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// The leader took the task away (cancelled, timed out, handed elsewhere): stop it.
    /// A command handler's process is killed with its task.
    pub fn revoke(&mut self, id: &TaskId) {
        if let Some(r) = self.running.remove(id) {
            r.abort.abort();
        }
    }

    /// A run ended: the result to publish, for the latest attempt handed over; `None` when
    /// the task was revoked meanwhile.
    pub fn finished(&mut self, id: TaskId, outcome: worker::Outcome) -> Option<TaskResult> {
        let r = self.running.remove(&id)?;
        let result = TaskResult {
            state: outcome.state,
            worker: Some(self.me.clone()),
            attempts: r.attempt,
            exit_code: outcome.exit_code,
            output: Payload(outcome.output),
            duration_ms: u32::try_from(outcome.duration.as_millis()).unwrap_or(u32::MAX),
            joules: None,
            reason: outcome.reason.or_else(|| {
                outcome
                    .truncated
                    .then(|| "output cut at max_output_bytes".to_string())
            }),
            score: outcome.score,
            answers: None,
            value: None,
        };
        // Only a success is answered again: a failed attempt may be retried here.
        if result.state == swarm_bus::TaskState::Succeeded {
            self.remember(id, result.clone());
        }
        Some(result)
    }

    fn remember(&mut self, id: TaskId, result: TaskResult) {
        if self.done.insert(id.clone(), result).is_none() {
            self.done_order.push_back(id);
        }
        while self.done_order.len() > REMEMBERED {
            if let Some(old) = self.done_order.pop_front() {
                self.done.remove(&old);
            }
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        for r in self.running.values() {
            r.abort.abort();
        }
    }
}
