//! Asking the swarm: one query, every answer decoded or its fault reported.

use super::BusError;
use super::relay::relayed_selector;
use crate::codec::{DecodeError, decode, encode};
use crate::wire::WireMessage;
use std::time::Duration;
use zenoh::Session;
use zenoh::bytes::Encoding;
use zenoh::query::{ConsolidationMode, QueryTarget};

/// One reply: the key it came on and the message, or why it could not be read.
#[derive(Debug)]
pub struct QueryReply<T> {
    pub key: String,
    pub msg: Result<T, ReplyFault>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplyFault {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("replied with an error: {0}")]
    Remote(String),
}

/// Queries `key_expr?format=cbor` on every matching queryable and waits up to `timeout`.
pub async fn query_cbor<T: WireMessage>(
    session: &Session,
    key_expr: &str,
    timeout: Duration,
) -> Result<Vec<QueryReply<T>>, BusError> {
    query(session, key_expr, None, timeout).await
}

/// Queries `key_expr` with `msg` as the query's payload; every answer (CBOR) within `timeout`.
pub async fn ask_with<Q: WireMessage, R: WireMessage>(
    session: &Session,
    key_expr: &str,
    msg: &Q,
    timeout: Duration,
) -> Result<Vec<QueryReply<R>>, BusError> {
    query(session, key_expr, Some(encode(msg)), timeout).await
}

async fn query<T: WireMessage>(
    session: &Session,
    key_expr: &str,
    payload: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Vec<QueryReply<T>>, BusError> {
    // Marked as relayed: every node answers for itself, none passes it on (relay.rs).
    let selector = relayed_selector(key_expr, "format=cbor");
    let mut get = session
        .get(selector.as_str())
        .target(QueryTarget::All)
        .consolidation(ConsolidationMode::None)
        .timeout(timeout);
    if let Some(bytes) = payload {
        get = get.payload(bytes).encoding(Encoding::APPLICATION_CBOR);
    }
    let replies = get
        .await
        .map_err(|e| BusError::new(format!("querying {selector}"), e))?;
    let mut out = Vec::new();
    while let Ok(reply) = replies.recv_async().await {
        out.push(match reply.result() {
            Ok(sample) => QueryReply {
                key: sample.key_expr().as_str().to_string(),
                msg: decode::<T>(&sample.payload().to_bytes()).map_err(ReplyFault::from),
            },
            Err(err) => QueryReply {
                key: String::new(),
                msg: Err(ReplyFault::Remote(
                    String::from_utf8_lossy(&err.payload().to_bytes()).into_owned(),
                )),
            },
        });
    }
    Ok(out)
}
