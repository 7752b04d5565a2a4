//! A leader's clean stop hands over: after its `Leave` it keeps its links until the swarm has
//! a new leader, so that its own teardown (closing every link and subscription, which its
//! peers must process too) does not compete with their election for the CPU.

use super::heartbeat_feed::HeartbeatFeed;
use std::time::Duration;
use swarm_bus::zenoh::TypedSubscriber;
use swarm_bus::{LeaderInfo, NodeId, Role};

/// Longer than a failover takes after a `Leave` (milliseconds; one fast retry included), short
/// enough not to be felt in `systemctl stop`.
pub const HANDOFF_TIMEOUT: Duration = Duration::from_millis(300);

/// Returns once another node says it leads in a term after `term`: in its heartbeat or, in a
/// large swarm whose heartbeats this node does not hear, its announcement. `false` on timeout.
pub async fn successor_heard(
    heartbeats: &HeartbeatFeed,
    announcements: &TypedSubscriber<LeaderInfo>,
    me: &NodeId,
    term: u64,
) -> bool {
    let successor = async {
        loop {
            let (from, role, their_term) = tokio::select! {
                Some(r) = heartbeats.recv() => (r.from, r.msg.role, r.msg.term),
                Some(r) = announcements.recv() => (r.from, r.msg.role, r.msg.term),
                else => return false,
            };
            if from != *me && role == Role::Leader && their_term > term {
                return true;
            }
        }
    };
    tokio::time::timeout(HANDOFF_TIMEOUT, successor)
        .await
        .unwrap_or(false)
}
