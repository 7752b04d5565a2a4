//! `bench-partition`: five `swarm-node` processes, each in its own network namespace, and
//! faults between some of them and the rest (nftables; sockets stay open until zenoh's lease).
//! For each kind of fault and each of N cuts it prints how long the majority heard no leader
//! and how long after the heal one leader was followed by all; then the median and max.
//! Needs root and nftables. Run through `scripts/bench-partition.sh`, which builds first.

use anyhow::Context;
use clap::Parser;
use std::time::Duration;
use swarm_tests::netlab::{Direction, NetLab};
use swarm_tests::partition::{Fault, Swarm, trial};

#[derive(Parser)]
struct Args {
    /// Cuts of each kind.
    #[arg(long, default_value_t = 3)]
    cuts: usize,
    /// How long each fault lasts, in seconds (zenoh's lease is 10 s).
    #[arg(long, default_value_t = 30)]
    observe_s: u64,
    /// Only the kinds whose name contains this.
    #[arg(long)]
    only: Option<String>,
}

/// (name, fault, how many nodes, whether the leader is among them).
const KINDS: [(&str, Fault, usize, bool); 7] = [
    ("leader+1 cut", Fault::Cut(Direction::Both), 2, true),
    ("2 followers cut", Fault::Cut(Direction::Both), 2, false),
    ("leader alone cut", Fault::Cut(Direction::Both), 1, true),
    ("leader+1 mute", Fault::Cut(Direction::Outbound), 2, true),
    ("leader+1 deaf", Fault::Cut(Direction::Inbound), 2, true),
    ("leader+1 80% loss", Fault::Loss(80), 2, true),
    ("2 followers 80% loss", Fault::Loss(80), 2, false),
];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let lab = NetLab::create("swarm-bench-cut", 5).map_err(anyhow::Error::msg)?;
    let swarm = Swarm::start(lab, "bench-cut");
    let observe = Duration::from_secs(args.observe_s);
    println!(
        "5 nodes, one namespace each; {} cuts of each kind, {} s each; role sampled every 250 ms",
        args.cuts, args.observe_s
    );
    println!(
        "{:<22} {:>14} {:>14} {:>14} {:>14}",
        "fault", "leaderless", "(max)", "heal→1 leader", "(max)"
    );
    for (name, fault, count, with_leader) in KINDS {
        if args
            .only
            .as_ref()
            .is_some_and(|o| !name.contains(o.as_str()))
        {
            continue;
        }
        let mut leaderless = Vec::new();
        let mut healed = Vec::new();
        for _ in 0..args.cuts {
            let (l, _) = swarm
                .wait_settled(Duration::from_secs(30))
                .map_err(anyhow::Error::msg)?;
            let first = if with_leader { l } else { (l + 1) % 5 };
            let side: Vec<usize> = (0..count).map(|k| (first + k) % 5).collect();
            let t = trial(&swarm, &side, fault, observe, Duration::from_secs(30))
                .map_err(anyhow::Error::msg)
                .with_context(|| name.to_string())?;
            let heal = t.healed_in.unwrap_or(Duration::MAX);
            eprintln!("  {name}: {}  heal {:?}", t.line(), t.healed_in);
            if !swarm.split_terms().is_empty() {
                anyhow::bail!("two leaders in a term: {:?}", swarm.split_terms());
            }
            leaderless.push(t.leaderless());
            healed.push(heal);
        }
        let (l_med, l_max) = median_max(&mut leaderless);
        let (h_med, h_max) = median_max(&mut healed);
        println!(
            "{name:<22} {:>12} ms {:>11} ms {:>11} ms {:>11} ms",
            l_med.as_millis(),
            l_max.as_millis(),
            h_med.as_millis(),
            h_max.as_millis()
        );
    }
    Ok(())
}

fn median_max(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    let median = v.get(v.len() / 2).copied().unwrap_or_default();
    (median, v.last().copied().unwrap_or_default())
}
