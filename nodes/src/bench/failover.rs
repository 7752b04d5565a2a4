//! `swarm-node bench failover`: takes the leader of real nodes down, again and again, and times
//! from the signal until every survivor follows the same new leader. The observer learns each
//! node's view from heartbeats, which every node sends at once when its leader changes.

use super::procs::{Link, Nodes, open_observer, spawn_node, state_dir};
use crate::cli::{FailMode, FailoverArgs};
use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{self as bus, DropCounters, TypedSubscriber};
use swarm_bus::{Heartbeat, Leaf, NodeId, SwarmKeys, SwarmName};
use swarm_node::election::{ElectionObserver, Seen};

/// Past this, a trial counts as "never recovered".
const GIVE_UP: Duration = Duration::from_secs(15);

struct Watch {
    heartbeats: TypedSubscriber<Heartbeat>,
    observer: ElectionObserver,
}

impl Watch {
    /// Waits until `members` agree on a leader in a term above `above`; returns it and when.
    async fn agreed(
        &mut self,
        members: &[NodeId],
        above: u64,
        deadline: Instant,
    ) -> Option<(NodeId, u64, Instant)> {
        loop {
            if let Some((leader, term)) = self.observer.agreed(members)
                && term > above
            {
                return Some((leader, term, Instant::now()));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let r = tokio::time::timeout(left, self.heartbeats.recv())
                .await
                .ok()??;
            if let Seen::SplitBrain(v) = self.observer.heartbeat(&r.from, &r.msg) {
                println!(
                    "  SPLIT BRAIN: term {} led by {} and {}",
                    v.term, v.leaders.0, v.leaders.1
                );
            }
        }
    }
}

pub async fn run(args: FailoverArgs) -> anyhow::Result<()> {
    let swarm = SwarmName::new("failover")?;
    let keys = SwarmKeys::new(swarm.clone());
    let n = usize::from(args.nodes);
    // Bounded by clap (nodes ≤ 32, base port ≤ 60000): no overflow.
    let ports: Vec<u16> = (0..args.nodes).map(|i| args.base_port + i).collect();
    let observer_port = args.base_port + args.nodes;
    let ids = (0..n)
        .map(|i| NodeId::new(format!("fo-{i}")))
        .collect::<Result<Vec<_>, _>>()?;

    let state = state_dir()?;
    let link = if args.tls {
        Link::tls_for(&state, ids.iter().map(|id| id.as_str()))?
    } else {
        Link::Tcp
    };
    let session = open_observer(observer_port, &link).await?;
    let mut watch = Watch {
        heartbeats: bus::subscribe(&session, keys.all(Leaf::Heartbeat), DropCounters::default())
            .await?,
        observer: ElectionObserver::default(),
    };
    let connect_for = |i: usize| {
        let mut c = vec![observer_port];
        c.extend(
            ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| *p),
        );
        c
    };

    println!(
        "failover: {n} nodes on loopback over {}, {} trials, leader taken down by {}",
        if args.tls { "mutual TLS" } else { "TCP" },
        args.trials,
        describe(args.mode)
    );
    let started = Instant::now();
    let mut nodes = Nodes(Vec::new());
    for (i, id) in ids.iter().enumerate() {
        nodes.0.push(spawn_node(
            id.as_str(),
            &swarm,
            ports[i],
            &connect_for(i),
            &state,
            &link,
        )?);
    }
    let (_, _, at) = watch
        .agreed(&ids, 0, started + GIVE_UP)
        .await
        .context("the nodes agreed on no leader within 15 s of starting")?;
    println!(
        "start (all spawned together) → agreed leader: {:.0} ms",
        ms(at - started)
    );

