//! Where a swarm stops being small: up to this many members every node hears every
//! heartbeat; beyond it followers hear only the leader and per-node streams slow with the
//! swarm's size (docs/protocol.md#scale).

/// The default of `adaptive_gossip.small_swarm`.
pub const SMALL_SWARM: u32 = 20;

/// How often the leader of a large swarm announces itself on `swarm/<s>/leader` to every
/// member, not only to its followers: a node that missed the election learns the winner.
pub const ANNOUNCE_EVERY: core::time::Duration = core::time::Duration::from_secs(5);
