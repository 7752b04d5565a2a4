//! `swarm-node sim`: many nodes' election and cadence cores in one process, on simulated time,
//! over a simulated network with latency and loss. The cores are the ones `swarm-node run`
//! uses; the network routes each stream the way the protocol's subscriptions do
//! (docs/protocol.md#scale), so the counts say what a real swarm of that size would carry.

mod engine;
mod queue;
mod stats;

mod plot;

pub use engine::{Outcome, Partition, SimConfig, run};
pub use plot::plot_sweep;
pub use stats::{PartitionReport, Report, Second, csv};
