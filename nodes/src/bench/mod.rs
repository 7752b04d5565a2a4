//! `swarm-node bench`: measurements of real node processes on loopback that print figures.

mod failover;
mod firmware;
mod footprint;
mod history;
mod idle;
mod procs;
mod tasks;
mod telemetry;
mod wire;

use crate::cli::{BenchArgs, BenchCommand};

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        None => idle::run(args.idle).await,
        Some(BenchCommand::Idle(idle)) => idle::run(idle).await,
        Some(BenchCommand::Failover(f)) => failover::run(f).await,
        Some(BenchCommand::Telemetry(t)) => telemetry::run(&t),
        Some(BenchCommand::Tasks(t)) => tasks::run(t).await,
        Some(BenchCommand::Firmware(f)) => firmware::run(f).await,
        Some(BenchCommand::History(h)) => history::run(h).await,
        Some(BenchCommand::Footprint(f)) => footprint::run(f).await,
    }
}
