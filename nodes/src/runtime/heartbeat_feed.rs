//! Which heartbeats this node subscribes to. In a small swarm, and on the leader, every
//! member's; a follower of a large swarm only its leader's, and one that knows no leader none
//! (the leader's announcements on `swarm/<s>/leader` tell it who won). Zenoh then does not
//! even send a follower the heartbeats it has no use for (docs/protocol.md#scale).

use swarm_bus::zenoh::{self as bus, BusError, DropCounters, Received, TypedSubscriber};
use swarm_bus::{Heartbeat, Leaf, SwarmKeys};
pub use swarm_node::node::Want;
use zenoh::Session;

pub struct HeartbeatFeed {
    want: Want,
    sub: Option<TypedSubscriber<Heartbeat>>,
    drops: DropCounters,
}

impl HeartbeatFeed {
    pub async fn new(
        session: &Session,
        keys: &SwarmKeys,
        drops: DropCounters,
    ) -> Result<Self, BusError> {
        let mut feed = Self {
            want: Want::Nobody,
            sub: None,
            drops,
        };
        feed.follow(session, keys, Want::Everyone).await?;
        Ok(feed)
    }

    /// Subscribes to what `want` names, if that changed. The new subscription is declared
    /// before the old one goes, so no heartbeat falls between them.
    pub async fn follow(
        &mut self,
        session: &Session,
        keys: &SwarmKeys,
        want: Want,
    ) -> Result<(), BusError> {
        if want == self.want && (self.sub.is_some() || want == Want::Nobody) {
            return Ok(());
        }
        let key = match &want {
            Want::Everyone => Some(keys.all(Leaf::Heartbeat)),
            Want::Leader(id) => Some(keys.heartbeat(id)),
            Want::Nobody => None,
        };
        let sub = match key {
            Some(k) => Some(bus::subscribe::<Heartbeat>(session, k, self.drops.clone()).await?),
            None => None,
        };
        tracing::info!(?want, "heartbeats subscribed to");
        self.sub = sub;
        self.want = want;
        Ok(())
    }

    /// Declares the subscription to `want` anew, the old one dropped first: zenoh sends a
    /// declaration for a key only while none stands for it, and one that an unreliable link
    /// lost is never resent. Heartbeats in between are missed; this node already hears none.
    pub async fn refollow(
        &mut self,
        session: &Session,
        keys: &SwarmKeys,
        want: Want,
    ) -> Result<(), BusError> {
        self.sub = None;
        self.want = Want::Nobody;
        self.follow(session, keys, want).await
    }

    /// The next heartbeat; never, while subscribed to none.
    pub async fn recv(&self) -> Option<Received<Heartbeat>> {
        super::recv::next_of(&self.sub).await
    }
}
