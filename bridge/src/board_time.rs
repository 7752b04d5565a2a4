//! The gateway's time for boards with no clock of their own (docs/bridge.md#time): at the
//! start of a Unix second the bridge puts `Command { op: Time, arg: that second }` on the `cmd`
//! key of each board that came online since, and of every online board once a `RESYNC`; the
//! command goes down to MQTT like any other. Sent at the start of the second, the second is
//! the whole message: a board's error is the delivery time, a few ms on a LAN.

use crate::mesh::lock;
use crate::table::DeviceTable;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use swarm_bus::zenoh as bus;
use swarm_bus::{Command, CommandOp, Leaf, NodeId, SwarmKeys};
use zenoh::Session;

/// How often an online board hears the time again: it keeps time on its own between, and each
/// word tells it how far it drifted.
pub const RESYNC: Duration = Duration::from_secs(60);

/// Which boards to send the time to in second `now_s`; `sent` remembers when each last got it
/// and forgets the boards no longer online (bounded by the device table).
pub fn due(
    now_s: u64,
    online: &[NodeId],
    sent: &mut BTreeMap<NodeId, u64>,
    resync: Duration,
) -> Vec<NodeId> {
    sent.retain(|id, _| online.contains(id));
    let every = resync.as_secs().max(1);
    let mut out = Vec::new();
    for id in online {
        let fresh = sent
            .get(id)
            .is_some_and(|at| now_s.saturating_sub(*at) < every);
        if !fresh {
            sent.insert(id.clone(), now_s);
            out.push(id.clone());
        }
    }
    out
}

/// Sends the time each second it is due, until dropped. `peripherals` (serial, I2C) keep time
/// by the bridge's own clock and get none.
pub fn start(
    session: Session,
    keys: SwarmKeys,
    table: Arc<Mutex<DeviceTable>>,
    peripherals: Vec<NodeId>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sent = BTreeMap::new();
        loop {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let to_next = Duration::from_secs(1)
                .saturating_sub(Duration::from_nanos(u64::from(now.subsec_nanos())));
            tokio::time::sleep(to_next).await;
            let second = now.as_secs() + 1;
            let Ok(arg) = u32::try_from(second) else {
                tracing::warn!("the clock is past 2106; boards get no time");
                return;
            };
            // A sleeping board hears the time as it wakes, not a held stale word.
            let online: Vec<NodeId> = lock(&table)
                .awake()
                .filter(|id| !peripherals.contains(id))
                .cloned()
                .collect();
            for id in due(second, &online, &mut sent, RESYNC) {
                let cmd = Command {
                    op: CommandOp::Time,
                    arg,
                };
                let key = keys.node_leaf(&id, Leaf::Cmd);
                if let Err(e) = bus::publish(&session, &key, &cmd).await {
                    tracing::debug!(device = %id, "sending the time: {e}");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn a_board_hears_the_time_when_it_comes_online_and_then_once_a_minute() {
        let mut sent = BTreeMap::new();
        let minute = Duration::from_secs(60);
        assert_eq!(due(100, &[id("a")], &mut sent, minute), [id("a")]);
        assert!(due(101, &[id("a")], &mut sent, minute).is_empty());
        // b comes online: only b hears it now.
        assert_eq!(due(130, &[id("a"), id("b")], &mut sent, minute), [id("b")]);
        assert_eq!(due(160, &[id("a"), id("b")], &mut sent, minute), [id("a")]);
        // a goes offline and comes back: it hears the time at once, not a minute later.
        assert!(due(161, &[id("b")], &mut sent, minute).is_empty());
        assert_eq!(due(162, &[id("a"), id("b")], &mut sent, minute), [id("a")]);
        assert_eq!(sent.len(), 2, "only online boards are remembered");
    }
}
