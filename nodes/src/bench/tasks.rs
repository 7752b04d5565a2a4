//! `swarm-node bench tasks`: real nodes on loopback run the built-in `echo` handler; a session
//! submits tasks as `task submit` does and times each from the submission to the leader's
//! final word on `task/<id>/state`. First one task at a time (latency), then many in flight
//! (throughput through the leader).

use super::procs::{Link, Nodes, open_observer, spawn_node, state_dir};
use crate::cli::TasksBenchArgs;
use crate::report::tasks::submit_on;
use anyhow::Context;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{self as bus, DropCounters, TaskSubscriber};
use swarm_bus::{
    Heartbeat, Leaf, NodeId, Payload, Priority, SwarmKeys, SwarmName, TaskId, TaskLeaf, TaskResult,
    TaskSpec, TaskState,
};
use swarm_node::election::ElectionObserver;
use tokio::sync::{Semaphore, mpsc};

const SETTLE: Duration = Duration::from_secs(20);

pub async fn run(args: TasksBenchArgs) -> anyhow::Result<()> {
    let swarm = SwarmName::new("benchtasks")?;
    let keys = SwarmKeys::new(swarm.clone());
    let n = usize::from(args.nodes);
    let ports: Vec<u16> = (0..args.nodes).map(|i| args.base_port + i).collect();
    let observer_port = args.base_port + args.nodes;
    let ids = (0..n)
        .map(|i| NodeId::new(format!("bt-{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let session = open_observer(observer_port, &Link::Tcp).await?;
    let drops = DropCounters::default();
    let heartbeats =
        bus::subscribe::<Heartbeat>(&session, keys.all(Leaf::Heartbeat), drops.clone()).await?;
    let mut finals: TaskSubscriber<TaskResult> =
        bus::subscribe_tasks(&session, keys.all_tasks(TaskLeaf::State), drops.clone()).await?;
    let state = state_dir()?;
    let mut children = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let mut connect = vec![observer_port];
        connect.extend(&ports[..i]);
        children.push(spawn_node(
            id.as_str(),
            &swarm,
            ports[i],
            &connect,
            &state,
            &Link::Tcp,
        )?);
    }
    let _nodes = Nodes(children);

    let mut observer = ElectionObserver::default();
    let deadline = Instant::now() + SETTLE;
    let leader = loop {
        if let Some((leader, _)) = observer.agreed(&ids) {
            break leader;
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .context("no leader within 20 s")?;
        let r = tokio::time::timeout(left, heartbeats.recv())
            .await
            .ok()
            .flatten()
            .context("no leader within 20 s")?;
        observer.heartbeat(&r.from, &r.msg);
    };
    drop(heartbeats);
    // The leader accepts once it has taken the table over and knows its workers.
    let warm = TaskId::new("warm-up")?;
    submit_on(&session, &keys, &warm, &echo(None), 20_000).await?;
    wait_final(&mut finals, &warm).await?;
    println!(
        "{} nodes on loopback, leader {leader}; built-in echo; submit -> final state as the leader publishes it",
        args.nodes
    );
    let mut runs = vec![(String::from("1 replica"), echo(None))];
    if let Some(n) = args.replicas {
        anyhow::ensure!(
            u16::from(n) <= args.nodes,
            "--replicas {n} needs at least {n} nodes (--nodes {})",
            args.nodes
        );
        runs.push((
            format!("{n} replicas, {}", args.pick),
            echo(Some((n, args.pick))),
        ));
    }
    for (i, (name, spec)) in runs.iter().enumerate() {
        let one = args.tasks.min(1000);
        let run = |p: &str| format!("{p}{i}");
        let (lat, _) = measure(&session, &keys, &mut finals, &run("l"), spec, one, 1).await?;
        report(&format!("{name}: one at a time"), one, &lat, None);
        let (lat, wall) = measure(
            &session,
            &keys,
            &mut finals,
            &run("t"),
            spec,
            args.tasks,
            args.in_flight,
        )
        .await?;
        report(
            &format!("{name}: {} in flight", args.in_flight),
            args.tasks,
            &lat,
            Some(wall),
        );
    }
    if drops.total() > 0 {
        println!("messages dropped by the bench's session: {}", drops.total());
    }
    Ok(())
}

/// The built-in echo, on one worker or on `replicas` decided by their pick.
fn echo(replicas: Option<(u8, swarm_bus::TaskPick)>) -> TaskSpec {
    TaskSpec {
        cap: "echo".into(),
        priority: Priority::Normal,
        after: Vec::new(),
        timeout_ms: 30_000,
        retries: 0,
        payload: Payload(b"x".to_vec()),
        replicas: replicas.map(|(n, _)| n),
        pick: replicas.map(|(_, p)| p),
    }
}

async fn wait_final(finals: &mut TaskSubscriber<TaskResult>, id: &TaskId) -> anyhow::Result<()> {
    loop {
        let r = tokio::time::timeout(Duration::from_secs(30), finals.recv())
            .await
            .ok()
            .flatten()
            .context("no final state within 30 s")?;
        if r.id == *id && r.msg.state.is_final() {
            return Ok(());
        }
    }
}

/// Submits `count` tasks with at most `in_flight` unfinished at once; each one's latency from
/// its submission to its final state, and the wall time of the whole run.
async fn measure(
    session: &zenoh::Session,
    keys: &SwarmKeys,
    finals: &mut TaskSubscriber<TaskResult>,
    prefix: &str,
    spec: &TaskSpec,
    count: u32,
    in_flight: u32,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let permits = Arc::new(Semaphore::new(in_flight as usize));
    let (started_tx, mut started_rx) = mpsc::unbounded_channel::<(TaskId, Instant)>();
    let (fail_tx, mut failures) = mpsc::unbounded_channel::<String>();
    let began = Instant::now();
    let submitter = {
        let (session, keys, permits) = (session.clone(), keys.clone(), permits.clone());
        let prefix = prefix.to_string();
        let spec = spec.clone();
        tokio::spawn(async move {
            for i in 0..count {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                permit.forget();
                let id = TaskId::new(format!("{prefix}-{i}")).expect("a valid id");
                let _ = started_tx.send((id.clone(), Instant::now()));
                let (session, keys, fail_tx) = (session.clone(), keys.clone(), fail_tx.clone());
                let spec = spec.clone();
                tokio::spawn(async move {
                    if let Err(e) = submit_on(&session, &keys, &id, &spec, 10_000).await {
                        let _ = fail_tx.send(format!("{id}: {e}"));
                    }
                });
            }
        })
    };
    let mut started: HashMap<TaskId, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(count as usize);
    let mut not_ok = 0u32;
    while latencies.len() < count as usize {
        tokio::select! {
            Some((id, at)) = started_rx.recv() => { started.insert(id, at); }
            Some(f) = failures.recv() => anyhow::bail!("a submission failed: {f}"),
            r = tokio::time::timeout(Duration::from_secs(30), finals.recv()) => {
                let r = r.ok().flatten().context("no final state for 30 s")?;
                while let Ok((id, at)) = started_rx.try_recv() {
                    started.insert(id, at);
                }
                if !r.msg.state.is_final() {
                    continue;
                }
                if let Some(at) = started.remove(&r.id) {
                    latencies.push(at.elapsed());
                    not_ok += u32::from(r.msg.state != TaskState::Succeeded);
                    permits.add_permits(1);
                }
            }
        }
    }
    let wall = began.elapsed();
    submitter.abort();
    if not_ok > 0 {
        println!("  {not_ok} task(s) did not succeed");
    }
    Ok((latencies, wall))
}

fn report(label: &str, count: u32, lat: &[Duration], wall: Option<Duration>) {
    let mut sorted = lat.to_vec();
    sorted.sort();
    let at = |q: f64| {
        let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted.get(i).copied().unwrap_or_default()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    print!(
        "{label}: {count} tasks, submit -> result p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0))
    );
    match wall {
        Some(w) => println!(
            "; {:.0} tasks/s ({:.2} s)",
            f64::from(count) / w.as_secs_f64(),
            w.as_secs_f64()
        ),
        None => println!(),
    }
}
