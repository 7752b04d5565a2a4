//! Typed publishing: CBOR payloads with Encoding `application/cbor`.

use super::BusError;
use crate::codec::encode;
use crate::messages::{Heartbeat, LeaderInfo, Leave, VoteReply, VoteRequest};
use crate::wire::WireMessage;
use std::marker::PhantomData;
use zenoh::Session;
use zenoh::bytes::Encoding;
use zenoh::qos::CongestionControl;

/// A declared publisher for one key and one message type.
pub struct TypedPublisher<T> {
    inner: zenoh::pubsub::Publisher<'static>,
    _msg: PhantomData<fn(&T)>,
}

impl<T: WireMessage> TypedPublisher<T> {
    /// `block` = never drop under congestion (telemetry that must arrive); otherwise a periodic
    /// message such as a heartbeat is dropped rather than queued, since the next one supersedes it.
    pub async fn declare(session: &Session, key: String, block: bool) -> Result<Self, BusError> {
        let congestion = if block {
            CongestionControl::Block
        } else {
            CongestionControl::Drop
        };
        let inner = session
            .declare_publisher(key.clone())
            .encoding(Encoding::APPLICATION_CBOR)
            .congestion_control(congestion)
            .express(express::<T>())
            .await
            .map_err(|e| BusError::new(format!("declaring publisher on {key}"), e))?;
        Ok(Self {
            inner,
            _msg: PhantomData,
        })
    }

    pub async fn put(&self, msg: &T) -> Result<(), BusError> {
        self.inner.put(encode(msg)).await.map_err(|e| {
            BusError::new(
                format!("publishing {} on {}", T::NAME, self.inner.key_expr()),
                e,
            )
        })
    }
}

/// One-off publication (e.g. `Leave`, a `Command`).
pub async fn publish<T: WireMessage>(
    session: &Session,
    key: &str,
    msg: &T,
) -> Result<(), BusError> {
    put(session, key, msg, CongestionControl::Block).await
}

/// One-off publication dropped rather than queued under congestion: a message whose loss
/// costs a retry (a vote reply), sent from a loop that must not stall behind a frozen peer.
pub async fn publish_droppable<T: WireMessage>(
    session: &Session,
    key: &str,
    msg: &T,
) -> Result<(), BusError> {
    put(session, key, msg, CongestionControl::Drop).await
}

async fn put<T: WireMessage>(
    session: &Session,
    key: &str,
    msg: &T,
    congestion: CongestionControl,
) -> Result<(), BusError> {
    session
        .put(key, encode(msg))
        .encoding(Encoding::APPLICATION_CBOR)
        .congestion_control(congestion)
        .express(express::<T>())
        .await
        .map_err(|e| BusError::new(format!("publishing {} on {key}", T::NAME), e))
}

/// Election traffic leaves at once instead of waiting in zenoh's batch for company: a
/// failover is a chain of such messages (Leave, pre-vote, vote, the new leader's heartbeat),
/// and every hop's wait adds up. Telemetry and tasks keep batching, which floods need.
fn express<T: WireMessage>() -> bool {
    [
        Heartbeat::TAG,
        VoteRequest::TAG,
        VoteReply::TAG,
        LeaderInfo::TAG,
        Leave::TAG,
    ]
    .contains(&T::TAG)
}
