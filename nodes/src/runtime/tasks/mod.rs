//! Tasks on the bus, as one async task beside the node's main loop (docs/tasks.md).
//!
//! Every node keeps a copy of the task table and runs what it is assigned; the leader also
//! schedules. Keys, all under `swarm/<s>/task/<id>/`:
//! - `submit`: a query with a `TaskSpec`; the leader answers `TaskAck` once a majority of the
//!   voters stored the task (a query on `spec` each answers when written to its copy);
//! - `assign`: the leader hands an attempt to a worker;
//! - `result`: a worker's report; queried, every copy says where the task stands;
//! - `state`: the leader's word on a task it requeued or closed;
//! - `cancel`: a query the leader answers.
//!
//! Per node: `node/<id>/worker` (what it offers) and `node/<id>/tasks` (its copy, for a new
//! leader). A node that starts or restarts answers neither until it has caught up on the
//! table from a majority of the voters' copies (docs/tasks.md#durability), so a copy emptied
//! by a restart never counts as one that holds the swarm's tasks.

mod final_word;
mod runner;

use runner::{Answer, Runner};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{
    self as bus, DropCounters, HeldQuery, HeldQueryable, MemberEvent, MemberWatch, Refused,
    TaskSubscriber, TypedSubscriber,
};
use swarm_bus::{
    Leaf, NodeId, Payload, SwarmKey, SwarmKeys, TaskAck, TaskAssign, TaskId, TaskLeaf, TaskRecord,
    TaskResult, TaskSpec, TaskState, WorkerInfo,
};
use swarm_core::clock::{At, Epoch};
use swarm_node::tasks::durability::{
    self, Acks, CatchUp, GATHER_TIMEOUT, REPLICATE_TIMEOUT, Takeover,
};
use swarm_node::tasks::reputation::{self, Reputation, Standing};
use swarm_node::tasks::{
    Action, Event, Leading, Submission, TaskTable, Voted, spec_refusal, to_worker,
};
use swarm_node::worker::settings::TasksSettings;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

// When copies and acknowledgements make a majority, and the timing of the rounds of asking
// for them (`REPLICATE_TIMEOUT`, `GATHER_TIMEOUT`, `GATHER_RETRY`, `CATCH_UP_ROUNDS`), are
// decided in `swarm_node::tasks::durability`; this service asks and carries out.

/// How often the leader refreshes its workers' load and power.
const LOAD_EVERY: Duration = Duration::from_secs(1);
/// The longest the loop sleeps without a timer of its own.
const IDLE: Duration = Duration::from_secs(3600);

/// Each worker's agreement with the decisions on replicated tasks, as this node heard them:
/// written by the task service, read for `state` (its own line) and `/metrics` (every worker).
pub type Agreement = Arc<std::sync::Mutex<std::collections::BTreeMap<NodeId, Standing>>>;

/// What the election tells the task service.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ctl {
    pub leads: bool,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub voters: Vec<NodeId>,
}

/// The running service; dropping it stops it, and with it any handler still running.
pub struct TaskService {
    task: JoinHandle<()>,
    ctl: watch::Sender<Ctl>,
}

impl TaskService {
    pub fn update(&self, ctl: Ctl) {
        self.ctl.send_if_modified(|old| {
            let changed = *old != ctl;
            *old = ctl;
            changed
        });
    }
}

impl Drop for TaskService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub struct Context {
    pub session: zenoh::Session,
    pub keys: SwarmKeys,
    pub me: NodeId,
    pub settings: TasksSettings,
    /// This node's snapshot: members, and their energy for the scheduler.
    pub view: tokio::sync::watch::Receiver<super::view::NodeView>,
    pub drops: DropCounters,
    pub low_battery_pct: u8,
    /// The node's clock for the cores (`swarm_core::clock`).
    pub epoch: Epoch,
    pub agreement: Agreement,
}

struct Bus {
    /// Declared only while this node leads, so submissions and cancellations go to the
    /// leader alone instead of to every node.
    submits: Option<HeldQueryable<TaskSpec>>,
    cancels: Option<HeldQueryable<TaskSpec>>,
    replicas: HeldQueryable<TaskRecord>,
    statuses: HeldQueryable<TaskSpec>,
    copies: HeldQueryable<TaskSpec>,
    assigns: TaskSubscriber<TaskAssign>,
    states: TaskSubscriber<TaskResult>,
    reports: TaskSubscriber<TaskResult>,
    workers: TypedSubscriber<WorkerInfo>,
    members: MemberWatch,
    _worker_info: bus::ServedQueryable,
}

