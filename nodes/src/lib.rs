//! The parts of swarm-node that other code (tests, the simulator) drives directly. The sans-IO
//! cores are in `swarm-core`, re-exported here under their old paths.

pub use swarm_core::{admission, cadence, election, node, proposals, scale, tasks};
pub use swarm_sim as sim;

pub mod atomic_file;
pub mod worker;
