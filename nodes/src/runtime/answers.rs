//! What this node answers from its snapshot: its queryables on the bus, and `/metrics`.

use super::board_service::InputLevels;
use super::view::NodeView;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use swarm_bus::clock::unix_ms;
use swarm_bus::zenoh::{self as bus, DropCounters};
use swarm_bus::{NodeId, SwarmKeys};
use tokio::sync::watch;
use zenoh::Session;

/// How long a relayed query waits for the members (docs/protocol.md#first-answer): well inside
/// zenoh's default query timeout (10 s), so a member cut off but not yet timed out by its lease
/// delays the answer by this much, not by the querier's whole timeout.
const RELAY_TIMEOUT: Duration = Duration::from_secs(3);

/// Things to hold for as long as the node runs.
pub type Held = Vec<Box<dyn std::any::Any + Send>>;

/// What the answers are read from: the snapshot, the bus counters, and the workers'
/// agreement the task service keeps.
#[derive(Clone)]
pub struct Sources {
    pub view: watch::Receiver<NodeView>,
    pub drops: DropCounters,
    pub agreement: super::tasks::Agreement,
}

/// Serves `energy`, `state`, `leader` and the swarm's energy from the snapshot, and relays
/// queries for every member's (docs/protocol.md#first-answer).
pub async fn serve(
    session: &Session,
    keys: &SwarmKeys,
    id: &NodeId,
    sources: &Sources,
    gco2_per_kwh: f32,
    tls: bool,
) -> anyhow::Result<Held> {
    let Sources {
        view,
        drops,
        agreement,
    } = sources;
    let mut held: Held = vec![
        Box::new(
            bus::serve(session, keys.energy(id), {
                let view = view.clone();
                move || view.borrow().energy.clone()
            })
            .await?,
        ),
        Box::new(
            bus::serve(session, keys.state(id), {
                let (view, drops, agreement) = (view.clone(), drops.clone(), agreement.clone());
                let id = id.clone();
                move || {
                    let mut state = view.borrow().state(Instant::now(), drops.total());
                    let own = agreement
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&id)
                        .copied();
                    if let Some(s) = own {
                        state.agreed = Some(s.agreed);
                        state.decided = Some(s.decided);
                    }
                    Some(state)
                }
            })
            .await?,
        ),
        Box::new(
            bus::serve(session, keys.leader(), {
                let view = view.clone();
                move || view.borrow().answer_on_who_leads()
            })
            .await?,
        ),
        Box::new(
            bus::serve(session, keys.swarm_energy(), {
                let view = view.clone();
                move || view.borrow().swarm_energy(unix_ms(), gco2_per_kwh)
            })
            .await?,
        ),
    ];
    // A querier linked to this node alone still gets every member's answer on its first try.
    // Not with TLS: the roster lets a node reply on its own keys only, so a relayed reply would
    // be dropped by whoever enforces it (docs/protocol.md#first-answer).
    if !tls {
        held.push(Box::new(
            bus::relay(session, drops.clone(), RELAY_TIMEOUT).await?,
        ));
    }
    Ok(held)
}

/// What one scrape of `/metrics` reads: the snapshot, and the bus counters.
pub fn metrics_snapshot(
    sources: Sources,
    sent: Arc<AtomicU64>,
    keys: &SwarmKeys,
    gco2_per_kwh: f32,
    inputs: InputLevels,
    bridge: Option<Arc<swarm_bridge::stats::Stats>>,
) -> impl Fn() -> crate::metrics::exposition::Snapshot + Send + Sync + 'static {
    let swarm = keys.swarm().to_string();
    let Sources {
        view,
        drops,
        agreement,
    } = sources;
    move || {
        let board_inputs = inputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|(name, level)| Some((*name, (*level)?)))
            .collect();
        let v = view.borrow();
        crate::metrics::exposition::Snapshot {
            swarm: swarm.clone(),
            node: v.id.to_string(),
            energy: v.energy.clone(),
            role: v.role,
            term: v.term,
            cadence_ms: v.cadence_ms,
            cadence_mode: v.cadence_mode,
            members: v.peers.len() + 1,
            received: drops.accepted(),
            sent: sent.load(Ordering::Relaxed),
            dropped: drops.snapshot(),
            total: v.swarm_energy(unix_ms(), gco2_per_kwh),
            board_inputs,
            bridge_dropped: bridge.as_ref().map(|b| b.refusals()).unwrap_or_default(),
            agreement: agreement
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(w, s)| (w.to_string(), s.agreed, s.decided))
                .collect(),
            memory: crate::process_memory::Memory::own().ok(),
        }
    }
}
