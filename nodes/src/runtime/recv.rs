//! Receiving from subscriptions that come in pairs or may be absent.

use swarm_bus::Vote;
use swarm_bus::zenoh::{Received, TypedSubscriber};

/// The next message of either subscription.
pub async fn first_of(
    a: &TypedSubscriber<Vote>,
    b: &TypedSubscriber<Vote>,
) -> Option<Received<Vote>> {
    tokio::select! {
        Some(r) = a.recv() => Some(r),
        Some(r) = b.recv() => Some(r),
        else => None,
    }
}

/// The next message of a subscription this node may not hold; never, when it holds none.
pub async fn next_of<T: swarm_bus::codec::Decode>(
    sub: &Option<TypedSubscriber<T>>,
) -> Option<Received<T>> {
    match sub {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