enum Internal {
    Replicated {
        term: u64,
        id: TaskId,
        spec: Box<TaskSpec>,
        query: Box<HeldQuery<TaskSpec>>,
        acks: usize,
    },
    Gathered {
        term: u64,
        records: Vec<TaskRecord>,
        workers: Vec<(NodeId, WorkerInfo)>,
        answered: BTreeSet<NodeId>,
    },
    GatherAgain {
        term: u64,
    },
    /// Copies heard while catching up: `answered` are the caught-up nodes that replied.
    CatchUp {
        round: u32,
        records: Vec<TaskRecord>,
        answered: BTreeSet<NodeId>,
    },
}

pub async fn start(cx: Context) -> anyhow::Result<TaskService> {
    let k = &cx.keys;
    let d = || cx.drops.clone();
    let s = &cx.session;
    let info = worker_info(&cx.settings);
    let caught_up = Arc::new(AtomicBool::new(false));
    let bus = Bus {
        submits: None,
        cancels: None,
        replicas: bus::serve_held(s, k.all_tasks(TaskLeaf::Spec), d()).await?,
        statuses: bus::serve_held(s, k.all_tasks(TaskLeaf::Result), d()).await?,
        copies: bus::serve_held(s, k.node_leaf(&cx.me, Leaf::Tasks), d()).await?,
        assigns: bus::subscribe_tasks(s, k.all_tasks(TaskLeaf::Assign), d()).await?,
        states: bus::subscribe_tasks(s, k.all_tasks(TaskLeaf::State), d()).await?,
        reports: bus::subscribe_tasks(s, k.all_tasks(TaskLeaf::Result), d()).await?,
        workers: bus::subscribe(s, k.all(Leaf::Worker), d()).await?,
        members: bus::watch_members(s, k).await?,
        // A node still catching up offers nothing: its silence keeps its empty copy from
        // counting as a voter's copy.
        _worker_info: bus::serve(s, k.node_leaf(&cx.me, Leaf::Worker), {
            let (info, caught_up) = (info.clone(), caught_up.clone());
            move || caught_up.load(Ordering::Relaxed).then(|| info.clone())
        })
        .await?,
    };
    bus::publish(s, &k.node_leaf(&cx.me, Leaf::Worker), &info).await?;
    let (ctl, ctl_rx) = watch::channel(Ctl::default());
    let settings = Arc::new(cx.settings.clone());
    let (runner, finished) = Runner::new(cx.me.clone(), settings.clone());
    let (internal_tx, internal) = mpsc::channel(4096);
    let table = TaskTable::new(settings.results.limits(), settings.max_pending);
    let service = Service {
        cx,
        settings: settings.clone(),
        info,
        table,
        runner,
        leading: None,
        ctl: Ctl::default(),
        internal_tx,
        caught_up,
        catching_up: false,
        reputation: Reputation::new(
            reputation::MAX_WORKERS,
            reputation::MEMORY,
            settings.reputation_floor,
        ),
    };
    let task = tokio::spawn(service.run(bus, ctl_rx, finished, internal));
    Ok(TaskService { task, ctl })
}

/// How a worker looks to the scheduler now: its offer, with the load and power of its
/// latest energy sample.
fn worker_now(cx: &Context, id: &NodeId, info: &WorkerInfo) -> swarm_node::tasks::Worker {
    to_worker(info, cx.view.borrow().energy_of(id), cx.low_battery_pct)
}

/// The next query of a queryable that may not be declared; never, while it is not.
async fn held<T: swarm_bus::Decode>(q: &mut Option<HeldQueryable<T>>) -> Option<HeldQuery<T>> {
    match q {
        Some(q) => q.recv().await,
        None => std::future::pending().await,
    }
}

fn worker_info(settings: &TasksSettings) -> WorkerInfo {
    WorkerInfo {
        caps: swarm_node::worker::capabilities(settings)
            .into_iter()
            .collect(),
        idempotent: settings
            .handlers
            .iter()
            .filter(|(_, h)| h.idempotent)
            .map(|(name, _)| name.clone())
            .chain(settings.builtins.iter().cloned())
            .collect(),
        slots: u16::try_from(settings.slots).unwrap_or(u16::MAX),
    }
}

struct Service {
    cx: Context,
    settings: Arc<TasksSettings>,
    info: WorkerInfo,
    table: TaskTable,
    runner: Runner,
    leading: Option<Leading>,
    ctl: Ctl,
    internal_tx: mpsc::Sender<Internal>,
    /// This copy holds every task a majority of voters held when it started.
    caught_up: Arc<AtomicBool>,
    catching_up: bool,
    /// Each worker's agreement with the decisions on replicated tasks this node heard: what
    /// `status` shows, and what this node's scheduler starts from when it takes office.
    reputation: Reputation,
}

