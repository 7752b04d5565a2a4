//! Anti-entropy: now and then a node asks the swarm directly who is there and who leads, and
//! repairs what its event stream missed (a liveliness event lost in a reconnect, a leader
//! elected while this node was partitioned). The leader also asks for every member's energy,
//! which it alone gathers, to fill in samples it missed.
//!
//! Not `node/*/state`: each state reply lists that node's peers, so a survey of N nodes would
//! carry N² ids; tokens, the `leader` answers and energy samples repair the same view in O(N).

use super::consensus::who_leads;
use std::collections::BTreeSet;
use std::time::Duration;
use swarm_bus::zenoh::query_cbor;
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

/// Members with a token this node has no record of. Only additions: a token missing from one
/// survey may be a reply that was late, and departures are the liveliness events' to tell.
pub fn missed<'a>(
    known: impl IntoIterator<Item = &'a NodeId>,
    found: &[NodeId],
    me: &NodeId,
) -> Vec<NodeId> {
    let known: BTreeSet<&NodeId> = known.into_iter().collect();
    let mut out: Vec<NodeId> = found
        .iter()
        .filter(|id| *id != me && !known.contains(id))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|n| NodeId::new(*n).unwrap()).collect()
    }

    #[test]
    fn only_members_never_recorded_are_repaired() {
        let known = ids(&["a", "b"]);
        let found = ids(&["me", "b", "c", "c", "d"]);
        let me = NodeId::new("me").unwrap();
        assert_eq!(missed(&known, &found, &me), ids(&["c", "d"]));
        assert!(
            missed(&known, &ids(&[]), &me).is_empty(),
            "an empty survey removes nobody"
        );
    }
}
