//! Which heartbeats this node subscribes to. In a small swarm, and on the leader, every
//! member's; a follower of a large swarm only its leader's, and one that knows no leader none
//! (the leader's announcements on `swarm/<s>/leader` tell it who won). Zenoh then does not
//! even send a follower the heartbeats it has no use for (docs/protocol.md#scale).

use swarm_bus::zenoh::{self as bus, BusError, DropCounters, Received, TypedSubscriber};
use swarm_bus::{Heartbeat, Leaf, NodeId, SwarmKeys};
use zenoh::Session;

/// The heartbeats a node wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    Everyone,
    Leader(NodeId),
    Nobody,
}

impl Want {
    pub fn from(hears_everyone: bool, leader: Option<&NodeId>, me: &NodeId) -> Self {
        match leader {
            _ if hears_everyone => Want::Everyone,
            Some(l) if l != me => Want::Leader(l.clone()),
            _ => Want::Nobody,
        }
    }
}

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

    /// The next heartbeat; never, while subscribed to none.
    pub async fn recv(&self) -> Option<Received<Heartbeat>> {
        super::recv::next_of(&self.sub).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn a_follower_of_a_large_swarm_wants_its_leader_only() {
        let me = id("me");
        assert_eq!(Want::from(true, Some(&id("l")), &me), Want::Everyone);
        assert_eq!(Want::from(true, None, &me), Want::Everyone);
        assert_eq!(
            Want::from(false, Some(&id("l")), &me),
            Want::Leader(id("l"))
        );
        assert_eq!(Want::from(false, None, &me), Want::Nobody);
        assert_eq!(Want::from(false, Some(&me), &me), Want::Nobody);
    }
}
