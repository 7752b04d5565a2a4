//! Anti-entropy: now and then a node asks the swarm directly who is there and who leads, and
//! repairs what its event stream missed (a liveliness event lost in a reconnect, a leader
//! elected while this node was partitioned). The leader also asks for every member's energy,
//! which it alone gathers, to fill in samples it missed.
//!
//! Not `node/*/state`: each state reply lists that node's peers, so a survey of N nodes would
//! carry N² ids; tokens, the `leader` answers and energy samples repair the same view in O(N).

use std::time::Duration;
use swarm_bus::zenoh::{self as bus, query_cbor};
use swarm_bus::{Energy, LeaderInfo, Leaf, NodeId, SwarmKey, SwarmKeys};
use zenoh::Session;

const SURVEY_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub struct Findings {
    pub members: Vec<NodeId>,
    pub leaders: Vec<LeaderInfo>,
    /// Every member's energy sample, when the leader asked for them.
    pub energies: Vec<(NodeId, Energy)>,
}

/// Asks for every liveliness token and every node's view of the leadership. Runs off the main
/// loop, so a slow reply never delays a heartbeat.
pub async fn survey(session: Session, keys: SwarmKeys, energy: bool) -> Findings {
    let members = members(&session, &keys).await;
    let energies = if energy {
        energies(&session, &keys).await
    } else {
        Vec::new()
    };
    Findings {
        members,
        leaders: who_leads(&session, &keys).await,
        energies,
    }
}

/// Every id that holds a liveliness token now.
pub async fn members(session: &Session, keys: &SwarmKeys) -> Vec<NodeId> {
    let mut members = Vec::new();
    match session
        .liveliness()
        .get(keys.all_nodes())
        .timeout(SURVEY_TIMEOUT)
        .await
    {
        Ok(replies) => {
            while let Ok(reply) = replies.recv_async().await {
                let id = reply
                    .result()
                    .ok()
                    .and_then(|s| SwarmKey::node_of(s.key_expr().as_str()));
                members.extend(id);
            }
        }
        Err(e) => tracing::warn!("asking for members: {e}"),
    }
    members
}

/// Every node's energy sample; unreadable replies are skipped (the replying node's own drop
/// counters are not ours to bump).
async fn energies(session: &Session, keys: &SwarmKeys) -> Vec<(NodeId, Energy)> {
    match query_cbor::<Energy>(session, &keys.all(Leaf::Energy), SURVEY_TIMEOUT).await {
        Ok(replies) => replies
            .into_iter()
            .filter_map(|r| {
                let id = SwarmKey::node_of(&r.key)?;
                Some((id, r.msg.ok()?))
            })
            .collect(),
        Err(e) => {
            tracing::warn!("anti-entropy: asking for energy: {e}");
            Vec::new()
        }
    }
}

/// How long a starting node waits for the swarm to say who leads.
const ASK_TIMEOUT: Duration = Duration::from_millis(300);

/// Every node's answer on `swarm/<s>/leader`; unreadable replies are skipped.
pub async fn who_leads(session: &Session, keys: &SwarmKeys) -> Vec<LeaderInfo> {
    match bus::query_cbor::<LeaderInfo>(session, &keys.leader(), ASK_TIMEOUT).await {
        Ok(replies) => replies.into_iter().filter_map(|r| r.msg.ok()).collect(),
        Err(e) => {
            tracing::warn!("asking who leads: {e}");
            Vec::new()
        }
    }
}
