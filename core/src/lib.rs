//! What a swarm-mesh node decides, with no I/O: time and messages come in, actions go out.
//! `swarm-node run` wires these cores to zenoh; `swarm-node sim` and the election simulator
//! wire them to simulated networks (docs/architecture.md).

pub mod admission;
pub mod cadence;
pub mod clock;
pub mod election;
pub mod node;
pub mod proposals;
pub mod scale;
pub mod tasks;