impl Service {
    async fn run(
        mut self,
        mut bus: Bus,
        mut ctl: watch::Receiver<Ctl>,
        mut finished: mpsc::Receiver<(TaskId, swarm_node::worker::Outcome)>,
        mut internal: mpsc::Receiver<Internal>,
    ) {
        let mut loads = tokio::time::interval(LOAD_EVERY);
        loads.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self
                .leading
                .as_ref()
                .and_then(Leading::next_wakeup)
                .map(|at| self.cx.epoch.instant(at))
                .unwrap_or_else(|| Instant::now() + IDLE);
            tokio::select! {
                changed = ctl.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let new = ctl.borrow_and_update().clone();
                    self.on_ctl(new).await;
                    self.serve_leaders_keys(&mut bus).await;
                }
                Some(q) = held(&mut bus.submits) => self.on_submit(q).await,
                Some(q) = held(&mut bus.cancels) => self.on_cancel(q).await,
                Some(q) = bus.replicas.recv() => self.on_replica(q).await,
                Some(q) = bus.statuses.recv() => self.on_status(q).await,
                Some(q) = bus.copies.recv() => self.on_copy(q).await,
                Some(r) = bus.assigns.recv() => self.on_assign(r.id, r.msg).await,
                Some(r) = bus.states.recv() => self.on_state(r.id, r.msg),
                Some(r) = bus.reports.recv() => self.on_report(r.id, r.msg).await,
                Some(r) = bus.workers.recv() => self.on_worker(r.from, r.msg).await,
                Some(m) = bus.members.recv() => {
                    if let MemberEvent::Left(id) = m {
                        self.on_gone(id).await;
                    }
                }
                Some((id, outcome)) = finished.recv() => {
                    let sharing = self.runner.running() as f32;
                    if let Some(mut result) = self.runner.finished(id.clone(), outcome) {
                        result.joules = self.joules_of(result.duration_ms, sharing);
                        self.publish_report(&id, &result).await;
                    }
                }
                Some(event) = internal.recv() => self.on_internal(event).await,
                _ = tokio::time::sleep_until(wake.into()) => {
                    self.schedule(Event::Tick).await;
                }
                // Only the leader refreshes loads: a follower's loop stays asleep, not woken
                // every second for nothing (docs/protocol.md#quiet).
                _ = loads.tick(), if self.leading.is_some() => self.refresh_loads().await,
            }
        }
    }

    /// The leader's own queryables follow the leadership.
    async fn serve_leaders_keys(&self, bus: &mut Bus) {
        if self.leading.is_none() {
            bus.submits = None;
            bus.cancels = None;
            return;
        }
        let (s, k, d) = (&self.cx.session, &self.cx.keys, &self.cx.drops);
        if bus.submits.is_none() {
            match bus::serve_held(s, k.all_tasks(TaskLeaf::Submit), d.clone()).await {
                Ok(q) => bus.submits = Some(q),
                Err(e) => tracing::error!("tasks: the leader cannot take submissions: {e}"),
            }
        }
        if bus.cancels.is_none() {
            match bus::serve_held(s, k.all_tasks(TaskLeaf::Cancel), d.clone()).await {
                Ok(q) => bus.cancels = Some(q),
                Err(e) => tracing::error!("tasks: the leader cannot take cancellations: {e}"),
            }
        }
    }

    async fn on_ctl(&mut self, new: Ctl) {
        let new_leader = new.leader != self.ctl.leader || new.term != self.ctl.term;
        if !new.leads {
            self.leading = None;
        } else if let Some(l) = self.leading.as_mut().filter(|l| l.term() == new.term) {
            l.set_voters(&new.voters);
        } else {
            let settings = swarm_node::tasks::Settings {
                strategy: self.settings.strategy,
                max_pending: self.settings.max_pending,
                reputation_floor: self.settings.reputation_floor,
                ..Default::default()
            };
            let leading = Leading::new(new.term, new.voters.clone(), settings)
                .with_reputation(self.reputation.clone());
            self.leading = Some(leading);
            tracing::info!(term = new.term, "tasks: taking over the task table");
            self.gather(new.term, self.cx.epoch.at_now());
        }
        self.ctl = new;
        if !self.is_caught_up() && !self.catching_up && !self.ctl.voters.is_empty() {
            self.catching_up = true;
            self.catch_up(1, self.cx.epoch.at_now());
        }
        if new_leader {
            // Whoever leads now learns what this node offers, whatever it heard before.
            let key = self.cx.keys.node_leaf(&self.cx.me, Leaf::Worker);
            if let Err(e) = bus::publish(&self.cx.session, &key, &self.info).await {
                tracing::warn!("{e}");
            }
        }
    }

    fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Relaxed)
    }

    /// Asks every caught-up node for its copy at `at`, in the background; `round` counts the
    /// tries.
    fn catch_up(&self, round: u32, at: At) {
        self.ask_copies(at, move |found| Internal::CatchUp {
            round,
            records: found.records,
            answered: found.answered,
        });
    }

    /// Asks for every caught-up copy of the table at `at`, off this loop, and hands what came
    /// back to it as the event `then` makes of it.
    fn ask_copies(&self, at: At, then: impl FnOnce(Copies) -> Internal + Send + 'static) {
        let (session, keys, tx) = (
            self.cx.session.clone(),
            self.cx.keys.clone(),
            self.internal_tx.clone(),
        );
        let at = self.cx.epoch.instant(at);
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let found = copies(&session, &keys).await;
            let _ = tx.send(then(found)).await;
        });
    }

    /// Takes the copies heard once `durability::catch_up` says they are enough (a majority of
    /// the voters, a starting swarm, or the last round); otherwise asks again when it says.
    fn caught_up_with(&mut self, round: u32, records: Vec<TaskRecord>, answered: BTreeSet<NodeId>) {
        if self.is_caught_up() {
            return;
        }
        let now = self.cx.epoch.at_now();
        let (me, voters, leader) = (&self.cx.me, &self.ctl.voters, self.ctl.leader.as_ref());
        let (heard, needed, short) =
            match durability::catch_up(now, me, voters, leader, round, &answered) {
                CatchUp::AskAgain { round, at } => return self.catch_up(round, at),
                CatchUp::Merge {
                    heard,
                    needed,
                    short,
                } => (heard, needed, short),
            };
        if short {
            tracing::warn!(
                heard,
                needed,
                "tasks: too few voters' copies of the table after {round} rounds; taking what \
                 they hold (tasks no voter kept are lost)"
            );
        }
        let merged = records.len();
        for e in durability::merge(&mut self.table, now, records) {
            tracing::warn!("tasks: catching up: {e}");
        }
        self.caught_up.store(true, Ordering::Relaxed);
        self.catching_up = false;
        tracing::info!(
            records = merged,
            from = heard,
            "tasks: caught up on the task table"
        );
    }

    /// Collects the copies of the table and the workers' offers at `at`, in the background.
    fn gather(&self, term: u64, at: At) {
        self.ask_copies(at, move |found| Internal::Gathered {
            term,
            records: found.records,
            workers: found.workers,
            answered: found.answered,
        });
    }

    async fn on_internal(&mut self, event: Internal) {
        match event {
            Internal::GatherAgain { term } => {
                if self
                    .leading
                    .as_ref()
                    .is_some_and(|l| l.term() == term && !l.is_ready())
                {
                    self.gather(term, self.cx.epoch.at_now());
                }
            }
            Internal::Gathered {
                term,
                records,
                workers,
                answered,
            } => self.took_over(term, records, workers, &answered).await,
            Internal::CatchUp {
                round,
                records,
                answered,
            } => self.caught_up_with(round, records, answered),
            Internal::Replicated {
                term,
                id,
                spec,
                query,
                acks,
            } => self.replicated(term, id, *spec, *query, acks).await,
        }
    }

    async fn took_over(
        &mut self,
        term: u64,
        records: Vec<TaskRecord>,
        workers: Vec<(NodeId, WorkerInfo)>,
        answered: &BTreeSet<NodeId>,
    ) {
        let me = self.cx.me.clone();
        let Some(l) = self
            .leading
            .as_ref()
            .filter(|l| l.term() == term && !l.is_ready())
        else {
            return;
        };
        // `answered` holds the voters that sent a copy or, when their copy is empty, a worker
        // offer; this node's own copy counts only once it has caught up.
        let now = self.cx.epoch.at_now();
        match durability::takeover(now, &me, l.voters(), self.is_caught_up(), answered) {
            Takeover::AskAgain { heard, needed, at } => {
                tracing::warn!(
                    heard,
                    needed,
                    "tasks: too few voters' copies of the table; asking again"
                );
                let tx = self.internal_tx.clone();
                let at = self.cx.epoch.instant(at);
                tokio::spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    let _ = tx.send(Internal::GatherAgain { term }).await;
                });
                return;
            }
            Takeover::Merge { .. } => {}
        }
        let merged = records.len();
        for e in durability::merge(&mut self.table, now, records) {
            tracing::warn!("tasks: merging a copy: {e}");
        }
        let live = {
            let v = self.cx.view.borrow();
            let mut live: BTreeSet<NodeId> = v.peers.keys().cloned().collect();
            live.insert(me.clone());
            live
        };
        let Some(l) = self.leading.as_mut() else {
            return;
        };
        let cx = &self.cx;
        // The offers heard may or may not include this node's own: it goes in last, as it is.
        let mut offers: Vec<_> = workers.into_iter().filter(|(n, _)| *n != me).collect();
        offers.push((me.clone(), self.info.clone()));
        let actions = l.take_over(now, &self.table.records(), offers, &live, |id, info| {
            worker_now(cx, id, info)
        });
        // What a majority of the voters held is in this copy now.
        self.caught_up.store(true, Ordering::Relaxed);
        tracing::info!(
            term,
            tasks = merged,
            pending = l.pending(),
            workers = l.workers().len(),
            "tasks: task table taken over"
        );
        self.apply(actions, None).await;
    }

    async fn on_submit(&mut self, q: HeldQuery<TaskSpec>) {
        // Only the leader serves this key; a query that raced a step-down goes unanswered and
        // the submitter asks again.
        let Some(l) = self.leading.as_mut() else {
            return;
        };
        let Some(id) = q.id.clone() else {
            return q
                .reply_err("submit to one task's key, swarm/<s>/task/<id>/submit")
                .await;
        };
        let key = self.cx.keys.task(&id, TaskLeaf::Submit);
        let me = self.cx.me.clone();
        let ack = |accepted: bool, reason: Option<String>| TaskAck {
            accepted,
            by: me.clone(),
            reason,
        };
        let now = self.cx.epoch.at_now();
        let record = match l.submit(now, &id, q.msg.as_ref(), self.settings.max_payload_bytes) {
            Submission::Refuse(why) => return q.reply(&key, &ack(false, Some(why))).await,
            Submission::AlreadyAccepted => return q.reply(&key, &ack(true, None)).await,
            Submission::Replicate(record) => *record,
        };
        // The leader's own copy first: it hands the task out as soon as a majority holds it,
        // and must then have the spec to hand out.
        if let Err(e) = self.table.store(self.cx.epoch.at_now(), record.clone()) {
            l.abandon(&id);
            return q.reply(&key, &ack(false, Some(e.to_string()))).await;
        }
        let (mut acks, term) = (Acks::new(&me, l.voters()), l.term());
        let (session, spec_key, tx) = (
            self.cx.session.clone(),
            self.cx.keys.task(&id, TaskLeaf::Spec),
            self.internal_tx.clone(),
        );
        tokio::spawn(async move {
            let enough = bus::ask_until::<TaskRecord, TaskAck>(
                &session,
                &spec_key,
                &record,
                REPLICATE_TIMEOUT,
                |ack| acks.ack(&ack.by, ack.accepted),
            )
            .await;
            if let Err(e) = &enough {
                tracing::warn!("tasks: replicating {}: {e}", record.id);
            }
            let _ = tx
                .send(Internal::Replicated {
                    term,
                    id,
                    spec: Box::new(record.spec),
                    query: Box::new(q),
                    acks: acks.count(),
                })
                .await;
        });
    }

    async fn replicated(
        &mut self,
        term: u64,
        id: TaskId,
        spec: TaskSpec,
        q: HeldQuery<TaskSpec>,
        acks: usize,
    ) {
        let key = self.cx.keys.task(&id, TaskLeaf::Submit);
        let now = self.cx.epoch.at_now();
        let decided = match self.leading.as_mut() {
            Some(l) => l.replicated(now, term, id, &spec, acks),
            None => Err("leadership changed while storing the task; try again".into()),
        };
        match decided {
            Ok(actions) => self.apply(actions, Some(q)).await,
            Err(reason) => {
                let ack = TaskAck {
                    accepted: false,
                    by: self.cx.me.clone(),
                    reason: Some(reason),
                };
                q.reply(&key, &ack).await
            }
        }
    }

    async fn on_cancel(&mut self, q: HeldQuery<TaskSpec>) {
        let Some(l) = self.leading.as_mut() else {
            return;
        };
        let Some(id) = q.id.clone() else {
            return q
                .reply_err("cancel one task's key, swarm/<s>/task/<id>/cancel")
                .await;
        };
        let key = self.cx.keys.task(&id, TaskLeaf::Cancel);
        let decided = l.cancel(self.cx.epoch.at_now(), id);
        let ack = TaskAck {
            accepted: decided.is_ok(),
            by: self.cx.me.clone(),
            reason: decided.as_ref().err().cloned(),
        };
        if let Ok(actions) = decided {
            self.apply(actions, None).await;
        }
        q.reply(&key, &ack).await;
    }

    /// A leader's replication: written to this copy, then acknowledged.
    async fn on_replica(&mut self, q: HeldQuery<TaskRecord>) {
        let (Some(id), Some(record)) = (q.id.clone(), q.msg.clone()) else {
            return q.reply_err("a task record on its own task's key").await;
        };
        if record.id != id {
            return q
                .reply_err("the record names another task than its key")
                .await;
        }
        // A replica is held like a submission: the same limits, whoever sends it.
        let stored = match spec_refusal(&record.spec, self.settings.max_payload_bytes) {
            Some(why) => Err(why),
            None => self
                .table
                .store(self.cx.epoch.at_now(), record)
                .map_err(|e| e.to_string()),
        };
        let ack = TaskAck {
            accepted: stored.is_ok(),
            by: self.cx.me.clone(),
            reason: stored.err(),
        };
        q.reply(&self.cx.keys.task(&id, TaskLeaf::Spec), &ack).await;
    }

    async fn on_status(&mut self, q: HeldQuery<TaskSpec>) {
        let now = self.cx.epoch.at_now();
        if let Some(id) = q.id.clone() {
            if let Some(status) = self.table.status(now, &id) {
                q.reply(&self.cx.keys.task(&id, TaskLeaf::Result), &status)
                    .await;
            }
            return;
        }
        for (id, status) in self.table.statuses(now) {
            let key = self.cx.keys.task(&id, TaskLeaf::Result);
            if q.asks_for(&key) {
                q.reply(&key, &status).await;
            }
        }
    }

    async fn on_copy(&mut self, q: HeldQuery<TaskSpec>) {
        if !self.is_caught_up() {
            // Silent: an empty answer would count as a voter's copy.
            return;
        }
        let key = self.cx.keys.node_leaf(&self.cx.me, Leaf::Tasks);
        for record in self.table.records() {
            q.reply(&key, &record).await;
        }
    }

    async fn on_assign(&mut self, id: TaskId, a: TaskAssign) {
        if a.worker == self.cx.me
            && let Err(why) = from_the_leader(&self.ctl, &a)
        {
            let n = self.cx.drops.count_refused(why);
            if swarm_bus::zenoh::worth_logging(n) {
                tracing::warn!(task = %id, term = a.term, reason = %why, count = n, "tasks: refused an assignment");
            }
            return;
        }
        self.table.assigned(&id, &a.worker, a.attempt);
        match self.runner.assign(id.clone(), a) {
            Answer::Again(result) => self.publish_report(&id, &result).await,
            Answer::Started => tracing::debug!(task = %id, "tasks: running"),
            Answer::Busy => {
                let n = self.cx.drops.count_refused(Refused::Busy);
                if swarm_bus::zenoh::worth_logging(n) {
                    tracing::warn!(task = %id, count = n, "tasks: refused an assignment: every slot is taken");
                }
            }
            Answer::Adopted | Answer::Ignored => {}
        }
    }

    fn on_state(&mut self, id: TaskId, r: TaskResult) {
        match r.state {
            TaskState::Queued => {
                self.table.revoked(&id, r.worker.as_ref());
                if r.worker.as_ref() == Some(&self.cx.me) {
                    self.runner.revoke(&id);
                }
            }
            s if s.is_final() => {
                let votes = self.table.votes_in(&id, &r);
                self.learn_agreement(&votes);
                let evicted = self.table.finished(self.cx.epoch.at_now(), &id, r);
                self.runner.revoke(&id);
                if let Some(l) = self.leading.as_mut() {
                    for gone in &evicted {
                        l.forget(gone);
                    }
                }
            }
            _ => {}
        }
    }

    /// What a run of `duration_ms` cost: this node's power over it, shared among the `sharing`
    /// tasks that ran at once; none before the node has measured its power.
    fn joules_of(&self, duration_ms: u32, sharing: f32) -> Option<f32> {
        let watts = self.cx.view.borrow().energy.as_ref()?.watts;
        let j = watts * duration_ms as f32 / 1000.0 / sharing.max(1.0);
        (j.is_finite() && j >= 0.0).then_some(j)
    }

    /// The votes of a decided replicated task, from the leader's final word: every node keeps
    /// the same standing of each worker, so a new leader starts from it.
    /// `votes` are those this copy vouches for (`TaskTable::votes_in`).
    fn learn_agreement(&mut self, votes: &[(NodeId, bool)]) {
        let now = self.cx.epoch.at_now();
        for (worker, agrees) in votes {
            self.reputation.record(now, worker, *agrees);
        }
        if !votes.is_empty() {
            self.reputation.forget_old(now);
            let table = self
                .reputation
                .workers()
                .map(|w| (w.clone(), self.reputation.standing(now, w)))
                .collect();
            *self.cx.agreement.lock().unwrap_or_else(|p| p.into_inner()) = table;
        }
    }

    async fn on_report(&mut self, id: TaskId, r: TaskResult) {
        self.table.reported(&id, r.clone());
        let Some(worker) = r.worker.clone() else {
            return;
        };
        if !r.state.is_final() {
            return;
        }
        self.schedule(Event::Finished {
            task: id,
            worker,
            attempt: r.attempts,
            ok: r.state == TaskState::Succeeded,
            reason: r.reason,
            output: r.output.0,
            score: r.score,
            joules: r.joules,
        })
        .await;
    }

    async fn on_worker(&mut self, node: NodeId, info: WorkerInfo) {
        let worker = worker_now(&self.cx, &node, &info);
        if let Some(l) = self.leading.as_mut() {
            let actions = l.worker_up(self.cx.epoch.at_now(), node, info, worker);
            self.apply(actions, None).await;
        }
    }

    async fn on_gone(&mut self, node: NodeId) {
        if let Some(l) = self.leading.as_mut() {
            let actions = l.worker_gone(self.cx.epoch.at_now(), node);
            self.apply(actions, None).await;
        }
    }

    async fn refresh_loads(&mut self) {
        let Some(l) = self.leading.as_ref().filter(|l| l.is_ready()) else {
            return;
        };
        let now: Vec<_> = l
            .workers()
            .iter()
            .map(|(id, info)| (id.clone(), worker_now(&self.cx, id, info)))
            .collect();
        for (id, worker) in now {
            self.schedule(Event::WorkerUp { id, worker }).await;
        }
    }

    /// Feeds the scheduler, once the table is taken over; events before that are covered by
    /// the takeover itself.
    async fn schedule(&mut self, event: Event) {
        let Some(l) = self.leading.as_mut() else {
            return;
        };
        let actions = l.handle(self.cx.epoch.at_now(), event);
        self.apply(actions, None).await;
    }

    /// Carries out what the scheduler decided: answers, assignments, and the final word.
    async fn apply(&mut self, actions: Vec<Action>, held: Option<HeldQuery<TaskSpec>>) {
        let me = self.cx.me.clone();
        let term = self.leading.as_ref().map_or(0, Leading::term);
        // A vote's end comes right before its task's `Done`, which carries it.
        let mut votes: std::collections::BTreeMap<TaskId, Box<Voted>> = Default::default();
        for action in actions {
            match action {
                Action::Accept { id } | Action::Reject { id, .. }
                    if held.as_ref().and_then(|q| q.id.as_ref()) != Some(&id) => {}
                Action::Accept { id } => {
                    if let Some(q) = held.as_ref() {
                        let ack = TaskAck {
                            accepted: true,
                            by: me.clone(),
                            reason: None,
                        };
                        q.reply(&self.cx.keys.task(&id, TaskLeaf::Submit), &ack)
                            .await;
                    }
                }
                Action::Reject { id, reason } => {
                    if let Some(q) = held.as_ref() {
                        let ack = TaskAck {
                            accepted: false,
                            by: me.clone(),
                            reason: Some(reason.to_string()),
                        };
                        q.reply(&self.cx.keys.task(&id, TaskLeaf::Submit), &ack)
                            .await;
                    }
                }
                Action::Assign {
                    task,
                    worker,
                    attempt,
                } => {
                    let Some(spec) = self.table.record(&task).map(|r| r.spec.clone()) else {
                        tracing::warn!(%task, "tasks: assigned a task this copy lacks");
                        continue;
                    };
                    let assign = TaskAssign {
                        term,
                        worker,
                        attempt,
                        cap: spec.cap,
                        timeout_ms: spec.timeout_ms,
                        payload: spec.payload,
                    };
                    let key = self.cx.keys.task(&task, TaskLeaf::Assign);
                    if let Err(e) = bus::publish(&self.cx.session, &key, &assign).await {
                        tracing::warn!("{e}");
                    }
                }
                Action::Revoke { task, worker } => {
                    let attempts = self.table.record(&task).map_or(0, |r| r.attempt);
                    let word = TaskResult {
                        state: TaskState::Queued,
                        worker: Some(worker),
                        attempts,
                        exit_code: None,
                        output: Payload::default(),
                        duration_ms: 0,
                        joules: None,
                        reason: None,
                        score: None,
                        answers: None,
                        value: None,
                    };
                    self.publish_state(&task, &word).await;
                }
                Action::Voted { task, voted } => {
                    votes.insert(task, voted);
                }
                Action::Done {
                    task,
                    state,
                    reason,
                } => {
                    let result = match votes.remove(&task) {
                        Some(voted) => final_word::voted(&self.table, &task, state, reason, &voted),
                        None => final_word::single(&self.table, &task, state, reason),
                    };
                    self.publish_state(&task, &result).await;
                }
            }
        }
    }

    async fn publish_state(&self, id: &TaskId, word: &TaskResult) {
        let key = self.cx.keys.task(id, TaskLeaf::State);
        if let Err(e) = bus::publish(&self.cx.session, &key, word).await {
            tracing::warn!("{e}");
        }
    }

    async fn publish_report(&self, id: &TaskId, result: &TaskResult) {
        let key = self.cx.keys.task(id, TaskLeaf::Result);
        if let Err(e) = bus::publish(&self.cx.session, &key, result).await {
            tracing::warn!("{e}");
        }
    }
}

