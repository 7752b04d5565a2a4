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
    pub handlers: BTreeMap<String, CommandHandler>,
}

impl Default for TasksSettings {
    fn default() -> Self {
        Self {
            builtins: vec!["echo".into()],
            slots: 4,
            handlers: BTreeMap::new(),
        }
    }
}
