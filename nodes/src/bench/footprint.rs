//! `swarm-node bench footprint`: where memory goes and what quiet costs. An idle swarm of
//! real nodes on loopback (each node's RSS split into anonymous and file-backed pages, its
//! CPU time and wakeups from the scheduler's per-thread counters, and the swarm's bytes and
//! packets from the sockets' own counters), then a gateway (`run --mqtt-listen`) through a flood and a thousand idle device
//! connections, with the cost of one connection. Figures only; nothing is asserted.

use super::procs::{Link, Memory, Nodes, memory, sched, spawn_node_with, state_dir};
use super::wire;
use crate::cli::FootprintArgs;
use std::time::{Duration, Instant};
use swarm_bus::{SwarmKeys, SwarmName};

pub async fn run(args: FootprintArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let size = std::fs::metadata(&exe).map(|m| m.len()).unwrap_or(0);
    println!(
        "{} ({} build, {:.1} MiB on disk)",
        exe.display(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimised"
        },
        mib(size / 1024)
    );
    let state = state_dir()?;
    let outcome = async {
        idle_swarm(&args, &state).await?;
        if args.connections > 0 {
            gateway(&args, &state).await?;
        }
        anyhow::Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&state);
    outcome
}

async fn idle_swarm(args: &FootprintArgs, state: &std::path::Path) -> anyhow::Result<()> {
    let swarm = SwarmName::new("footprint")?;
    // Bounded by clap (nodes ≤ 32, base port ≤ 60000): no overflow.
    let ports: Vec<u16> = (0..args.nodes).map(|i| args.base_port + i).collect();
    let mut nodes = Nodes(Vec::new());
    for (i, port) in ports.iter().enumerate() {
        let id = format!("fp-{i}");
        nodes.0.push(spawn_node_with(
            &id,
            &swarm,
            *port,
            &ports[..i],
            state,
            &Link::Tcp,
            &[],
            true,
        )?);
    }
    println!(
        "\n{} idle nodes on loopback, each connected to every other; measured after {} s, over {} s",
        args.nodes, args.settle_s, args.seconds
    );
    tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
    let range = args.base_port..=args.base_port + args.nodes - 1;
    let pids: Vec<u32> = nodes.0.iter().map(|c| c.id()).collect();
    let sched0 = pids
        .iter()
        .map(|p| sched(*p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sent0 = wire::sent(range.clone())?;
    let t0 = Instant::now();
    // Sampled each second: a node gives back its code pages now and then
    // (`code_pages.rs`), so one reading at the end would depend on when it fell.
    let mut seen = vec![Sampled::default(); pids.len()];
    let end = t0 + Duration::from_secs(args.seconds);
    while Instant::now() < end {
        for (pid, s) in pids.iter().zip(seen.iter_mut()) {
            s.add(memory(*pid)?);
        }
        tokio::time::sleep(Duration::from_secs(1).min(end - Instant::now())).await;
    }
    let sent = wire::sent(range)?.since(sent0);
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "  {:<8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "node", "RSS", "RSS max", "anon", "file", "PSS", "CPU", "wakeups/s"
    );
    for (i, ((pid, s0), m)) in pids.iter().zip(sched0).zip(&seen).enumerate() {
        let s = sched(*pid)?.since(s0);
        println!(
            "  {:<8} {:>6.1} MiB {:>6.1} MiB {:>6.1} MiB {:>6.1} MiB {:>6.1} MiB {:>8.3} % {:>10.1}",
            format!("fp-{i}"),
            m.mean(|m| m.rss),
            mib(m.max_rss),
            m.mean(|m| m.anon),
            m.mean(|m| m.file),
            m.mean(|m| m.pss),
            s.cpu_ns as f64 / 1e9 / secs * 100.0,
            s.runs as f64 / secs
        );
    }
    println!(
        "  (memory: the mean of a reading a second, and the largest RSS read; CPU and wakeups \
         from the scheduler's per-thread counters; the leader is the busiest)"
    );
    println!(
        "  the swarm on the wire: {:.0} B/s TCP payload, {:.1} packets/s, {:.0} B/s with headers \
         ({} B a packet on loopback)",
        sent.payload as f64 / secs,
        sent.segments as f64 / secs,
        sent.on_the_wire() as f64 / secs,
        wire::HEADER_BYTES
    );
    println!(
        "  of the packets: {:.1}/s carry data, {:.1}/s are pure TCP acknowledgements",
        sent.data_segments as f64 / secs,
        sent.segments.saturating_sub(sent.data_segments) as f64 / secs
    );
    Ok(())
}

async fn gateway(args: &FootprintArgs, state: &std::path::Path) -> anyhow::Result<()> {
    let swarm = SwarmName::new("footprint-gw")?;
    let zenoh_port = args.base_port + args.nodes;
    let observer_port = zenoh_port + 1;
    let mqtt_port = zenoh_port + 2;
    let observer = super::procs::open_observer(observer_port, &Link::Tcp).await?;
    let extra = [
        "--mqtt-listen".to_string(),
        format!("127.0.0.1:{mqtt_port}"),
    ];
    let gw = Nodes(vec![spawn_node_with(
        "fp-gateway",
        &swarm,
        zenoh_port,
        &[observer_port],
        state,
        &Link::Tcp,
        &extra,
        false,
    )?]);
    let pid = gw.0[0].id();
    wait_for_port(mqtt_port, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = memory(pid)?;
    println!("\ngateway (swarm-node run --mqtt-listen: node, bridge, embedded broker, history)");
    row("idle", idle);
    let opts = swarm_bridge::bench::BenchOptions {
        host: "127.0.0.1".into(),
        port: mqtt_port,
        keys: SwarmKeys::new(swarm),
        clients: 4,
        flood: Duration::from_secs(args.flood_s),
        rate: 1000,
        rate_for: Duration::from_secs(args.flood_s),
        connections: 0,
    };
    for r in swarm_bridge::bench::run(opts, observer.clone()).await? {
        println!("  {}", r.line());
    }
    let flooded = memory(pid)?;
    row("after the flood", flooded);
    let count = args.connections as usize;
    let held = swarm_bridge::bench::HeldConnections::open("127.0.0.1", mqtt_port, count).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let up = held.up();
    let connected = memory(pid)?;
    row(&format!("{up} of {count} devices connected"), connected);
    if up > 0 {
        let per = connected.rss.saturating_sub(flooded.rss) as f64 * 1024.0 / up as f64;
        println!("  per idle device connection: {per:.0} B of RSS");
    }
    drop(held);
    println!(
        "  peak RSS over the run: {:.1} MiB",
        mib(connected.peak.max(memory(pid)?.peak))
    );
    let _ = observer.close().await;
    drop(gw);
    Ok(())
}

fn row(what: &str, m: Memory) {
    println!(
        "  {what:<34} RSS {:>6.1} MiB (anon {:.1}, file {:.1}, PSS {:.1}), peak {:.1} MiB",
        mib(m.rss),
        mib(m.anon),
        mib(m.file),
        mib(m.pss),
        mib(m.peak)
    );
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn wait_for_port(port: u16, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the gateway's broker did not listen on 127.0.0.1:{port} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A node's memory read once a second.
#[derive(Debug, Clone, Default)]
struct Sampled {
    sum: Memory,
    readings: u64,
    max_rss: u64,
}

impl Sampled {
    fn add(&mut self, m: Memory) {
        // KiB of a process's memory: far from overflowing in any run a bench makes.
        self.sum.rss += m.rss;
        self.sum.anon += m.anon;
        self.sum.file += m.file;
        self.sum.pss += m.pss;
        self.readings += 1;
        self.max_rss = self.max_rss.max(m.rss);
    }

    /// In MiB.
    fn mean(&self, field: impl Fn(&Memory) -> u64) -> f64 {
        mib(field(&self.sum)) / self.readings.max(1) as f64
    }
}
