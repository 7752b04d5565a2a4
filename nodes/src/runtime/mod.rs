//! `swarm-node run`: the thin async shell around the node's view of the swarm.

mod sampler;
mod view;

pub use sampler::unix_ms;

use crate::config::{Config, default_state_dir};
use crate::energy::{meter::Meter, profile, sensors, store::EnergyStore};
use anyhow::Context;
use sampler::Sampler;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{self as bus, DropCounters, MemberEvent, TypedPublisher};
use swarm_bus::{Energy, Heartbeat, Leaf, Leave, NodeId, SwarmKeys};
use tokio::time::MissedTickBehavior;
use view::NodeView;

type Shared = Arc<Mutex<NodeView>>;

fn lock(view: &Shared) -> MutexGuard<'_, NodeView> {
    // A panic elsewhere must not take the queryables down with it.
    view.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A congested link must not hold up a stop.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);

/// How often the cumulative energy total is written: rarely, to spare SD cards.
const SAVE_EVERY: Duration = Duration::from_secs(60);

pub async fn run(config: Config, id: NodeId) -> anyhow::Result<()> {
    // Installed before anything slow (opening the session can take seconds in client mode),
    // so a stop request is never met by the default action of killing the process.
    let mut stop = Box::pin(shutdown_signal()?);
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let state_dir = config
        .node
        .state_dir
        .clone()
        .unwrap_or_else(|| default_state_dir(&id));
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating state directory {}", state_dir.display()))?;

    let mut sampler = new_sampler(&config, &state_dir);
    let now = Instant::now();
    let hb_interval = Duration::from_millis(u64::from(config.consensus.heartbeat_interval_ms));
    let view: Shared = Arc::new(Mutex::new(NodeView::new(
        id.clone(),
        config.node.class,
        config.consensus.heartbeat_interval_ms,
        now,
    )));
    lock(&view).energy = Some(sampler.sample(now));

    let session = bus::open(&config.zenoh).await?;
    let drops = DropCounters::default();

    let _queryables = (
        bus::serve(&session, keys.energy(&id), {
            let view = view.clone();
            move || lock(&view).energy.clone()
        })
        .await?,
        bus::serve(&session, keys.state(&id), {
            let (view, drops) = (view.clone(), drops.clone());
            move || {
                let mut v = lock(&view);
                v.dropped = drops.total();
                Some(v.state(Instant::now()))
            }
        })
        .await?,
        bus::serve(&session, keys.leader(), {
            let view = view.clone();
            move || Some(lock(&view).leader_info())
        })
        .await?,
    );

    let heartbeats =
        bus::subscribe::<Heartbeat>(&session, keys.all(Leaf::Heartbeat), drops.clone()).await?;
    let leaves = bus::subscribe::<Leave>(&session, keys.all(Leaf::Leave), drops.clone()).await?;
    // Energy from peers is not used yet, but a subscriber makes bad payloads on those keys
    // visible in the drop counters like any other.
    let energies =
        bus::subscribe::<Energy>(&session, keys.all(Leaf::Energy), drops.clone()).await?;
    let members = bus::watch_members(&session, &keys).await?;
    let hb_pub = TypedPublisher::<Heartbeat>::declare(&session, keys.heartbeat(&id), false).await?;
    // Periodic and superseded by the next sample: dropped under congestion rather than
    // stalling this loop (and with it heartbeats and signal handling).
    let energy_pub = TypedPublisher::<Energy>::declare(&session, keys.energy(&id), false).await?;
    let token = bus::declare_token(&session, &keys, &id).await?;

    let mut hb_tick = tokio::time::interval(hb_interval);
    hb_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut energy_tick = tokio::time::interval(Duration::from_millis(u64::from(
        config.energy.sample_interval_ms,
    )));
    energy_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut save_tick = tokio::time::interval(SAVE_EVERY);

    tracing::info!(
        id = %id, swarm = %keys.swarm(), class = %config.node.class,
        state_dir = %state_dir.display(), "node running"
    );
    loop {
        tokio::select! {
            _ = hb_tick.tick() => {
                let hb = lock(&view).next_heartbeat(unix_ms());
                if let Err(e) = hb_pub.put(&hb).await {
                    tracing::warn!("{e}");
                }
            }
            _ = energy_tick.tick() => {
                let sample = sampler.sample(Instant::now());
                lock(&view).energy = Some(sample.clone());
                if let Err(e) = energy_pub.put(&sample).await {
                    tracing::warn!("{e}");
                }
            }
            _ = save_tick.tick() => sampler.save(),
            Some(r) = heartbeats.recv() => {
                if lock(&view).heard(&r.from, r.msg, Instant::now()) {
                    tracing::info!(peer = %r.from, "first heartbeat from peer");
                }
            }
            Some(r) = leaves.recv() => {
                lock(&view).left_cleanly(&r.from);
                tracing::info!(peer = %r.from, term = r.msg.term, "peer left cleanly");
            }
            Some(_) = energies.recv() => {}
            Some(event) = members.recv() => match event {
                MemberEvent::Joined(peer) => {
                    if lock(&view).joined(peer.clone()) {
                        tracing::info!(%peer, "peer joined");
                    }
                }
                MemberEvent::Left(peer) => {
                    if lock(&view).gone(&peer) {
                        tracing::info!(%peer, "peer gone (liveliness token withdrawn)");
                    }
                }
            },
            signal = &mut stop => {
                tracing::info!("{signal}: leaving the swarm");
                break;
            }
        }
    }

    let term = lock(&view).term;
    let (leave_key, leave) = (keys.node_leaf(&id, Leaf::Leave), Leave { term });
    match tokio::time::timeout(LEAVE_TIMEOUT, bus::publish(&session, &leave_key, &leave)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("{e}"),
        Err(_) => {
            tracing::warn!("Leave not sent within {LEAVE_TIMEOUT:?}; peers rely on the token")
        }
    }
    if let Err(e) = token.undeclare().await {
        tracing::warn!("undeclaring liveliness token: {e}");
    }
    sampler.save();
    // Withdraw interest before closing, so peers stop sending to a session that is going away.
    drop((
        heartbeats,
        leaves,
        energies,
        members,
        hb_pub,
        energy_pub,
        _queryables,
    ));
    if let Err(e) = session.close().await {
        tracing::warn!("closing zenoh session: {e}");
    }
    tracing::info!(dropped = drops.total(), "stopped");
    Ok(())
}

fn new_sampler(config: &Config, state_dir: &Path) -> Sampler {
    let model = sensors::device_tree_model(Path::new("/proc"));
    let profile = profile::resolve(&config.energy, model.as_deref());
    tracing::info!(
        profile = profile.name,
        idle_w = profile.idle_watts,
        max_w = profile.max_watts,
        "power model"
    );
    let store = EnergyStore::new(state_dir);
    let meter = Meter::new(
        profile,
        config.energy.carbon_intensity_gco2_kwh,
        store.load().wh_total,
    );
    Sampler::new(meter, store, PathBuf::from("/sys"))
}

/// Registers SIGTERM and SIGINT now; the returned future names the first to arrive.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("watching SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("watching SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}
