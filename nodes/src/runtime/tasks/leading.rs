//! What only the leader holds: the scheduler, the workers it knows and the submissions being
//! replicated. Rebuilt from a majority of the table's copies each time a node takes office.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;
use swarm_bus::{Energy, NodeId, TaskId, TaskRecord, TaskSpec, WorkerInfo};
use swarm_node::tasks::{Restored, Scheduler, Settings, Spec, Worker};

pub struct Leading {
    pub term: u64,
    pub voters: Vec<NodeId>,
    pub scheduler: Scheduler,
    /// The table was gathered from a majority: until then nothing is accepted or handed out.
    pub ready: bool,
    pub workers: BTreeMap<NodeId, WorkerInfo>,
    /// Submissions being replicated: a second one of the same id waits for the first.
    pub inflight: HashSet<TaskId>,
}

impl Leading {
    pub fn new(term: u64, voters: Vec<NodeId>, settings: Settings) -> Self {
        Self {
            term,
            voters,
            scheduler: Scheduler::new(settings),
            ready: false,
            workers: BTreeMap::new(),
            inflight: HashSet::new(),
        }
    }
}

/// A spec as the scheduler takes it.
pub fn spec(s: &TaskSpec) -> Spec {
    Spec {
        capability: s.cap.clone(),
        priority: s.priority,
        after: s.after.clone(),
        timeout: Duration::from_millis(u64::from(s.timeout_ms)),
        retries: u32::from(s.retries),
    }
}

pub fn restored(r: &TaskRecord) -> Restored {
    Restored {
        id: r.id.clone(),
        spec: spec(&r.spec),
        state: r.state,
        attempts: r.attempt,
        worker: r.worker.clone(),
    }
}

/// A worker as the scheduler sees it: what it offers, and its load and power from its latest
/// energy sample.
pub fn worker(info: &WorkerInfo, energy: Option<&Energy>, low_battery_pct: u8) -> Worker {
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