    let mut times = Vec::new();
    let mut never = 0;
    for trial in 1..=args.trials {
        let Some((leader, term, _)) = watch.agreed(&ids, 0, Instant::now() + GIVE_UP).await else {
            anyhow::bail!("trial {trial}: the swarm did not settle on a leader before the trial");
        };
        if args.settle_s > 0 {
            tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
            let Some((still, ..)) = watch.agreed(&ids, 0, Instant::now() + GIVE_UP).await else {
                anyhow::bail!("trial {trial}: the swarm lost its leader while settling");
            };
            anyhow::ensure!(
                still == leader,
                "trial {trial}: the leader changed while the swarm settled ({leader} → {still})"
            );
        }
        let li = ids
            .iter()
            .position(|id| *id == leader)
            .context("leader is one of ours")?;
        let pid = Pid::from_raw(i32::try_from(nodes.0[li].id())?);
        let t0 = Instant::now();
        kill(pid, signal(args.mode))?;
        note_signal(&leader);
        watch.observer.forget(&leader);
        let survivors: Vec<NodeId> = ids.iter().filter(|id| **id != leader).cloned().collect();
        match watch.agreed(&survivors, term, t0 + GIVE_UP).await {
            Some((new, new_term, at)) => {
                let d = at - t0;
                times.push(d);
                println!(
                    "  trial {trial:>3}: {leader} (term {term}) → {new} (term {new_term}) in {:.1} ms",
                    ms(d)
                );
            }
            None => {
                never += 1;
                println!("  trial {trial:>3}: no new leader agreed within {GIVE_UP:?}");
            }
        }
        // Back to full strength for the next trial.
        match args.mode {
            FailMode::Stop => kill(pid, Signal::SIGCONT)?,
            FailMode::Kill | FailMode::Term => {
                if args.mode == FailMode::Term {
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        while matches!(nodes.0[li].try_wait(), Ok(None)) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    })
                    .await;
                }
                let _ = nodes.0[li].kill();
                let _ = nodes.0[li].wait();
                nodes.0[li] = spawn_node(
                    leader.as_str(),
                    &swarm,
                    ports[li],
                    &connect_for(li),
                    &state,
                    &link,
                )?;
            }
        }
    }

    times.sort();
    println!(
        "\nsignal → every survivor agrees on a new leader, {} of {} trials recovered:",
        times.len(),
        args.trials
    );
    if !times.is_empty() {
        println!(
            "  median {:.1} ms   p90 {:.1} ms   max {:.1} ms",
            ms(percentile(&times, 50)),
            ms(percentile(&times, 90)),
            ms(times[times.len() - 1])
        );
    }
    if never > 0 {
        println!("  never recovered: {never}");
    }
    let splits = watch.observer.split_brains();
    println!(
        "split brain (two leaders in one term): {}",
        if splits.is_empty() {
            "none".to_string()
        } else {
            format!("{} term(s)", splits.len())
        }
    );
    let _ = session.close().await;
    drop(watch);
    drop(nodes);
    let _ = std::fs::remove_dir_all(&state);
    Ok(())
}

/// With `SWARM_BENCH_LOGS=DIR`, when each signal went, in `DIR/bench.log` (Unix ms), to line
/// up with the nodes' logs there.
fn note_signal(leader: &NodeId) {
    use std::io::Write;
    let Some(dir) = std::env::var_os("SWARM_BENCH_LOGS") else {
        return;
    };
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let line = format!("{unix_ms:.3} signal sent to {leader}\n");
    let log = std::path::Path::new(&dir).join("bench.log");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("{}: {e}", log.display());
    }
}

fn signal(mode: FailMode) -> Signal {
    match mode {
        FailMode::Kill => Signal::SIGKILL,
        FailMode::Stop => Signal::SIGSTOP,
        FailMode::Term => Signal::SIGTERM,
    }
}

fn describe(mode: FailMode) -> &'static str {
    match mode {
        FailMode::Kill => "SIGKILL (a crash)",
        FailMode::Stop => "SIGSTOP (a hang; SIGCONT after)",
        FailMode::Term => "SIGTERM (a clean stop)",
    }
}

/// Nearest-rank percentile of sorted, non-empty `v`.
fn percentile(v: &[Duration], p: usize) -> Duration {
    let rank = (v.len() * p).div_ceil(100).max(1);
    v[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
