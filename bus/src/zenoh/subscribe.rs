//! Typed subscribing: bad samples are counted and logged, and the stream goes on.
//!
//! Samples reach the reader through a bounded queue filled by a callback that never waits: a
//! loop that publishes on keys it also subscribes to (a leader's own energy sample matches its
//! `node/*/energy` subscription) would otherwise block its own put on the queue it drains
//! itself. A sample that finds the queue full is dropped and counted as `overflow`.

use super::drops::worth_logging;
use super::{BusError, DropCounters};
use crate::codec::Decode;
use crate::keys::SwarmKey;
use crate::names::NodeId;
use std::marker::PhantomData;
use zenoh::Session;
use zenoh::pubsub::Subscriber;
use zenoh::sample::{Sample, SampleKind};

/// The attachment of a sample sent late (a board's reading replayed after an outage), put at
/// the time it was taken: history for storages and for whoever asks, but not a current value.
pub const REPLAYED: &str = "replayed";

/// The sample is a reading sent late (`REPLAYED`).
pub fn is_replayed(sample: &Sample) -> bool {
    sample
        .attachment()
        .is_some_and(|a| *a.to_bytes() == *REPLAYED.as_bytes())
}

/// A decoded message and the node whose key it came on.
#[derive(Debug, Clone, PartialEq)]
pub struct Received<T> {
    pub key: String,
    pub from: NodeId,
    pub msg: T,
}

/// Samples a subscriber holds before it drops new ones: zenoh's default FIFO depth times four,
/// a few hundred KiB at most.
pub const QUEUE_DEPTH: usize = 1024;

pub struct TypedSubscriber<T> {
    _inner: Subscriber<()>,
    samples: flume::Receiver<Sample>,
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
    declare(session, key_expr, drops, None, None).await
}

/// Which sample keys a reader takes; called in zenoh's callback, so it must not wait.
pub type Admit = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Like `subscribe`, but a sample whose key `admit` turns down is dropped in zenoh's callback,
/// before it is queued or decoded: for a reader that wants few of the samples a flood brings.
/// `admit` counts what it turns down.
pub async fn subscribe_admitting<T: Decode>(
    session: &Session,
    key_expr: String,
    drops: DropCounters,
    admit: Admit,
) -> Result<TypedSubscriber<T>, BusError> {
    declare(session, key_expr, drops, None, Some(admit)).await
}

/// Subscribes to a swarm-level key such as `swarm/<s>/leader`, whose messages name their
/// sender themselves.
pub async fn subscribe_swarm_level<T: Decode>(
    session: &Session,
    key_expr: String,
    drops: DropCounters,
    sender: fn(&T) -> NodeId,
) -> Result<TypedSubscriber<T>, BusError> {
    declare(session, key_expr, drops, Some(sender), None).await
}

async fn declare<T: Decode>(
    session: &Session,
    key_expr: String,
    drops: DropCounters,
    sender_in_payload: Option<fn(&T) -> NodeId>,
    admit: Option<Admit>,
) -> Result<TypedSubscriber<T>, BusError> {
    let (tx, samples) = flume::bounded(QUEUE_DEPTH);
    let overflow = drops.clone();
    let inner = session
        .declare_subscriber(key_expr.clone())
        .callback(move |sample| {
            if let Some(admit) = &admit
                && !admit(sample.key_expr().as_str())
            {
                return;
            }
            if let Err(flume::TrySendError::Full(sample)) = tx.try_send(sample) {
                let n = overflow.count_overflow();
                if worth_logging(n) {
                    tracing::warn!(
                        key = sample.key_expr().as_str(),
                        reason = "overflow",
                        count = n,
                        "dropped {}: the reader is {QUEUE_DEPTH} samples behind",
                        T::NAME
                    );
                }
            }
        })
        .await
        .map_err(|e| BusError::new(format!("subscribing to {key_expr}"), e))?;
    Ok(TypedSubscriber {
        _inner: inner,
        samples,
        drops,
        sender_in_payload,
        _msg: PhantomData,
    })
}

impl<T: Decode> TypedSubscriber<T> {
    /// The next well-formed current message; `None` once the session is closed. Readings
    /// sent late (`is_replayed`) are history and are passed over: they would set a member's
    /// current value back.
    pub async fn recv(&self) -> Option<Received<T>> {
        loop {
            let sample = self.samples.recv_async().await.ok()?;
            if sample.kind() == SampleKind::Delete || is_replayed(&sample) {
                continue;
            }
            if let Some(received) = self.accept(&sample) {
                return Some(received);
            }
        }
    }

