//! A node's copy of the task table: every voter holds one, written before it acknowledges a
//! task, so a new leader can rebuild the schedule from a majority of copies. Unfinished tasks
//! are records; finished ones live in the bounded result store, which decides what is
//! forgotten. Pure: the caller passes the clock.

use super::result_store::{ResultBounds, ResultStore};
use crate::clock::At;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use swarm_bus::{NodeId, Payload, TaskAnswer, TaskId, TaskRecord, TaskResult, TaskState};

/// Replicas a record lists at most: a task runs on at most 255 workers, and the workers that
/// replace them are bounded by the same count again.
const MAX_REPLICA_ENTRIES: usize = 2 * u8::MAX as usize;

#[derive(Debug)]
pub struct TaskTable {
    open: BTreeMap<TaskId, TaskRecord>,
    results: ResultStore,
    /// Final tasks' records without payload or result (the store has it), for a new leader's
    /// dependency checks; forgotten with their result.
    closed: BTreeMap<TaskId, TaskRecord>,
    max_open: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the task table is full")]
pub struct Full;

impl TaskTable {
    pub fn new(limits: ResultBounds, max_open: usize) -> Self {
        Self {
            open: BTreeMap::new(),
            results: ResultStore::new(limits),
            closed: BTreeMap::new(),
            max_open,
        }
    }

    /// Unfinished tasks held.
    pub fn open_len(&self) -> usize {
        self.open.len()
    }

    pub fn record(&self, id: &TaskId) -> Option<&TaskRecord> {
        self.open.get(id).or_else(|| self.closed.get(id))
    }

    /// Takes a record (a leader's replication, or a copy a new leader merges) unless it holds
    /// a more advanced one. Returns the ids the result store evicted meanwhile.
    pub fn store(&mut self, now: At, mut record: TaskRecord) -> Result<Vec<TaskId>, Full> {
        // A copy is data from the wire: its replica list is held to what a real one can be.
        if let Some(list) = record.replicas.as_mut() {
            list.truncate(MAX_REPLICA_ENTRIES);
        }
        if let Some(held) = self.record(&record.id)
            && !advances(&record, held)
        {
            return Ok(Vec::new());
        }
        if record.state.is_final() {
            let result = record.result.clone().unwrap_or_else(|| bare(&record));
            return Ok(self.finished(now, &record.id, result));
        }
        if !self.open.contains_key(&record.id) && self.open.len() >= self.max_open {
            return Err(Full);
        }
        self.open.insert(record.id.clone(), record);
        Ok(Vec::new())
    }

    /// The leader handed `attempt` to `worker`.
    pub fn assigned(&mut self, id: &TaskId, worker: &NodeId, attempt: u32) {
        if let Some(r) = self.open.get_mut(id)
            && is_replicated(r)
        {
            r.state = TaskState::Running;
            r.attempt = r.attempt.max(attempt);
            let list = r.replicas.get_or_insert_with(Vec::new);
            let full = list.len() >= MAX_REPLICA_ENTRIES;
            match list.iter_mut().find(|a| a.worker == *worker) {
                Some(a) if a.state == TaskState::Running => a.attempt = a.attempt.max(attempt),
                Some(_) => {}
                None if !full => list.push(TaskAnswer {
                    worker: worker.clone(),
                    attempt,
                    state: TaskState::Running,
                    output: Payload::default(),
                    score: None,
                    joules: None,
                    agrees: None,
                }),
                None => {}
            }
            return;
        }
        if let Some(r) = self.open.get_mut(id)
            && attempt >= r.attempt
        {
            r.state = TaskState::Running;
            r.worker = Some(worker.clone());
            r.attempt = attempt;
        }
    }

    /// The leader put the task back in its queue (a worker went, or an attempt failed).
    /// The leader took a task from `worker`: a replica of a replicated task is dropped from
    /// its list (its place is filled by another), any other task goes back to the queue.
    pub fn revoked(&mut self, id: &TaskId, worker: Option<&NodeId>) {
        if let Some(r) = self.open.get_mut(id)
            && is_replicated(r)
        {
            if let (Some(list), Some(w)) = (r.replicas.as_mut(), worker) {
                list.retain(|a| a.worker != *w || a.state != TaskState::Running);
            }
            return;
        }
        self.requeued(id);
    }

    pub fn requeued(&mut self, id: &TaskId) {
        if let Some(r) = self.open.get_mut(id) {
            r.state = TaskState::Queued;
            r.worker = None;
        }
    }

