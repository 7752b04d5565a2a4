//! Task keys (`swarm/<s>/task/<id>/<leaf>`) name a task, not a node: their own subscriber,
//! a queryable whose queries are held until the answer is known (a leader replies "accepted"
//! only once a majority stored the task), and queries that carry a message.

use super::drops::worth_logging;
use super::queryable::ReplyFormat;
use super::relay::relayed_selector;
use super::{BusError, DropCounters};
use crate::codec::{Decode, decode, encode};
use crate::json::to_json;
use crate::keys::{SwarmKey, TaskLeaf};
use crate::names::TaskId;
use crate::wire::WireMessage;
use std::marker::PhantomData;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use zenoh::Session;
use zenoh::bytes::Encoding;
use zenoh::key_expr::KeyExpr;
use zenoh::pubsub::Subscriber;
use zenoh::query::{ConsolidationMode, Query, QueryTarget, Queryable};
use zenoh::sample::Locality;
use zenoh::sample::{Sample, SampleKind};

/// A decoded message and the task whose key it came on.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskReceived<T> {
    pub id: TaskId,
    pub msg: T,
}

/// Samples reach the caller through an unbounded channel fed by a callback: a loop that also
/// publishes on these keys receives its own messages, and a bounded channel could then block
/// its own publication on itself.
pub struct TaskSubscriber<T> {
    _inner: Subscriber<()>,
    samples: UnboundedReceiver<Sample>,
    drops: DropCounters,
    _msg: PhantomData<fn() -> T>,
}

/// Subscribes to one leaf of every task, e.g. `swarm/<s>/task/*/assign`.
pub async fn subscribe_tasks<T: Decode>(
    session: &Session,
    key_expr: String,
    drops: DropCounters,
) -> Result<TaskSubscriber<T>, BusError> {
    let (tx, samples) = unbounded_channel();
    let inner = session
        .declare_subscriber(key_expr.clone())
        .callback(move |s| {
            let _ = tx.send(s);
        })
        .await
        .map_err(|e| BusError::new(format!("subscribing to {key_expr}"), e))?;
    Ok(TaskSubscriber {
        _inner: inner,
        samples,
        drops,
        _msg: PhantomData,
    })
}

impl<T: Decode> TaskSubscriber<T> {
    /// The next well-formed message; `None` once the session is closed. Cancel-safe.
    pub async fn recv(&mut self) -> Option<TaskReceived<T>> {
        loop {
            let sample = self.samples.recv().await?;
            if sample.kind() == SampleKind::Delete {
                continue;
            }
            let key = sample.key_expr().as_str();
            let Some((id, _)) = task_of(key) else {
                let n = self.drops.count_bad_key();
                if worth_logging(n) {
                    tracing::warn!(key, count = n, "dropped {}: key names no task", T::NAME);
                }
                continue;
            };
            match T::decode_from(&sample.payload().to_bytes()) {
                Ok(msg) => {
                    self.drops.count_accepted();
                    return Some(TaskReceived { id, msg });
                }
                Err(e) => {
                    let n = self.drops.count_decode(&e);
                    if worth_logging(n) {
                        tracing::warn!(key, count = n, "dropped {}: {e}", T::NAME);
                    }
                }
            }
        }
    }
}

/// The task and leaf a concrete key names.
pub fn task_of(key: &str) -> Option<(TaskId, TaskLeaf)> {
    match key.parse::<SwarmKey>().ok()? {
        SwarmKey::Task { id, leaf, .. } => Some((id, leaf)),
        _ => None,
    }
}

/// A query held until its answer is known (on a task key, or any other). Dropping it ends
/// the query for the asker.
pub struct HeldQuery<T> {
    /// The task a concrete key names; `None` for a wildcard such as `task/*/result`.
    pub id: Option<TaskId>,
    /// What the query carried, when it carried a well-formed `T`.
    pub msg: Option<T>,
    format: ReplyFormat,
    query: Query,
}

impl<T> HeldQuery<T> {
    /// Whether the query asks about `key` (a wildcard query asks about many).
    pub fn asks_for(&self, key: &str) -> bool {
        match KeyExpr::try_from(key) {
            Ok(k) => self.query.key_expr().intersects(&k),
            Err(_) => false,
        }
    }

