//! `status` and `energy`: a short-lived observer session asks the swarm and prints what answers.

pub mod cadence;
pub mod energy;
pub mod energy_history;
pub mod energy_watch;
pub mod identify;
pub mod propose;
pub mod sim;
pub mod status;
pub mod tasks;

use crate::config::Config;
use std::collections::BTreeMap;
use std::time::Duration;
use swarm_bus::zenoh::{self as bus, QueryReply};
use swarm_bus::{Energy, Leaf, NodeId, NodeState, SwarmEnergy, SwarmKey, SwarmKeys, WireMessage};

/// What the swarm answered, by node.
#[derive(Debug, Default)]
pub struct SwarmView {
    pub states: BTreeMap<NodeId, NodeState>,
    pub energy: BTreeMap<NodeId, Energy>,
    /// The leader's sum of the swarm's energy, when a leader answered.
    pub total: Option<SwarmEnergy>,
    /// Replies that could not be read (counted, and reported on stderr).
    pub faults: Vec<String>,
}

pub async fn ask(config: &Config, timeout: Duration) -> anyhow::Result<SwarmView> {
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let session = open_settled(config).await?;
    let view = gather(&session, &keys, timeout).await;
    let _ = session.close().await;
    view
}

/// An observer session that has had time to meet the swarm's peers.
pub async fn open_settled(config: &Config) -> anyhow::Result<zenoh::Session> {
    let session = bus::open_observer(&config.zenoh).await?;
    // Peer sessions learn of the swarm's other peers by gossip just after opening; a query sent
    // at once would reach only the peers already connected.
    tokio::time::sleep(SETTLE).await;
    Ok(session)
}

/// Every node's state and energy, and the leader's total, asked at once.
pub async fn gather(
    session: &zenoh::Session,
    keys: &SwarmKeys,
    timeout: Duration,
) -> anyhow::Result<SwarmView> {
    let (state_keys, energy_keys) = (keys.all(Leaf::State), keys.all(Leaf::Energy));
    let total_key = keys.swarm_energy();
    let (states, energy, totals) = tokio::join!(
        bus::query_cbor::<NodeState>(session, &state_keys, timeout),
        bus::query_cbor::<Energy>(session, &energy_keys, timeout),
        bus::query_cbor::<SwarmEnergy>(session, &total_key, timeout),
    );
    let mut view = SwarmView::default();
    view.states = by_node(states?, &mut view.faults);
    view.energy = by_node(energy?, &mut view.faults);
    let mut totals_read = Vec::new();
    for reply in totals? {
        match reply.msg {
            Ok(total) => totals_read.push(total),
            Err(fault) => view.faults.push(format!("{}: {fault}", reply.key)),
        }
    }
    // Two answers only while a deposed leader has not yet heard of its successor.
    view.total = totals_read.into_iter().max_by_key(|t| (t.term, t.ts_ms));
    Ok(view)
}

pub(crate) const SETTLE: Duration = Duration::from_millis(300);

/// The one line a query command prints when nothing answered, with where it looked.
pub fn no_answer(config: &Config, timeout_ms: u64) -> String {
    format!(
        "no node of swarm `{}` answered within {timeout_ms} ms (connect: {:?}, multicast \
         scouting: {})",
        config.node.swarm, config.zenoh.connect, config.zenoh.multicast_scouting
    )
}

fn by_node<T: WireMessage>(
    replies: Vec<QueryReply<T>>,
    faults: &mut Vec<String>,
) -> BTreeMap<NodeId, T> {
    let mut out = BTreeMap::new();
    for reply in replies {
        match (SwarmKey::node_of(&reply.key), reply.msg) {
            (Some(id), Ok(msg)) => {
                out.insert(id, msg);
            }
            (_, Err(fault)) => faults.push(format!("{}: {fault}", reply.key)),
            (None, Ok(_)) => {
                faults.push(format!("{}: reply on a key that names no node", reply.key))
            }
        }
    }
    out
}

/// "1.2 s", "340 ms", or "-" when unknown.
pub fn age(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

/// A Unix time in ms as the time of day, UTC: `14:03:20 UTC`.
pub fn time_of_day(unix_ms: u64) -> String {
    let s = (unix_ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

pub fn or_dash<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(header.iter().map(|h| h.to_string()));
    t
}