    /// A worker's report on an attempt. Kept only for the latest attempt handed out: a new
    /// leader replays it when the old one died before deciding.
    pub fn reported(&mut self, id: &TaskId, result: TaskResult) {
        if let Some(r) = self.open.get_mut(id)
            && is_replicated(r)
        {
            // Kept only as the answer of a replica handed out, once.
            let held = r.replicas.iter_mut().flatten().find(|a| {
                Some(&a.worker) == result.worker.as_ref()
                    && a.attempt == result.attempts
                    && a.state == TaskState::Running
            });
            if let Some(a) = held
                && result.state.is_final()
            {
                a.state = result.state;
                a.output = result.output;
                a.score = result.score;
                a.joules = result.joules;
            }
            return;
        }
        if let Some(r) = self.open.get_mut(id)
            && result.attempts >= r.attempt
            && result.worker.is_some()
        {
            r.attempt = result.attempts;
            r.worker.clone_from(&result.worker);
            r.result = Some(result);
        }
    }

    /// The votes in a final word on `id` this copy can vouch for: only for a replicated task
    /// it holds open, only of workers its record lists as replicas, each once and at most as
    /// many as the task ran on. A forged word cannot invent workers or vote twice; once the task
    /// is final, a second word on it finds no open record and counts nothing.
    pub fn votes_in(&self, id: &TaskId, result: &TaskResult) -> Vec<(NodeId, bool)> {
        let Some(record) = self.open.get(id).filter(|r| is_replicated(r)) else {
            return Vec::new();
        };
        let listed: alloc::collections::BTreeSet<&NodeId> = record
            .replicas
            .iter()
            .flatten()
            .map(|a| &a.worker)
            .collect();
        let most = usize::from(record.spec.replicas.unwrap_or(1));
        let mut seen = alloc::collections::BTreeSet::new();
        result
            .answers
            .iter()
            .flatten()
            .filter(|a| listed.contains(&a.worker) && seen.insert(a.worker.clone()))
            .filter_map(|a| Some((a.worker.clone(), a.agrees?)))
            .take(most)
            .collect()
    }

    /// The task is final: its result goes to the store, which may evict others; their ids are
    /// returned, and forgotten here too.
    pub fn finished(&mut self, now: At, id: &TaskId, result: TaskResult) -> Vec<TaskId> {
        let mut record = match self.open.remove(id).or_else(|| self.closed.remove(id)) {
            Some(r) => r,
            None => TaskRecord {
                id: id.clone(),
                spec: empty_spec(),
                state: result.state,
                worker: None,
                attempt: 0,
                result: None,
                replicas: None,
            },
        };
        record.state = result.state;
        record.worker.clone_from(&result.worker);
        record.attempt = result.attempts;
        record.spec.payload = Payload::default();
        record.result = None;
        self.closed.insert(id.clone(), record);
        let evicted = self.results.put(now, id.clone(), result);
        for gone in &evicted {
            self.closed.remove(gone);
        }
        evicted
    }

    /// Drops results past their TTL; returns their ids.
    pub fn expire(&mut self, now: At) -> Vec<TaskId> {
        let gone = self.results.expire(now);
        for id in &gone {
            self.closed.remove(id);
        }
        gone
    }

    /// Where a task stands, as `task status` shows it.
    pub fn status(&mut self, now: At, id: &TaskId) -> Option<TaskResult> {
        if let Some(r) = self.open.get(id) {
            return Some(open_status(r));
        }
        let found = self.results.get(now, id).cloned();
        if found.is_none() {
            self.closed.remove(id);
        }
        found
    }

    /// Every task held, unfinished ones first.
    pub fn statuses(&mut self, now: At) -> Vec<(TaskId, TaskResult)> {
        let mut all: Vec<(TaskId, TaskResult)> = self
            .open
            .values()
            .map(|r| (r.id.clone(), open_status(r)))
            .collect();
        let closed: Vec<TaskId> = self.closed.keys().cloned().collect();
        for id in closed {
            if let Some(result) = self.status(now, &id) {
                all.push((id, result));
            }
        }
        all
    }

