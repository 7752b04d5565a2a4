//! What a swarm-mesh node decides, with no I/O: time and messages come in, actions go out.
//! `swarm-node run` wires these cores to zenoh; `swarm-node sim` and the election simulator
//! wire them to simulated networks (docs/architecture.md).
//!
//! `no_std` + `alloc` without the default `std` feature, so the firmware can share them.
#![cfg_attr(not(any(test, feature = "std")), no_std)]

extern crate alloc;

pub mod admission;
pub mod cadence;
pub mod clock;
pub mod election;
pub mod node;
pub mod proposals;
pub mod scale;
pub mod tasks;
