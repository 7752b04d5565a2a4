//! `swarm-node sim` and `sim sweep`: configure runs from the flags and the config file, print
//! their figures.

use crate::cli::{SimArgs, SimNetArgs, SweepArgs};
use crate::config::Config;
use anyhow::Context;
use comfy_table::{Table, presets::NOTHING};
use std::time::Duration;
use swarm_node::sim::{self, Report, SimConfig};

fn sim_config(
    config: &Config,
    nodes: u32,
    duration: Duration,
    net: &SimNetArgs,
) -> anyhow::Result<SimConfig> {
    for pair in net.partition.windows(2) {
        anyhow::ensure!(
            pair[1].at >= pair[0].at + pair[0].length,
            "--partition: each starts after the one before has healed ({:?} overlaps {:?})",
            pair[1].at,
            pair[0].at,
        );
    }
    let (settings, cadence) = (config.election_settings(), config.cadence_settings());
    let mut c = SimConfig::new(nodes as usize, duration, net.seed);
    c.settings = swarm_node::election::Settings {
        bootstrap_expect: c.settings.bootstrap_expect,
        ..settings
    };
    c.cadence = cadence;
    c.loss = net.loss;
    c.latency = net.latency;
    c.crash_leader_every = net.crash_leader_every;
    c.partitions = net.partition.clone();
    Ok(c)
}

pub fn run(config: &Config, args: &SimArgs) -> anyhow::Result<()> {
    let mut c = sim_config(config, args.nodes, args.duration, &args.net)?;
    c.adaptive = !args.fixed && config.adaptive_gossip.enabled;
    c.series = args.csv.is_some() || !args.json;
    let out = sim::run(c);
    if let Some(path) = &args.csv {
        std::fs::write(path, sim::csv(&out.series))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out.report)?);
    } else {
        print!("{}", render(&out.report));
    }
    Ok(())
}

pub fn sweep(config: &Config, args: &SweepArgs) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for &n in &args.nodes {
        let base = sim_config(config, n, args.duration, &args.net)?;
        let pair: Vec<Report> = [true, false]
            .into_iter()
            .map(|adaptive| {
                let mut c = base.clone();
                c.adaptive = adaptive;
                c.series = true;
                let report = sim::run(c).report;
                if !args.json {
                    eprintln!(
                        "{n} nodes, {}: {} ms of wall time",
                        if adaptive { "adaptive" } else { "fixed" },
                        report.wall_ms
                    );
                }
                report
            })
            .collect();
        let mut pair = pair.into_iter();
        if let (Some(a), Some(f)) = (pair.next(), pair.next()) {
            runs.push((a, f));
        }
    }
    sim::plot_sweep(&runs, &args.out)?;
    if args.json {
        let all: Vec<&Report> = runs.iter().flat_map(|(a, f)| [a, f]).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        print!("{}", sweep_table(&runs));
        println!("plot: {}", args.out.display());
    }
    Ok(())
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0} ms"))
}

fn render(r: &Report) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    let rows: Vec<(&str, String)> = vec![
        ("nodes", r.nodes.to_string()),
        (
            "simulated",
            format!(
                "{} s, loss {}%, latency {} ms, seed {}, {} cadence",
                r.duration_s,
                r.loss_pct,
                r.latency_ms,
                r.seed,
                if r.adaptive { "adaptive" } else { "fixed" }
            ),
        ),
        ("first leader", ms(r.first_leader_ms)),
        (
            "failovers",
            format!(
                "{} (max {}, unfinished {})",
                r.failovers,
                ms(r.failover_ms_max),
                r.failovers_unfinished
            ),
        ),
        ("partitions", partitions(r)),
        ("elections", r.elections.to_string()),
        ("split brain", r.split_brain.to_string()),
        (
            "follower msgs/s",
            format!(
                "rx {:.2} (max {:.2}), tx {:.2}",
                r.follower_rx_per_s_mean, r.follower_rx_per_s_max, r.follower_tx_per_s_mean
            ),
        ),
        (
            "leader msgs/s",
            format!(
                "rx {:.2} (busiest second {:.0}), tx {:.2}",
                r.leader_rx_per_s_mean, r.leader_rx_per_s_max, r.leader_tx_per_s_mean
            ),
        ),
        ("msgs/node/hour", format!("{:.0}", r.msgs_per_node_hour)),
        (
            "heartbeat",
            format!(
                "follower {} ms, leader {} ms",
                r.follower_heartbeat_ms
                    .map_or("-".into(), |v| v.to_string()),
                r.leader_heartbeat_ms.map_or("-".into(), |v| v.to_string())
            ),
        ),
        ("wall time", format!("{} ms", r.wall_ms)),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v]);
    }
    format!("{t}\n")
}

fn partitions(r: &Report) -> String {
    if r.partitions.is_empty() {
        return "-".into();
    }
    r.partitions
        .iter()
        .map(|p| {
            format!(
                "{} cut off at {} s for {} s: the rest elected after {}; one leader {} after the heal",
                p.cut_off,
                p.at_s,
                p.length_s,
                ms(p.new_leader_ms),
                ms(p.healed_ms)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sweep_table(runs: &[(Report, Report)]) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(vec![
        "nodes",
        "cadence",
        "follower rx/s",
        "leader rx/s",
        "msgs/node/h",
        "first leader",
        "split brain",
        "wall",
    ]);
    for r in runs.iter().flat_map(|(a, f)| [a, f]) {
        t.add_row(vec![
            r.nodes.to_string(),
            if r.adaptive { "adaptive" } else { "fixed" }.to_string(),
            format!("{:.2}", r.follower_rx_per_s_mean),
            format!("{:.1}", r.leader_rx_per_s_mean),
            format!("{:.0}", r.msgs_per_node_hour),
            ms(r.first_leader_ms),
            r.split_brain.to_string(),
            format!("{} ms", r.wall_ms),
        ]);
    }
    format!("{t}\n")
}
