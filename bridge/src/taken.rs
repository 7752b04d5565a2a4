//! Ids a device may not take: those whose liveliness token this bridge did not declare — the
//! nodes (the gateway itself among them) and other bridges' devices. Without logins nothing
//! proves who an MQTT client is, and a client naming itself after a node would otherwise get a
//! second token under the node's name (which hides the node's crash) and speak in its name.

use crate::mesh::lock;
use crate::table::DeviceTable;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use swarm_bus::zenoh::BusError;
use swarm_bus::{NodeId, SwarmKey, SwarmKeys};
use zenoh::Session;
use zenoh::pubsub::Subscriber;
use zenoh::sample::SampleKind;

/// Bounded like the device table: a flood of tokens cannot grow it past `max`.
#[derive(Debug)]
pub struct TakenIds {
    ids: BTreeSet<NodeId>,
    max: usize,
}

impl TakenIds {
    pub fn new(max: usize) -> Self {
        Self {
            ids: BTreeSet::new(),
            max,
        }
    }

    /// A token appeared; `ours` when this bridge declared it for a device of its own.
    pub fn appeared(&mut self, id: NodeId, ours: bool) {
        if !ours && self.ids.len() < self.max {
            self.ids.insert(id);
        }
    }

    pub fn gone(&mut self, id: &NodeId) {
        self.ids.remove(id);
    }

    pub fn contains(&self, id: &NodeId) -> bool {
        self.ids.contains(id)
    }
}

/// Keeps the table's taken ids in step with the swarm's tokens, starting with those alive now.
/// A token is this bridge's own when the table has that device online as it appears (the
/// table is updated before the token is declared).
pub async fn watch(
    session: &Session,
    keys: &SwarmKeys,
    table: Arc<Mutex<DeviceTable>>,
) -> Result<Subscriber<()>, BusError> {
    let key = keys.all_nodes();
    session
        .liveliness()
        .declare_subscriber(key.clone())
        .history(true)
        .callback(move |sample| {
            let Some(id) = SwarmKey::node_of(sample.key_expr().as_str()) else {
                return;
            };
            match sample.kind() {
                SampleKind::Put => {
                    let mut table = lock(&table);
                    let ours = table.get(&id).is_some_and(|r| r.online);
                    table.taken.appeared(id, ours);
                }
                SampleKind::Delete => lock(&table).taken.gone(&id),
            }
        })
        .await
        .map_err(|e| BusError {
            context: format!("watching the swarm's tokens on {key}"),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn nodes_tokens_are_taken_the_bridges_own_are_not_and_the_set_is_bounded() {
        let mut t = TakenIds::new(2);
        t.appeared(id("n1"), false);
        t.appeared(id("esp-1"), true);
        assert!(t.contains(&id("n1")));
        assert!(!t.contains(&id("esp-1")));
        t.appeared(id("n2"), false);
        t.appeared(id("n3"), false);
        assert!(!t.contains(&id("n3")), "bounded");
        t.gone(&id("n1"));
        assert!(!t.contains(&id("n1")));
    }
}
