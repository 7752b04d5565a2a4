//! How many threads `swarm-node run` wakes. zenoh starts five runtimes of its own (app, acc,
//! tx, rx with two workers, net) beside the node's, and an idle node's CPU time is mostly the
//! kernel switching between them for each message. A node without the bridge moves little
//! data, so it hands all of zenoh's work to one worker and runs its own loop on one more. A
//! gateway keeps the full set: the bridge's flood needs the parallel receive path.

use anyhow::Context;
use std::future::Future;

const ZENOH_RUNTIME: &str = "ZENOH_RUNTIME";

/// Every zenoh runtime handed over to `app`, which gets one worker (zenoh's own syntax).
const ONE_WORKER: &str = "(app: (worker_threads: 1), acc: (handover: app), tx: (handover: app), \
                          rx: (handover: app), net: (handover: app))";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// zenoh's runtimes as it ships them and two workers of the node's: a gateway.
    Full,
    /// One worker for zenoh and one for the node: a node without the bridge.
    Lean,
}

impl Shape {
    pub fn for_node(bridge_enabled: bool) -> Self {
        if bridge_enabled {
            Shape::Full
        } else {
            Shape::Lean
        }
    }

    fn workers(self) -> usize {
        match self {
            Shape::Full => 2,
            Shape::Lean => 1,
        }
    }
}

/// Runs `f` to completion on a runtime of `shape`. Call it before anything touches zenoh:
/// zenoh reads its runtimes' shape once, from the environment, on first use. A `ZENOH_RUNTIME`
/// the user set (zenoh documents it) wins.
pub fn block_on<F, T>(shape: Shape, f: F) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<T>>,
{
    if shape == Shape::Lean && std::env::var_os(ZENOH_RUNTIME).is_none() {
        // SAFETY: called from `main` before any runtime starts, so no other thread can be
        // reading the environment.
        unsafe { std::env::set_var(ZENOH_RUNTIME, ONE_WORKER) };
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(shape.workers())
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_node_without_the_bridge_is_lean() {
        assert_eq!(Shape::for_node(false), Shape::Lean);
        assert_eq!(Shape::for_node(true), Shape::Full);
        assert!(Shape::Lean.workers() < Shape::Full.workers());
    }
}
