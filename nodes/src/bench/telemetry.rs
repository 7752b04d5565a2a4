//! `swarm-node bench telemetry`: the CPU a node spends on its energy telemetry, measured on
//! this thread's CPU clock so other processes on the machine do not count.

use crate::cli::TelemetryArgs;
use crate::energy::aggregate::{Member, Summer};
use std::time::{Duration, Instant};
use swarm_bus::{DeviceClass, Energy, NodeId, encode};

fn thread_cpu() -> anyhow::Result<Duration> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)?;
    Ok(Duration::from(t))
}

pub fn run(args: &TelemetryArgs) -> anyhow::Result<()> {
    let state = tempfile_dir()?;
    let settings = crate::energy::settings::EnergySettings::default();
    let mut sampler = crate::energy::new_sampler(&settings, &state);
    // sysinfo's first CPU reading only sets its baseline.
    let mut last = sampler.sample(Instant::now());
    let (mut bytes, cpu0, wall0) = (0usize, thread_cpu()?, Instant::now());
    for _ in 0..args.samples {
        last = sampler.sample(Instant::now());
        bytes = encode(&last).len();
    }
    let (cpu, wall) = (thread_cpu()? - cpu0, wall0.elapsed());
    let per_sample = cpu / args.samples;
    println!(
        "telemetry: {} samples, source {}, {:.1} µs CPU per sample ({:.1} µs wall)",
        args.samples,
        last.source,
        per_sample.as_secs_f64() * 1e6,
        (wall / args.samples).as_secs_f64() * 1e6
    );
    println!(
        "  at one sample a second: {:.4} % of one core (target ≤ 0.2 %)",
        per_sample.as_secs_f64() * 100.0
    );
    println!("  energy sample: {bytes} bytes CBOR (budget 64)");

    let members: Vec<(NodeId, Energy)> = (0..args.members)
        .map(|i| {
            let id = NodeId::new(format!("node-{i}")).expect("a valid id");
            (id, last.clone())
        })
        .collect();
    let summer = Summer {
        leader: NodeId::new("leader").expect("a valid id"),
        term: 1,
        gco2_per_kwh: settings.carbon_intensity_gco2_kwh,
    };
    let rounds = 100u32;
    let cpu0 = thread_cpu()?;
    let mut size = 0;
    for _ in 0..rounds {
        let total = summer.sum(
            0,
            members.iter().map(|(_, e)| Member {
                class: Some(DeviceClass::Full),
                energy: e,
            }),
        );
        size = encode(&total).len();
    }
    let per_sum = (thread_cpu()? - cpu0) / rounds;
    println!(
        "  leader's sum of {} members: {:.1} µs CPU, {size} bytes CBOR",
        args.members,
        per_sum.as_secs_f64() * 1e6
    );
    let _ = std::fs::remove_dir_all(&state);
    Ok(())
}

/// The sampler keeps its energy total in a state directory; the bench's is thrown away.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("swarm-bench-telemetry-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
