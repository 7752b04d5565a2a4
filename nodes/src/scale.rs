//! Where a swarm stops being small: up to this many members every node hears every
//! heartbeat; beyond it followers hear only the leader and per-node streams slow with the
//! swarm's size (docs/protocol.md#scale).

pub const SMALL_SWARM: usize = 20;
