//! Typed subscribing: bad samples are counted and logged, and the stream goes on.

use super::drops::worth_logging;
use super::{BusError, DropCounters};
use crate::codec::Decode;
use crate::keys::SwarmKey;
use crate::names::NodeId;
use std::marker::PhantomData;
use zenoh::Session;
use zenoh::handlers::FifoChannelHandler;
use zenoh::pubsub::Subscriber;
use zenoh::sample::{Sample, SampleKind};

/// A decoded message and the node whose key it came on.
#[derive(Debug, Clone, PartialEq)]
pub struct Received<T> {
    pub key: String,
    pub from: NodeId,
    pub msg: T,
}

pub struct TypedSubscriber<T> {
    inner: Subscriber<FifoChannelHandler<Sample>>,
    drops: DropCounters,
    /// For swarm-level keys, which name no node: the sender as the message states it.
    sender_in_payload: Option<fn(&T) -> NodeId>,
    _msg: PhantomData<fn() -> T>,
}

/// Subscribes to a node-key expression such as `swarm/<s>/node/*/heartbeat`.
pub async fn subscribe<T: Decode>(
    session: &Session,
    key_expr: String,
    drops: DropCounters,
) -> Result<TypedSubscriber<T>, BusError> {
    declare(session, key_expr, drops, None).await
}

/// Subscribes to a swarm-level key such as `swarm/<s>/leader`, whose messages name their
/// sender themselves.
pub async fn subscribe_swarm_level<T: Decode>(
    session: &Session,
    key_expr: String,
    drops: DropCounters,
    sender: fn(&T) -> NodeId,
) -> Result<TypedSubscriber<T>, BusError> {
    declare(session, key_expr, drops, Some(sender)).await
}

async fn declare<T: Decode>(
    session: &Session,
    key_expr: String,
    drops: DropCounters,
    sender_in_payload: Option<fn(&T) -> NodeId>,
) -> Result<TypedSubscriber<T>, BusError> {
    let inner = session
        .declare_subscriber(key_expr.clone())
        .await
        .map_err(|e| BusError::new(format!("subscribing to {key_expr}"), e))?;
    Ok(TypedSubscriber {
        inner,
        drops,
        sender_in_payload,
        _msg: PhantomData,
    })
}

impl<T: Decode> TypedSubscriber<T> {
    /// The next well-formed message; `None` once the session is closed.
    pub async fn recv(&self) -> Option<Received<T>> {
        loop {
            let sample = self.inner.recv_async().await.ok()?;
            if sample.kind() == SampleKind::Delete {
                continue;
            }
            if let Some(received) = self.accept(&sample) {
                return Some(received);
            }
        }
    }

    fn accept(&self, sample: &Sample) -> Option<Received<T>> {
        let key = sample.key_expr().as_str();
        let from_key = match (key.parse::<SwarmKey>(), self.sender_in_payload) {
            (Ok(_), Some(_)) => None,
            (Ok(k), None) if k.node_id().is_some() => k.node_id().cloned(),
            _ => {
                let n = self.drops.count_bad_key();
                if worth_logging(n) {
                    tracing::warn!(
                        key,
                        reason = "bad_key",
                        count = n,
                        "dropped {}: key names no valid node",
                        T::NAME
                    );
                }
                return None;
            }
        };
        match T::decode_from(&sample.payload().to_bytes()) {
            Ok(msg) => {
                let from = match (from_key, self.sender_in_payload) {
                    (Some(id), _) => id,
                    (None, Some(sender)) => sender(&msg),
                    (None, None) => return None,
                };
                self.drops.count_accepted();
                Some(Received {
                    key: key.to_string(),
                    from,
                    msg,
                })
            }
            Err(err) => {
                let n = self.drops.count_decode(&err);
                if worth_logging(n) {
                    tracing::warn!(
                        key,
                        reason = err.kind(),
                        count = n,
                        "dropped {}: {err}",
                        T::NAME
                    );
                }
                None
            }
        }
    }
}
