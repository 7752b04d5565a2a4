//! The IO side of `contact`, for every observer: what its own zenoh session says about its
//! links, and the swarm's answer to "who is there?".

use std::collections::BTreeSet;
use std::time::Duration;
use swarm_bus::{NodeId, SwarmKey, SwarmKeys};

/// How long a roll call waits for the swarm's answers.
pub const ROLL_CALL_TIMEOUT: Duration = Duration::from_millis(1500);

/// The ids of the zenoh nodes (routers and peers) this session has a transport to now.
/// A client has one at most; a peer one per node it links to.
pub async fn links(session: &zenoh::Session) -> BTreeSet<String> {
    let info = session.info();
    let mut out: BTreeSet<String> = info.routers_zid().await.map(|z| z.to_string()).collect();
    out.extend(info.peers_zid().await.map(|z| z.to_string()));
    out
}

/// Which of `asked` the swarm holds a liveliness token of; `None` when the query could not be
/// sent. Only the asked are kept, so the answer is no bigger than our own table, however many
/// tokens the swarm holds.
pub async fn roll_call(
    session: &zenoh::Session,
    keys: &SwarmKeys,
    asked: &BTreeSet<NodeId>,
) -> Option<BTreeSet<NodeId>> {
    let key = keys.all_nodes();
    let replies = match session
        .liveliness()
        .get(key.clone())
        .timeout(ROLL_CALL_TIMEOUT)
        .await
    {
        Ok(replies) => replies,
        Err(e) => {
            tracing::warn!(key, error = %e, "could not ask the swarm who is there");
            return None;
        }
    };
    let mut present = BTreeSet::new();
    while let Ok(reply) = replies.recv_async().await {
        let Ok(sample) = reply.result() else {
            continue;
        };
        let key = sample.key_expr().as_str();
        match key
            .parse::<SwarmKey>()
            .ok()
            .and_then(|k| k.node_id().cloned())
        {
            Some(id) if asked.contains(&id) => {
                present.insert(id);
            }
            Some(_) => {}
            None => tracing::warn!(key, "ignored liveliness token that names no valid node"),
        }
    }
    Some(present)
}