    /// The next well-formed message, current or sent late (`true`): for a reader that puts
    /// late readings where their times belong instead of taking them as current.
    pub async fn recv_marked(&self) -> Option<(Received<T>, bool)> {
        loop {
            let sample = self.samples.recv_async().await.ok()?;
            if sample.kind() == SampleKind::Delete {
                continue;
            }
            if let Some(received) = self.accept(&sample) {
                return Some((received, is_replayed(&sample)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SwarmKeys;
    use crate::messages::Energy;
    use crate::names::SwarmName;
    use crate::zenoh::{TypedPublisher, ZenohSettings};
    use std::time::Duration;

    async fn observer() -> Session {
        let settings = ZenohSettings {
            multicast_scouting: false,
            ..ZenohSettings::default()
        };
        crate::zenoh::open_observer(&settings)
            .await
            .expect("session")
    }

    /// The node's main loop publishes its own energy sample on a key it subscribes to, while it
    /// is busy elsewhere: its puts must never wait on the queue it would drain itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_falls_behind_its_own_puts_drops_instead_of_blocking_them() {
        let session = observer().await;
        let keys = SwarmKeys::new(SwarmName::new("selfblock").expect("name"));
        let me = NodeId::new("n0").expect("id");
        let drops = DropCounters::default();
        let sub: TypedSubscriber<Energy> =
            subscribe(&session, keys.all(crate::keys::Leaf::Energy), drops.clone())
                .await
                .expect("subscribe");
        let publisher = TypedPublisher::declare(&session, keys.energy(&me), true)
            .await
            .expect("publisher");
        let sent = QUEUE_DEPTH + 500;
        let sample = crate::samples::energy();
        // Spawned, so that puts stuck in a blocking callback hold a worker, not the test.
        let puts = tokio::spawn(async move {
            for _ in 0..sent {
                publisher.put(&sample).await.expect("put");
            }
        });
        tokio::time::timeout(Duration::from_secs(20), puts)
            .await
            .expect("puts blocked on the subscriber's own queue")
            .expect("puts");
        let sample = crate::samples::energy();
        let overflow = drops
            .snapshot()
            .iter()
            .find(|(r, _)| *r == "overflow")
            .map(|(_, n)| *n);
        assert_eq!(overflow, Some((sent - QUEUE_DEPTH) as u64));
        for _ in 0..QUEUE_DEPTH {
            let got = tokio::time::timeout(Duration::from_secs(5), sub.recv())
                .await
                .expect("a queued sample")
                .expect("session open");
            assert_eq!(got.from, me);
            assert_eq!(got.msg, sample);
        }
        assert_eq!(drops.accepted(), QUEUE_DEPTH as u64);
        session.close().await.expect("close");
    }

    /// Samples whose key the reader turns down never reach its queue, so they can neither be
    /// read nor push out the ones it wants.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn samples_turned_down_by_key_are_never_queued() {
        let session = observer().await;
        let keys = SwarmKeys::new(SwarmName::new("admitting").expect("name"));
        let (wanted, stranger) = (
            NodeId::new("member").expect("id"),
            NodeId::new("stranger").expect("id"),
        );
        let wanted_key = keys.energy(&wanted);
        let turned_down = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = turned_down.clone();
        let admit: Admit = Box::new(move |key| {
            let take = key == wanted_key;
            if !take {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            take
        });
        let drops = DropCounters::default();
        let sub: TypedSubscriber<Energy> = subscribe_admitting(
            &session,
            keys.all(crate::keys::Leaf::Energy),
            drops.clone(),
            admit,
        )
        .await
        .expect("subscribe");
        let from_stranger = TypedPublisher::declare(&session, keys.energy(&stranger), true)
            .await
            .expect("publisher");
        let from_member = TypedPublisher::declare(&session, keys.energy(&wanted), true)
            .await
            .expect("publisher");
        let sample = crate::samples::energy();
        // More than the queue holds: had they been queued, the member's sample would overflow.
        for _ in 0..QUEUE_DEPTH + 10 {
            from_stranger.put(&sample).await.expect("put");
        }
        from_member.put(&sample).await.expect("put");
        let got = tokio::time::timeout(Duration::from_secs(5), sub.recv())
            .await
            .expect("the member's sample")
            .expect("session open");
        assert_eq!(got.from, wanted);
        assert_eq!(
            turned_down.load(std::sync::atomic::Ordering::Relaxed),
            QUEUE_DEPTH + 10
        );
        assert_eq!(drops.accepted(), 1);
        assert!(
            drops.snapshot().iter().all(|(_, n)| *n == 0),
            "{:?}",
            drops.snapshot()
        );
        session.close().await.expect("close");
    }
}