    /// One answer on `key`, in the format the asker wanted; a query may get many.
    pub async fn reply<R: WireMessage>(&self, key: &str, msg: &R) {
        let (bytes, encoding) = match self.format {
            ReplyFormat::Cbor => (encode(msg), Encoding::APPLICATION_CBOR),
            ReplyFormat::Json => (
                to_json(msg, None).to_string().into_bytes(),
                Encoding::APPLICATION_JSON,
            ),
        };
        if let Err(e) = self.query.reply(key, bytes).encoding(encoding).await {
            tracing::debug!(key, "task query reply failed: {e}");
        }
    }

    pub async fn reply_err(&self, reason: &str) {
        if let Err(e) = self.query.reply_err(reason.to_string()).await {
            tracing::debug!("task query error reply failed: {e}");
        }
    }
}

/// Queries reach the caller through an unbounded channel, for the same reason as
/// [`TaskSubscriber`]'s samples.
pub struct HeldQueryable<T> {
    _inner: Queryable<()>,
    queries: UnboundedReceiver<Query>,
    drops: DropCounters,
    _msg: PhantomData<fn() -> T>,
}

/// Takes queries on `key_expr` (one leaf of every task, or a node's own key) for the caller
/// to answer when it can.
pub async fn serve_held<T: Decode>(
    session: &Session,
    key_expr: String,
    drops: DropCounters,
) -> Result<HeldQueryable<T>, BusError> {
    let (tx, queries) = unbounded_channel();
    let inner = session
        .declare_queryable(key_expr.clone())
        .callback(move |q| {
            let _ = tx.send(q);
        })
        .await
        .map_err(|e| BusError::new(format!("declaring queryable on {key_expr}"), e))?;
    Ok(HeldQueryable {
        _inner: inner,
        queries,
        drops,
        _msg: PhantomData,
    })
}

impl<T: Decode> HeldQueryable<T> {
    /// The next query; `None` once the session is closed. A query whose format parameter is
    /// unknown is answered with the reason and not passed on. Cancel-safe.
    pub async fn recv(&mut self) -> Option<HeldQuery<T>> {
        loop {
            let query = self.queries.recv().await?;
            let format = match ReplyFormat::from_parameter(query.parameters().get("format")) {
                Ok(f) => f,
                Err(reason) => {
                    let _ = query.reply_err(reason).await;
                    continue;
                }
            };
            let id = task_of(query.key_expr().as_str()).map(|(id, _)| id);
            let msg = match query.payload().map(|p| T::decode_from(&p.to_bytes())) {
                None => None,
                Some(Ok(msg)) => {
                    self.drops.count_accepted();
                    Some(msg)
                }
                Some(Err(e)) => {
                    let n = self.drops.count_decode(&e);
                    if worth_logging(n) {
                        tracing::warn!(key = %query.key_expr(), count = n, "dropped query {}: {e}", T::NAME);
                    }
                    let _ = query
                        .reply_err(format!("unreadable {}: {e}", T::NAME))
                        .await;
                    continue;
                }
            };
            return Some(HeldQuery {
                id,
                msg,
                format,
                query,
            });
        }
    }
}

/// Like [`ask_with`], but hands each answer over as it comes, so a leader waiting for a
/// majority of acknowledgements stops waiting at the majority, not at the timeout. Only other
/// sessions are asked: the asker has answered itself already.
pub async fn ask_until<Q: WireMessage, R: WireMessage>(
    session: &Session,
    key: &str,
    msg: &Q,
    timeout: Duration,
    mut enough: impl FnMut(&R) -> bool,
) -> Result<bool, BusError> {
    let selector = relayed_selector(key, "format=cbor");
    // Answers after "enough" are dropped here quietly; zenoh's own channel would log each
    // one it could no longer deliver as an error.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    session
        .get(selector.as_str())
        .payload(encode(msg))
        .encoding(Encoding::APPLICATION_CBOR)
        .target(QueryTarget::All)
        .consolidation(ConsolidationMode::None)
        .allowed_destination(Locality::Remote)
        .timeout(timeout)
        .callback(move |reply| {
            let _ = tx.send(reply);
        })
        .await
        .map_err(|e| BusError::new(format!("querying {selector}"), e))?;
    while let Some(reply) = rx.recv().await {
        if let Ok(sample) = reply.result()
            && let Ok(r) = decode::<R>(&sample.payload().to_bytes())
            && enough(&r)
        {
            return Ok(true);
        }
    }
    Ok(false)
}
