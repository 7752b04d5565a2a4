//! Answers for the whole network on a querier's first try (docs/protocol.md#first-answer).
//!
//! A zenoh peer that has just linked to one node (zenoh-cli's default) reaches only that node
//! until its own links to the others come up: peers do not forward a peer's query. So each node
//! declares a *complete* queryable on the leaves a user asks about (`keys::relayed`); zenoh sends
//! a default (`BestMatching`) query to one complete queryable only, the nearest, and that node
//! asks the whole network on the querier's behalf and passes every reply on under its own key.
//! One relay per query keeps the cost flat: N answers and N empty finals for N members.
//!
//! The relayed query carries `RELAYED_PARAMETER`; relays leave it to the members' own
//! queryables, so it never travels further. Our own tools query every queryable directly
//! (`QueryTarget::All`) with the same mark.

use super::{BusError, DropCounters, Refused};
use crate::codec::DecodeError;
use crate::keys::{RELAYED_PARAMETER, relayed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use zenoh::Session;
use zenoh::Wait;
use zenoh::query::{ConsolidationMode, Query, QueryTarget, Queryable};
use zenoh::sample::Locality;

/// Queries waiting for a relay slot; more are refused at once (a flood of queries must not
/// turn into a flood of fan-outs).
const QUEUE: usize = 64;
/// Fan-outs in flight at once.
const IN_FLIGHT: usize = 16;
/// The relayed leaves are asked without a payload; a relay passes on at most this much, so a
/// querier cannot make one node send a large payload to every member.
pub const MAX_RELAYED_PAYLOAD: usize = 1024;

/// Keeps the relay's queryables declared and its worker running while alive.
pub struct Relay {
    _queryables: Vec<Queryable<()>>,
    worker: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        // The worker holds a clone of the session; it must not outlive the relay.
        self.worker.abort();
    }
}

/// Whether a query was already passed on by a node (or comes from our own tools).
pub fn is_relayed(query: &Query) -> bool {
    query.parameters().get(RELAYED_PARAMETER).is_some()
}

/// The selector a relay asks with: the querier's own, marked as relayed.
pub fn relayed_selector(key_expr: &str, parameters: &str) -> String {
    if parameters.is_empty() {
        format!("{key_expr}?{RELAYED_PARAMETER}=1")
    } else {
        format!("{key_expr}?{parameters};{RELAYED_PARAMETER}=1")
    }
}

/// Declares the relay's queryables; each fan-out waits up to `timeout` for the members.
/// Queries refused because the relay is full are counted as `Refused::Busy`.
pub async fn relay(
    session: &Session,
    drops: DropCounters,
    timeout: Duration,
) -> Result<Relay, BusError> {
    let (tx, rx) = flume::bounded::<Query>(QUEUE);
    let mut queryables = Vec::new();
    for key in relayed() {
        let (tx, drops) = (tx.clone(), drops.clone());
        let queryable = session
            .declare_queryable(key.clone())
            .complete(true)
            .callback(move |query: Query| {
                if is_relayed(&query) {
                    // Dropping it sends the final reply: a member answers for itself only.
                    return;
                }
                if query
                    .payload()
                    .is_some_and(|p| p.len() > MAX_RELAYED_PAYLOAD)
                {
                    drops.count_decode(&DecodeError::Malformed {
                        expected: "query to relay",
                        detail: format!("payload over {MAX_RELAYED_PAYLOAD} bytes"),
                    });
                    if let Err(e) = query.reply_err("payload too large to relay").wait() {
                        tracing::debug!("refusing a relayed query failed: {e}");
                    }
                    return;
                }
                if let Err(flume::TrySendError::Full(query)) = tx.try_send(query) {
                    drops.count_refused(Refused::Busy);
                    if let Err(e) = query.reply_err("busy: too many queries at once").wait() {
                        tracing::debug!("refusing a relayed query failed: {e}");
                    }
                }
            })
            .await
            .map_err(|e| BusError::new(format!("declaring the relay on {key}"), e))?;
        queryables.push(queryable);
    }
    let worker = tokio::spawn(serve(session.clone(), rx, timeout));
    Ok(Relay {
        _queryables: queryables,
        worker,
    })
}

async fn serve(session: Session, queries: flume::Receiver<Query>, timeout: Duration) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    // A slot first: a query is taken off the queue only when it can go out, so the queue's
    // bound is the whole of what waits.
    while let Ok(slot) = slots.clone().acquire_owned().await {
        let Ok(query) = queries.recv_async().await else {
            return;
        };
        let session = session.clone();
        tokio::spawn(async move {
            if let Err(e) = fan_out(&session, &query, timeout).await {
                tracing::debug!(key = %query.key_expr(), "relaying a query failed: {e}");
            }
            drop(slot);
        });
    }
}

/// Asks every queryable on the network, passes each reply on as it comes; the querier's query
/// ends (its final reply) when `query` is dropped after the last one.
async fn fan_out(session: &Session, query: &Query, timeout: Duration) -> Result<(), BusError> {
    let selector = relayed_selector(query.key_expr().as_str(), query.parameters().as_str());
    let mut get = session
        .get(selector.as_str())
        .target(QueryTarget::All)
        .consolidation(ConsolidationMode::None)
        // zenoh hands a query to every matching queryable of the session it reaches, so this
        // node's own queryables have answered the querier already.
        .allowed_destination(Locality::Remote)
        .timeout(timeout);
    if let Some(payload) = query.payload() {
        get = get.payload(payload.clone());
    }
    if let Some(encoding) = query.encoding() {
        get = get.encoding(encoding.clone());
    }
    let replies = get
        .await
        .map_err(|e| BusError::new(format!("relaying {selector}"), e))?;
    while let Ok(reply) = replies.recv_async().await {
        let passed = match reply.result() {
            Ok(sample) => {
                query
                    .reply(sample.key_expr().clone(), sample.payload().clone())
                    .encoding(sample.encoding().clone())
                    .await
            }
            Err(err) => {
                query
                    .reply_err(err.payload().clone())
                    .encoding(err.encoding().clone())
                    .await
            }
        };
        if let Err(e) = passed {
            return Err(BusError::new(
                format!("passing on a reply to {selector}"),
                e,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_joins_the_queriers_own_parameters() {
        assert_eq!(
            relayed_selector("swarm/**/energy", ""),
            "swarm/**/energy?relayed=1"
        );
        assert_eq!(
            relayed_selector("swarm/s/leader", "format=cbor"),
            "swarm/s/leader?format=cbor;relayed=1"
        );
    }
}
