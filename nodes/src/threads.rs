//! How many threads `swarm-node run` wakes. zenoh starts five runtimes of its own (app, acc,
//! tx, rx with two workers, net), and an idle node's CPU time is mostly the kernel switching
//! between them for each message. A node without the bridge moves little data, so it runs
//! zenoh's receiving, application, accepting and network work on one worker and keeps the
//! transmit runtime apart. Not everything on one worker: then a busy receive path starves the
//! transmit queue, zenoh closes the transport ("Unable to push non droppable network message")
//! and a failover takes 5-10 s (28 times in 100 `bench failover` trials). A gateway keeps
//! zenoh's set: the bridge's flood needs the parallel receive path.

use anyhow::Context;
use std::future::Future;

const ZENOH_RUNTIME: &str = "ZENOH_RUNTIME";

/// zenoh's own syntax: `rx` gets one worker and the app, acceptor and network runtimes' tasks.
const LEAN: &str = "(rx: (worker_threads: 1), app: (handover: rx), acc: (handover: rx), \
                    net: (handover: rx))";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// zenoh's runtimes as it ships them: a gateway.
    Full,
    /// Two workers for zenoh, receiving and transmitting: a node without the bridge.
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
}

/// Runs `f` to completion on a runtime of `shape`. Call it before anything touches zenoh:
/// zenoh reads its runtimes' shape once, from the environment, on first use. A `ZENOH_RUNTIME`
/// the user set (zenoh documents it) wins.
pub fn block_on<F, T>(shape: Shape, f: F) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<T>>,
{
    if shape == Shape::Full {
        // A gateway's flood leaves its memory pinned across glibc's per-thread arenas.
        swarm_bridge::heap::allocator::one_arena();
    }
    if shape == Shape::Lean && std::env::var_os(ZENOH_RUNTIME).is_none() {
        // SAFETY: called from `main` before any runtime starts, so no other thread can be
        // reading the environment.
        unsafe { std::env::set_var(ZENOH_RUNTIME, LEAN) };
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
    }
}