/// What the caught-up nodes hold: the records of their copies, their worker offers, and who
/// answered (for its copy, or through its offer when its copy is empty).
struct Copies {
    records: Vec<TaskRecord>,
    workers: Vec<(NodeId, WorkerInfo)>,
    answered: BTreeSet<NodeId>,
}

async fn copies(session: &zenoh::Session, keys: &SwarmKeys) -> Copies {
    let (tables, offered) = (keys.all(Leaf::Tasks), keys.all(Leaf::Worker));
    let (copies, offers) = tokio::join!(
        bus::query_cbor::<TaskRecord>(session, &tables, GATHER_TIMEOUT),
        bus::query_cbor::<WorkerInfo>(session, &offered, GATHER_TIMEOUT),
    );
    let mut found = Copies {
        records: Vec::new(),
        workers: Vec::new(),
        answered: BTreeSet::new(),
    };
    match copies {
        Ok(replies) => {
            for r in replies {
                if let (Some(node), Ok(record)) = (SwarmKey::node_of(&r.key), r.msg) {
                    found.answered.insert(node);
                    found.records.push(record);
                }
            }
        }
        Err(e) => tracing::warn!("tasks: asking for copies of the table: {e}"),
    }
    match offers {
        Ok(replies) => {
            for r in replies {
                if let (Some(node), Ok(info)) = (SwarmKey::node_of(&r.key), r.msg) {
                    found.workers.push((node, info));
                }
            }
        }
        Err(e) => tracing::warn!("tasks: asking for workers: {e}"),
    }
    found
        .answered
        .extend(found.workers.iter().map(|(n, _)| n.clone()));
    found
}

