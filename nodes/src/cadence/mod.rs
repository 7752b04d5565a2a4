//! Adaptive gossip cadence, sans-IO: how often a node sends heartbeats, energy telemetry and
//! anti-entropy queries, from what it observes (loss, swarm size, its battery) and what the
//! operator pinned. Time comes in as milliseconds; nothing here sleeps or sends.

mod controller;
mod loss;
mod staleness;

pub use controller::{CadenceController, Decision, Limits};
pub use loss::LossTracker;
pub use staleness::is_suspect;
