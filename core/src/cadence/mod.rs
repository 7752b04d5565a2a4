//! Adaptive gossip cadence, sans-IO: how often a node sends heartbeats, energy telemetry and
//! anti-entropy queries, from what it observes (loss, arrival jitter, swarm size, its own sending, its battery) and what the
//! operator pinned. Time comes in as `clock::At`; nothing here sleeps or sends.

mod activity;
pub mod battery;
mod controller;
mod jitter;
mod loss;
mod staleness;
mod windows;

pub use activity::ActivityMeter;
pub use controller::{CadenceController, Decision, Settings};
pub use jitter::JitterTracker;
pub use loss::LossTracker;
pub use staleness::is_suspect;
