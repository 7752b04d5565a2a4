//! `swarm-node bench [idle]`: prints payload sizes, start-to-first-heartbeat time, and idle
//! RSS/CPU of real `swarm-node run` processes on loopback. Figures only; no pass/fail.

use super::procs::{Link, Nodes, open_observer, rss_kib, sched, spawn_node, state_dir};
use crate::cli::IdleArgs;
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{self as bus, DropCounters};
use swarm_bus::*;

pub async fn run(args: IdleArgs) -> anyhow::Result<()> {
    sizes();
    let swarm = SwarmName::new("bench")?;
    let keys = SwarmKeys::new(swarm.clone());
    // Both ranges are bounded by clap (nodes ≤ 64, base port ≤ 60000), so this cannot overflow.
    let ports: Vec<u16> = (0..args.nodes).map(|i| args.base_port + i).collect();
    let observer_port = args.base_port + args.nodes;

    let observer = open_observer(observer_port, &Link::Tcp).await?;
    let heartbeats = bus::subscribe::<Heartbeat>(
        &observer,
        keys.all(Leaf::Heartbeat),
        DropCounters::default(),
    )
    .await?;
    let state = state_dir()?;
    let mut nodes = Nodes(Vec::new());
    // One at a time, each joining the nodes already up, as a node joins a running swarm; the
    // figure is spawn → its first heartbeat received by the observer (a peer).
    println!("\nstart → first heartbeat seen by a peer (spawn, joining the nodes already up):");
    for (i, port) in ports.iter().enumerate() {
        let id = format!("bench-{i}");
        let mut connect = vec![observer_port];
        connect.extend_from_slice(&ports[..i]);
        let t0 = Instant::now();
        nodes.0.push(spawn_node(
            &id,
            &swarm,
            *port,
            &connect,
            &state,
            &Link::Tcp,
        )?);
        let seen = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(r) = heartbeats.recv().await {
                if r.from.as_str() == id {
                    return Some(t0.elapsed());
                }
            }
            None
        })
        .await;
        match seen {
            Ok(Some(d)) => println!("  {id}: {:.0} ms", d.as_secs_f64() * 1000.0),
            _ => anyhow::bail!("{id} sent no heartbeat within 20 s"),
        }
    }

    let pid = nodes.0[0].id();
    println!(
        "
idle bench-0 with {} nodes up, watched for {} s:",
        args.nodes, args.seconds
    );
    let sched0 = sched(pid)?;
    let t0 = Instant::now();
    let mut peak_rss = 0;
    for _ in 0..args.seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_rss = peak_rss.max(rss_kib(pid)?);
    }
    let spent = sched(pid)?.since(sched0);
    let secs = t0.elapsed().as_secs_f64();
    println!("  RSS now {} KiB, peak {} KiB", rss_kib(pid)?, peak_rss);
    println!(
        "  CPU {:.3} % of one core, {:.1} wakeups/s (the scheduler's per-thread counters)",
        spent.cpu_ns as f64 / 1e9 / secs * 100.0,
        spent.runs as f64 / secs
    );
    // The observer closes first, and closes before its subscriber is dropped: a fifo subscriber
    // dropped while samples still arrive, or a session that watches every node stop at once,
    // logs zenoh teardown errors that are no part of what is measured here.
    let _ = observer.close().await;
    drop(heartbeats);
    drop(nodes);
    let _ = std::fs::remove_dir_all(&state);
    Ok(())
}

fn sizes() {
    let hb = samples::heartbeat(8);
    let long_leader = samples::heartbeat(23);
    let energy = samples::energy();
    println!("payload sizes (CBOR, bytes; JSON form for comparison):");
    let row = |name: &str, cbor: usize, json: usize| {
        println!("  {name:<40} {cbor:>4} B   (JSON {json} B)")
    };
    row(
        "heartbeat, leader id of 8 chars",
        encode(&hb).len(),
        json_len(&hb),
    );
    row(
        "heartbeat, leader id of 23 chars",
        encode(&long_leader).len(),
        json_len(&long_leader),
    );
    row(
        "energy, every optional field set",
        encode(&energy).len(),
        json_len(&energy),
    );
    row(
        "leave",
        encode(&Leave { term: 42 }).len(),
        json_len(&Leave { term: 42 }),
    );
}

fn json_len<T: serde::Serialize>(m: &T) -> usize {
    serde_json::to_vec(m).map(|v| v.len()).unwrap_or(0)
}
