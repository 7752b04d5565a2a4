//! Asking the swarm: one query, every answer decoded or its fault reported.

use super::BusError;
use crate::codec::{DecodeError, decode};
use crate::wire::WireMessage;
use std::time::Duration;
use zenoh::Session;
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
    let selector = format!("{key_expr}?format=cbor");
    let replies = session
        .get(selector.as_str())
        .target(QueryTarget::All)
        .consolidation(ConsolidationMode::None)
        .timeout(timeout)
        .await
        .map_err(|e| BusError::new(format!("querying {selector}"), e))?;
    let mut out = Vec::new();
    while let Ok(reply) = replies.recv_async().await {
        match reply.result() {
            Ok(sample) => out.push(QueryReply {
                key: sample.key_expr().as_str().to_string(),
                msg: decode::<T>(&sample.payload().to_bytes()).map_err(ReplyFault::from),
            }),
            Err(err) => out.push(QueryReply {
                key: String::new(),
                msg: Err(ReplyFault::Remote(
                    String::from_utf8_lossy(&err.payload().to_bytes()).into_owned(),
                )),
            }),
        }
    }
    Ok(out)
}