    /// The whole copy, as a new leader gathers it: final tasks carry their result.
    pub fn records(&self) -> Vec<TaskRecord> {
        let closed = self.closed.values().map(|r| TaskRecord {
            result: self.results.peek(&r.id).cloned(),
            ..r.clone()
        });
        self.open.values().cloned().chain(closed).collect()
    }
}

/// Whether `new` says more about a task than `held`: a final state beats any other, then a
/// later attempt, then a worker's report on the same attempt.
pub fn advances(new: &TaskRecord, held: &TaskRecord) -> bool {
    match (new.state.is_final(), held.state.is_final()) {
        (true, false) => true,
        (false, true) | (true, true) => false,
        (false, false) => {
            new.attempt > held.attempt
                || (new.attempt == held.attempt && new.result.is_some() && held.result.is_none())
                || (new.attempt == held.attempt && answered(new) > answered(held))
        }
    }
}

/// A task run on several workers.
fn is_replicated(r: &TaskRecord) -> bool {
    r.spec.replicas.is_some_and(|n| n > 1)
}

/// Replicas that answered.
fn answered(r: &TaskRecord) -> usize {
    r.replicas
        .iter()
        .flatten()
        .filter(|a| a.state.is_final())
        .count()
}

fn open_status(r: &TaskRecord) -> TaskResult {
    TaskResult {
        state: r.state,
        worker: r.worker.clone(),
        attempts: r.attempt,
        exit_code: None,
        output: Payload::default(),
        duration_ms: 0,
        joules: None,
        reason: None,
        score: None,
        answers: r.replicas.clone(),
        value: None,
    }
}

/// The result of a final record that came without one.
fn bare(r: &TaskRecord) -> TaskResult {
    TaskResult {
        reason: Some("the result was not kept".into()),
        ..open_status(r)
    }
}

fn empty_spec() -> swarm_bus::TaskSpec {
    swarm_bus::TaskSpec {
        cap: String::new(),
        priority: swarm_bus::Priority::Normal,
        after: Vec::new(),
        timeout_ms: 0,
        retries: 0,
        payload: Payload::default(),
        replicas: None,
        pick: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use swarm_bus::samples;

    fn id(s: &str) -> TaskId {
        TaskId::new(s).unwrap()
    }

    fn node(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn queued(task: &str) -> TaskRecord {
        TaskRecord {
            id: id(task),
            spec: samples::task_spec(),
            state: TaskState::Queued,
            worker: None,
            attempt: 0,
            result: None,
            replicas: None,
        }
    }

    fn result(state: TaskState, worker: &str, attempt: u32) -> TaskResult {
        TaskResult {
            state,
            worker: Some(node(worker)),
            attempts: attempt,
            ..samples::task_result()
        }
    }

    #[test]
    fn a_task_goes_from_record_to_result_and_a_late_copy_cannot_undo_it() {
        let now = At::from_millis(1_000_000);
        let mut t = TaskTable::new(ResultBounds::default(), 10);
        t.store(now, queued("a")).unwrap();
        t.assigned(&id("a"), &node("w1"), 1);
        let running = t.status(now, &id("a")).unwrap();
        assert_eq!(
            (running.state, running.attempts, running.worker),
            (TaskState::Running, 1, Some(node("w1")))
        );
        t.finished(now, &id("a"), result(TaskState::Succeeded, "w1", 1));
        assert_eq!(t.open_len(), 0);
        // A copy made before the end arrives late, e.g. in a merge: the final state stays.
        t.store(now, queued("a")).unwrap();
        let done = t.status(now, &id("a")).unwrap();
        assert_eq!(done.state, TaskState::Succeeded);
        assert_eq!(done.output.as_bytes(), b"hello");
        let records = t.records();
        assert_eq!(records.len(), 1);
        assert!(
            records[0].spec.payload.as_bytes().is_empty(),
            "no payload kept once final"
        );
        assert_eq!(
            records[0].result.as_ref().map(|r| r.state),
            Some(TaskState::Succeeded)
        );
    }

    #[test]
    fn only_the_latest_attempts_report_is_kept() {
        let now = At::from_millis(1_000_000);
        let mut t = TaskTable::new(ResultBounds::default(), 10);
        t.store(now, queued("a")).unwrap();
        t.assigned(&id("a"), &node("w1"), 2);
        t.reported(&id("a"), result(TaskState::Succeeded, "w0", 1));
        assert!(
            t.record(&id("a")).unwrap().result.is_none(),
            "attempt 1 is stale"
        );
        t.reported(&id("a"), result(TaskState::Succeeded, "w1", 2));
        assert!(t.record(&id("a")).unwrap().result.is_some());
        // An older assignment heard late does not take the task back.
        t.assigned(&id("a"), &node("w0"), 1);
        assert_eq!(t.record(&id("a")).unwrap().worker, Some(node("w1")));
    }

    #[test]
    fn merging_keeps_the_most_advanced_copy() {
        let mut a = queued("a");
        let mut b = queued("a");
        b.attempt = 1;
        b.state = TaskState::Running;
        assert!(advances(&b, &a) && !advances(&a, &b));
        a.attempt = 1;
        a.state = TaskState::Running;
        a.result = Some(result(TaskState::Succeeded, "w", 1));
        assert!(advances(&a, &b), "a report on the same attempt says more");
        let mut c = queued("a");
        c.state = TaskState::Cancelled;
        assert!(advances(&c, &a) && !advances(&a, &c));
    }

    #[test]
    fn a_full_table_refuses_new_tasks_but_takes_news_of_held_ones() {
        let now = At::from_millis(1_000_000);
        let mut t = TaskTable::new(ResultBounds::default(), 2);
        t.store(now, queued("a")).unwrap();
        t.store(now, queued("b")).unwrap();
        assert_eq!(t.store(now, queued("c")), Err(Full));
        let mut b = queued("b");
        b.attempt = 1;
        assert!(t.store(now, b).is_ok());
    }

    #[test]
    fn evicted_results_are_forgotten_with_their_records() {
        let now = At::from_millis(1_000_000);
        let limits = ResultBounds {
            max_entries: 2,
            ..ResultBounds::default()
        };
        let mut t = TaskTable::new(limits, 10);
        let mut evicted = Vec::new();
        for (i, task) in ["a", "b", "c"].iter().enumerate() {
            t.store(now, queued(task)).unwrap();
            let at = now + Duration::from_millis(i as u64);
            evicted.extend(t.finished(at, &id(task), result(TaskState::Succeeded, "w", 1)));
        }
        assert_eq!(evicted, [id("a")]);
        assert!(t.record(&id("a")).is_none() && t.status(now, &id("a")).is_none());
        assert_eq!(t.records().len(), 2);
    }

    fn replicated(task: &str, replicas: u8) -> TaskRecord {
        let mut r = queued(task);
        r.spec.replicas = Some(replicas);
        r
    }

    fn answer(worker: &str, agrees: bool) -> swarm_bus::TaskAnswer {
        swarm_bus::TaskAnswer {
            worker: node(worker),
            agrees: Some(agrees),
            ..samples::task_answer()
        }
    }

    #[test]
    fn a_replicas_reports_are_kept_per_worker_and_only_for_replicas_handed_out() {
        let now = At::from_millis(1_000_000);
        let mut t = TaskTable::new(ResultBounds::default(), 10);
        t.store(now, replicated("v", 3)).unwrap();
        t.assigned(&id("v"), &node("a"), 1);
        t.assigned(&id("v"), &node("b"), 2);
        t.reported(&id("v"), result(TaskState::Succeeded, "a", 1));
        // A stranger's report, and one for an attempt b was not given: nothing changes.
        t.reported(&id("v"), result(TaskState::Succeeded, "x", 1));
        t.reported(&id("v"), result(TaskState::Failed, "b", 9));
        let held = t.record(&id("v")).unwrap();
        assert_eq!(held.state, TaskState::Running);
        let states: Vec<_> = held
            .replicas
            .iter()
            .flatten()
            .map(|a| (a.worker.to_string(), a.state))
            .collect();
        assert_eq!(
            states,
            [
                ("a".into(), TaskState::Succeeded),
                ("b".into(), TaskState::Running)
            ]
        );
        // Revoking b drops its replica; the task stays running for the one that replaces it.
        t.revoked(&id("v"), Some(&node("b")));
        assert_eq!(
            t.record(&id("v")).unwrap().replicas.as_ref().unwrap().len(),
            1
        );
        assert_eq!(t.record(&id("v")).unwrap().state, TaskState::Running);
    }

    #[test]
    fn a_copy_from_the_wire_holds_a_bounded_replica_list() {
        let now = At::from_millis(1_000_000);
        let mut t = TaskTable::new(ResultBounds::default(), 10);
        let mut r = replicated("v", 3);
        r.replicas = Some(vec![answer("a", true); 10_000]);
        t.store(now, r).unwrap();
        let held = t.record(&id("v")).unwrap();
        assert_eq!(held.replicas.as_ref().unwrap().len(), MAX_REPLICA_ENTRIES);
    }

    #[test]
    fn only_votes_of_listed_replicas_count_once_and_only_while_the_task_is_open() {
        let now = At::from_millis(1_000_000);
        let mut t = TaskTable::new(ResultBounds::default(), 10);
        t.store(now, replicated("v", 2)).unwrap();
        t.assigned(&id("v"), &node("a"), 1);
        t.assigned(&id("v"), &node("b"), 2);
        let word = TaskResult {
            answers: Some(vec![
                answer("a", true),
                answer("a", false),
                answer("stranger", false),
                answer("b", false),
            ]),
            ..result(TaskState::Succeeded, "a", 1)
        };
        assert_eq!(
            t.votes_in(&id("v"), &word),
            [(node("a"), true), (node("b"), false)]
        );
        t.finished(now, &id("v"), word.clone());
        assert!(
            t.votes_in(&id("v"), &word).is_empty(),
            "a second word counts nothing"
        );
        t.store(now, queued("single")).unwrap();
        assert!(
            t.votes_in(&id("single"), &word).is_empty(),
            "not a replicated task"
        );
    }
}