/// A worker takes orders only in the term of the leader it follows (itself when it leads):
/// not a deposed leader's, nor a stranger's claiming a term nobody elected.
fn from_the_leader(ctl: &Ctl, a: &TaskAssign) -> Result<(), Refused> {
    if ctl.leader.is_some() && a.term == ctl.term {
        Ok(())
    } else {
        Err(Refused::NotLeader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assign(term: u64) -> TaskAssign {
        TaskAssign {
            term,
            worker: NodeId::new("w").unwrap(),
            attempt: 1,
            cap: "echo".into(),
            timeout_ms: 1000,
            payload: swarm_bus::Payload::from(&b"x"[..]),
        }
    }

    #[test]
    fn a_worker_takes_orders_only_in_its_leaders_term() {
        let following = Ctl {
            leads: false,
            term: 7,
            leader: Some(NodeId::new("l").unwrap()),
            voters: Vec::new(),
        };
        assert_eq!(from_the_leader(&following, &assign(7)), Ok(()));
        for term in [6, 8, u64::MAX] {
            assert_eq!(
                from_the_leader(&following, &assign(term)),
                Err(Refused::NotLeader),
                "{term}"
            );
        }
        let leaderless = Ctl {
            leader: None,
            ..following
        };
        assert_eq!(
            from_the_leader(&leaderless, &assign(7)),
            Err(Refused::NotLeader)
        );
    }
}
