//! `swarm-node watch`: follows every heartbeat in the swarm and reports each new leader and any
//! term with two leaders, until Ctrl-C.

use crate::config::Config;
use crate::runtime::{shutdown_signal, unix_ms};
use swarm_bus::zenoh::{self as bus, DropCounters};
use swarm_bus::{Heartbeat, Leaf, SwarmKeys};
use swarm_node::election::{ElectionObserver, Seen};

/// Returns false when a split brain was seen.
pub async fn run(config: &Config) -> anyhow::Result<bool> {
    let mut stop = Box::pin(shutdown_signal()?);
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let session = bus::open_observer(&config.zenoh).await?;
    let drops = DropCounters::default();
    let heartbeats =
        bus::subscribe::<Heartbeat>(&session, keys.all(Leaf::Heartbeat), drops.clone()).await?;
    let mut observer = ElectionObserver::default();
    println!(
        "watching swarm {} for leaders (two in one term is a split brain); Ctrl-C to stop",
        keys.swarm()
    );
    loop {
        tokio::select! {
            Some(r) = heartbeats.recv() => match observer.heartbeat(&r.from, &r.msg) {
                Seen::NewLeader { term, leader } => {
                    println!("{} term {term}: {leader} leads", unix_ms());
                }
                Seen::SplitBrain(v) => println!(
                    "{} SPLIT BRAIN in term {}: {} and {} both lead",
                    unix_ms(), v.term, v.leaders.0, v.leaders.1
                ),
                Seen::Nothing => {}
            },
            _ = &mut stop => break,
        }
    }
    let splits = observer.split_brains().len();
    println!(
        "{splits} term(s) with two leaders; {} bad message(s) dropped",
        drops.total()
    );
    drop(heartbeats);
    let _ = session.close().await;
    Ok(splits == 0)
}
