//! Membership through liveliness tokens: zenoh withdraws a token the moment its session dies,
//! so a crashed process disappears without waiting for missed heartbeats.

use super::BusError;
use crate::keys::{SwarmKey, SwarmKeys};
use crate::names::NodeId;
use zenoh::Session;
use zenoh::handlers::FifoChannelHandler;
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Subscriber;
use zenoh::sample::{Sample, SampleKind};

/// Declares `swarm/<s>/node/<id>`; the token lives until dropped or undeclared.
pub async fn declare_token(
    session: &Session,
    keys: &SwarmKeys,
    id: &NodeId,
) -> Result<LivelinessToken, BusError> {
    let key = keys.node(id);
    session
        .liveliness()
        .declare_token(key.clone())
        .await
        .map_err(|e| BusError::new(format!("declaring liveliness token {key}"), e))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    Joined(NodeId),
    Left(NodeId),
}

pub struct MemberWatch {
    inner: Subscriber<FifoChannelHandler<Sample>>,
}

/// Watches `swarm/<s>/node/*`, starting with the members alive now.
pub async fn watch_members(session: &Session, keys: &SwarmKeys) -> Result<MemberWatch, BusError> {
    let key = keys.all_nodes();
    let inner = session
        .liveliness()
        .declare_subscriber(key.clone())
        .history(true)
        .await
        .map_err(|e| BusError::new(format!("watching liveliness on {key}"), e))?;
    Ok(MemberWatch { inner })
}

impl MemberWatch {
    /// The next join or leave; `None` once the session is closed.
    pub async fn recv(&self) -> Option<MemberEvent> {
        loop {
            let sample = self.inner.recv_async().await.ok()?;
            if let Some(event) = member_event(&sample) {
                return Some(event);
            }
        }
    }

    /// A join or leave already received, without waiting.
    pub fn try_recv(&self) -> Option<MemberEvent> {
        while let Ok(Some(sample)) = self.inner.try_recv() {
            if let Some(event) = member_event(&sample) {
                return Some(event);
            }
        }
        None
    }
}

fn member_event(sample: &Sample) -> Option<MemberEvent> {
    let key = sample.key_expr().as_str();
    let Some(id) = key
        .parse::<SwarmKey>()
        .ok()
        .and_then(|k| k.node_id().cloned())
    else {
        tracing::warn!(key, "ignored liveliness token that names no valid node");
        return None;
    };
    Some(match sample.kind() {
        SampleKind::Put => MemberEvent::Joined(id),
        SampleKind::Delete => MemberEvent::Left(id),
    })
}
