//! The parts of swarm-node that other code (tests, the simulator) drives directly.

pub mod admission;
pub mod atomic_file;
pub mod cadence;
pub mod election;
pub mod node;
pub mod proposals;
pub mod scale;
pub mod sim;
pub mod tasks;
pub mod worker;
