//! Leader election as a sans-IO state machine: events with a timestamp in, actions out.
//! No clock, no network, no tokio inside, so tests and a simulator drive it with simulated
//! time. `NodeCore` (`crate::node`) puts it behind admission and membership; `swarm-node run`
//! wires that to zenoh.

mod agreement;
mod checker;
mod core;
mod observer;
mod voters;

pub use agreement::agreed_leader;
pub use checker::{SafetyChecker, SplitBrain};
pub use core::{Action, Election, Event, Persisted, QuorumMode, Settings};
pub use observer::{ElectionObserver, Seen};
pub use voters::Voters;
