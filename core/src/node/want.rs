//! Which heartbeats this node wants. In a small swarm, and on the leader, every member's; a
//! follower of a large swarm only its leader's, and one that knows no leader none (the
//! leader's announcements tell it who won). The adapter subscribes accordingly, so zenoh does
//! not even send a follower the heartbeats it has no use for (docs/protocol.md#scale).

use swarm_bus::NodeId;

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
