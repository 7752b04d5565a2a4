//! `[tasks]` in the config: the handlers this node offers and their bounds.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A handler run as a process: the task's payload on its stdin, its stdout the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandHandler {
    /// Program and arguments; never taken from a message.
    pub command: Vec<String>,
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u32,
    #[serde(default = "default_max_output")]
    pub max_output_bytes: usize,
    /// Variables passed through from the node's environment; nothing else is.
    #[serde(default)]
    pub env: Vec<String>,
    /// Safe to run more than once: a retry after an unclear end is allowed.
    #[serde(default)]
    pub idempotent: bool,
}

// A capability's name as configs hold it and task specs carry it: a message never names
// more, certainly not a command. The rule is the task core's.
pub use swarm_core::tasks::is_capability_name;

fn default_timeout_s() -> u32 {
    60
}

fn default_max_output() -> usize {
    64 * 1024
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TasksSettings {
    /// Built-in handlers this node offers: `echo`, `sleep`, `sysinfo`.
    pub builtins: Vec<String>,
    /// Tasks this node runs at once.
    pub slots: u32,
    /// How this node, when it leads, picks a worker: `round-robin`, `least-loaded`,
    /// `capability` or `energy-aware`.
    pub strategy: crate::tasks::Strategy,
    /// The largest payload a submission may carry.
    pub max_payload_bytes: usize,
    /// The most unfinished tasks the table holds; more are refused.
    pub max_pending: usize,
    /// A worker whose answers agreed with fewer than this share of recent decisions on
    /// replicated tasks is no longer chosen for them (docs/tasks.md#reputation).
    pub reputation_floor: f64,
    /// The bounded store of finished tasks' results.
    pub results: ResultSettings,
    pub handlers: BTreeMap<String, CommandHandler>,
}

impl Default for TasksSettings {
    fn default() -> Self {
        Self {
            builtins: vec!["echo".into()],
            slots: 4,
            strategy: crate::tasks::Strategy::default(),
            max_payload_bytes: 64 * 1024,
            max_pending: 100_000,
            reputation_floor: crate::tasks::reputation::FLOOR,
            results: ResultSettings::default(),
            handlers: BTreeMap::new(),
        }
    }
}

/// `[tasks.results]`: what the result store keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResultSettings {
    pub max_entries: usize,
    pub max_bytes: usize,
    pub ttl_s: u64,
    /// What goes first when full: `lru`, `lfu`, `fifo` or `ttl`.
    pub eviction: crate::tasks::Eviction,
}

impl Default for ResultSettings {
    fn default() -> Self {
        let d = crate::tasks::ResultBounds::default();
        Self {
            max_entries: d.max_entries,
            max_bytes: d.max_bytes,
            ttl_s: d.ttl.as_secs(),
            eviction: d.policy,
        }
    }
}

impl ResultSettings {
    pub fn limits(&self) -> crate::tasks::ResultBounds {
        crate::tasks::ResultBounds {
            max_entries: self.max_entries,
            max_bytes: self.max_bytes,
            ttl: std::time::Duration::from_secs(self.ttl_s),
            policy: self.eviction,
        }
    }
}
