//! Key expressions: the only place where they are spelled out.
//!
//! ```text
//! swarm/<s>/node/<id>            liveliness token
//! swarm/<s>/node/<id>/<leaf>     heartbeat vote energy state status cmd leave worker tasks ballot
//! swarm/<s>/node/<id>/vote/<c>   a vote reply from <id> to candidate <c>
//! swarm/<s>/leader               LeaderInfo queryable
//! swarm/<s>/energy               SwarmEnergy: the leader's sum, published and queryable
//! swarm/<s>/proposal             Proposal query the leader answers with a Decision
//! swarm/<s>/task/<id>/<leaf>     submit spec assign state result cancel
//! ```
//! MQTT topics are the same strings; the bridge maps `*`/`**` to `+`/`#`.

use crate::names::{NameError, NodeId, SwarmName, TaskId};
use alloc::format;
use alloc::string::{String, ToString};

pub const ROOT: &str = "swarm";

wire_key_words! {
    /// The last chunk of a node's key. `replay` carries a board's energy readings sent late,
    /// with the time they were taken: MQTT only, the bridge puts them on the board's `energy`
    /// key, marked as replayed. `ota` carries an update down to a board (an offer, then
    /// chunks); `firmware` its report back up.
    pub enum Leaf {
        Heartbeat => "heartbeat",
        Vote => "vote",
        Energy => "energy",
        State => "state",
        Status => "status",
        Cmd => "cmd",
        Leave => "leave",
        Worker => "worker",
        Tasks => "tasks",
        Ballot => "ballot",
        Replay => "replay",
        Ota => "ota",
        Firmware => "firmware",
    }
}

wire_key_words! {
    /// The last chunk of a task's key.
    pub enum TaskLeaf {
        Submit => "submit",
        Spec => "spec",
        Assign => "assign",
        State => "state",
        Result => "result",
        Cancel => "cancel",
    }
}

/// Builds every key of one swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmKeys {
    swarm: SwarmName,
}

impl SwarmKeys {
    pub fn new(swarm: SwarmName) -> Self {
        Self { swarm }
    }

    pub fn swarm(&self) -> &SwarmName {
        &self.swarm
    }

    /// The node's liveliness token.
    pub fn node(&self, id: &NodeId) -> String {
        format!("{ROOT}/{}/node/{id}", self.swarm)
    }

    pub fn node_leaf(&self, id: &NodeId, leaf: Leaf) -> String {
        format!("{ROOT}/{}/node/{id}/{}", self.swarm, leaf.as_str())
    }

    pub fn heartbeat(&self, id: &NodeId) -> String {
        self.node_leaf(id, Leaf::Heartbeat)
    }

    pub fn energy(&self, id: &NodeId) -> String {
        self.node_leaf(id, Leaf::Energy)
    }

    pub fn state(&self, id: &NodeId) -> String {
        self.node_leaf(id, Leaf::State)
    }

    pub fn leader(&self) -> String {
        format!("{ROOT}/{}/leader", self.swarm)
    }

    /// Where proposals go: the leader calls the vote and answers with the decision.
    pub fn proposal(&self) -> String {
        format!("{ROOT}/{}/proposal", self.swarm)
    }

    /// The swarm's energy total, published and answered by its leader.
    pub fn swarm_energy(&self) -> String {
        format!("{ROOT}/{}/energy", self.swarm)
    }

    /// `voter`'s reply to `candidate`: under the voter's own key (only it writes there), and
    /// named for the candidate, so nobody else has to receive it.
    pub fn vote_reply(&self, voter: &NodeId, candidate: &NodeId) -> String {
        format!("{}/{candidate}", self.node_leaf(voter, Leaf::Vote))
    }

    /// Every voter's reply to `candidate`: `swarm/<s>/node/*/vote/<candidate>`.
    pub fn vote_replies_to(&self, candidate: &NodeId) -> String {
        format!("{}/{candidate}", self.all(Leaf::Vote))
    }

    pub fn task(&self, id: &TaskId, leaf: TaskLeaf) -> String {
        format!("{ROOT}/{}/task/{id}/{}", self.swarm, leaf.as_str())
    }

    /// One leaf of every task, e.g. `swarm/<s>/task/*/assign`.
    pub fn all_tasks(&self, leaf: TaskLeaf) -> String {
        format!("{ROOT}/{}/task/*/{}", self.swarm, leaf.as_str())
    }

    /// MQTT only: where everything for Home Assistant but its discovery configs lies.
    pub fn ha_root(&self) -> String {
        format!("{ROOT}/{}/ha", self.swarm)
    }

    /// MQTT only, for Home Assistant: a member's sensor values as one JSON object. Outside
    /// `node/**`, so the bridge never carries it into zenoh.
    pub fn ha_state(&self, id: &NodeId) -> String {
        format!("{}/{id}/state", self.ha_root())
    }

    /// MQTT only: `online`/`offline` for a member, retained, from its liveliness token.
    pub fn ha_availability(&self, id: &NodeId) -> String {
        format!("{}/{id}/availability", self.ha_root())
    }

    /// MQTT filter for every member's Home Assistant availability: a gateway that restarts
    /// reads back what its earlier run retained there.
    pub fn ha_availability_filter(&self) -> String {
        format!("{}/+/availability", self.ha_root())
    }

    /// The member whose Home Assistant availability `topic` is; `None` for any other topic,
    /// the gateway's own among them.
    pub fn ha_availability_of(&self, topic: &str) -> Option<NodeId> {
        let root = self.ha_root();
        let id = topic
            .strip_prefix(root.as_str())?
            .strip_prefix('/')?
            .strip_suffix("/availability")?;
        NodeId::new(id).ok()
    }

    /// MQTT only: whether the bridge that announces the swarm is up (its Last-Will says
    /// `offline`). `_gateway` cannot be a node id, which starts with a letter or digit.
    pub fn ha_gateway_availability(&self) -> String {
        format!("{}/_gateway/availability", self.ha_root())
    }

    /// Every node's liveliness token: `swarm/<s>/node/*`.
    pub fn all_nodes(&self) -> String {
        format!("{ROOT}/{}/node/*", self.swarm)
    }

    /// Every leaf of every node: `swarm/<s>/node/*/*`.
    pub fn all_leaves(&self) -> String {
        format!("{ROOT}/{}/node/*/*", self.swarm)
    }

    /// Everything under the swarm's nodes: `swarm/<s>/node/**` (the bridge's default scope).
    pub fn node_subtree(&self) -> String {
        format!("{ROOT}/{}/node/**", self.swarm)
    }

    /// One leaf of every node, e.g. `swarm/<s>/node/*/heartbeat`.
    pub fn all(&self, leaf: Leaf) -> String {
        format!("{ROOT}/{}/node/*/{}", self.swarm, leaf.as_str())
    }
}

/// The queries every node answers for the whole network, not only for itself: a querier linked
/// to one node of the swarm gets every member's answer from it (docs/protocol.md#first-answer).
/// Wider than one swarm on purpose, so `swarm/**/energy` is among the queries they cover.
pub fn relayed() -> [String; 3] {
    [
        format!("{ROOT}/**/{}", Leaf::Energy.as_str()),
        format!("{ROOT}/**/{}", Leaf::State.as_str()),
        format!("{ROOT}/**/leader"),
    ]
}

/// The selector parameter that marks a query a node passes on for someone else: nodes answer it
/// for themselves only, so a relayed query is never relayed again.
pub const RELAYED_PARAMETER: &str = "relayed";

/// A parsed concrete key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmKey {
    Node {
        swarm: SwarmName,
        id: NodeId,
    },
    NodeLeaf {
        swarm: SwarmName,
        id: NodeId,
        leaf: Leaf,
    },
    /// A vote reply from `id` to `candidate`.
    VoteReply {
        swarm: SwarmName,
        id: NodeId,
        candidate: NodeId,
    },
    Leader {
        swarm: SwarmName,
    },
    SwarmEnergy {
        swarm: SwarmName,
    },
    Proposal {
        swarm: SwarmName,
    },
    Task {
        swarm: SwarmName,
        id: TaskId,
        leaf: TaskLeaf,
    },
}

impl SwarmKey {
    pub fn swarm(&self) -> &SwarmName {
        match self {
            SwarmKey::Node { swarm, .. }
            | SwarmKey::NodeLeaf { swarm, .. }
            | SwarmKey::VoteReply { swarm, .. }
            | SwarmKey::Leader { swarm }
            | SwarmKey::SwarmEnergy { swarm }
            | SwarmKey::Proposal { swarm }
            | SwarmKey::Task { swarm, .. } => swarm,
        }
    }

    /// The node a concrete key belongs to, when it is a well-formed node key.
    pub fn node_of(key: &str) -> Option<NodeId> {
        key.parse::<SwarmKey>().ok()?.node_id().cloned()
    }

    /// The node a key belongs to, if it is a node key.
    pub fn node_id(&self) -> Option<&NodeId> {
        match self {
            SwarmKey::Node { id, .. }
            | SwarmKey::NodeLeaf { id, .. }
            | SwarmKey::VoteReply { id, .. } => Some(id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key `{key}` does not start with `{ROOT}/`")]
    NotSwarm { key: String },
    #[error("key `{key}`: {source}")]
    BadName { key: String, source: NameError },
    #[error("key `{key}` has unknown last chunk `{leaf}`; allowed: {allowed}")]
    UnknownLeaf {
        key: String,
        leaf: String,
        allowed: &'static str,
    },
    #[error("key `{key}` does not match any swarm key (see the key table in bus/src/keys.rs)")]
    Shape { key: String },
}

impl core::str::FromStr for SwarmKey {
    type Err = KeyError;

    fn from_str(key: &str) -> Result<Self, KeyError> {
        let mut parts = key.split('/');
        if parts.next() != Some(ROOT) {
            return Err(KeyError::NotSwarm { key: key.into() });
        }
        let bad_name = |source| KeyError::BadName {
            key: key.into(),
            source,
        };
        let shape = || KeyError::Shape { key: key.into() };
        let swarm = SwarmName::new(parts.next().ok_or_else(shape)?).map_err(bad_name)?;
        let rest: alloc::vec::Vec<&str> = parts.collect();
        match rest.as_slice() {
            ["leader"] => Ok(SwarmKey::Leader { swarm }),
            ["energy"] => Ok(SwarmKey::SwarmEnergy { swarm }),
            ["proposal"] => Ok(SwarmKey::Proposal { swarm }),
            ["node", id] => Ok(SwarmKey::Node {
                swarm,
                id: NodeId::new(*id).map_err(bad_name)?,
            }),
            ["node", id, leaf] => Ok(SwarmKey::NodeLeaf {
                swarm,
                id: NodeId::new(*id).map_err(bad_name)?,
                leaf: Leaf::parse(leaf).ok_or_else(|| KeyError::UnknownLeaf {
                    key: key.into(),
                    leaf: leaf.to_string(),
                    allowed: Leaf::NAMES,
                })?,
            }),
            ["node", id, "vote", candidate] => Ok(SwarmKey::VoteReply {
                swarm,
                id: NodeId::new(*id).map_err(bad_name)?,
                candidate: NodeId::new(*candidate).map_err(bad_name)?,
            }),
            ["task", id, leaf] => Ok(SwarmKey::Task {
                swarm,
                id: TaskId::new(*id).map_err(bad_name)?,
                leaf: TaskLeaf::parse(leaf).ok_or_else(|| KeyError::UnknownLeaf {
                    key: key.into(),
                    leaf: leaf.to_string(),
                    allowed: TaskLeaf::NAMES,
                })?,
            }),
            _ => Err(shape()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SwarmKeys {
        SwarmKeys::new(SwarmName::new("lab").unwrap())
    }

    #[test]
    fn home_assistant_availability_topics_name_their_member() {
        let k = keys();
        let id = NodeId::new("esp-0").unwrap();
        assert_eq!(k.ha_availability_of(&k.ha_availability(&id)), Some(id));
        assert_eq!(k.ha_availability_filter(), "swarm/lab/ha/+/availability");
        for other in [
            k.ha_gateway_availability(),
            "swarm/other/ha/esp-0/availability".into(),
            "swarm/lab/ha/esp-0/state".into(),
            "swarm/lab/ha/a/b/availability".into(),
            "swarm/lab/ha//availability".into(),
            "swarm/lab/ha/Esp/availability".into(),
        ] {
            assert_eq!(k.ha_availability_of(&other), None, "{other}");
        }
    }

    #[test]
    fn every_built_key_parses_back() {
        let id = NodeId::new("pi-1").unwrap();
        let k = keys();
        assert_eq!(k.node(&id), "swarm/lab/node/pi-1");
        assert_eq!(k.heartbeat(&id), "swarm/lab/node/pi-1/heartbeat");
        assert_eq!(k.leader(), "swarm/lab/leader");
        for leaf in Leaf::ALL {
            let key = k.node_leaf(&id, *leaf);
            let parsed: SwarmKey = key.parse().unwrap();
            assert_eq!(
                parsed,
                SwarmKey::NodeLeaf {
                    swarm: k.swarm().clone(),
                    id: id.clone(),
                    leaf: *leaf
                }
            );
        }
        let candidate = NodeId::new("pi-2").unwrap();
        assert_eq!(
            k.vote_reply(&id, &candidate).parse::<SwarmKey>().unwrap(),
            SwarmKey::VoteReply {
                swarm: k.swarm().clone(),
                id: id.clone(),
                candidate: candidate.clone()
            }
        );
        assert_eq!(k.vote_replies_to(&candidate), "swarm/lab/node/*/vote/pi-2");
        let task = TaskId::new("t1").unwrap();
        for leaf in TaskLeaf::ALL {
            let parsed: SwarmKey = k.task(&task, *leaf).parse().unwrap();
            assert!(matches!(parsed, SwarmKey::Task { .. }));
        }
        assert!(matches!(
            k.leader().parse::<SwarmKey>(),
            Ok(SwarmKey::Leader { .. })
        ));
        assert_eq!(k.swarm_energy(), "swarm/lab/energy");
        assert_eq!(
            k.swarm_energy().parse::<SwarmKey>(),
            Ok(SwarmKey::SwarmEnergy {
                swarm: k.swarm().clone()
            })
        );
        assert_eq!(
            k.node(&id).parse::<SwarmKey>().unwrap().node_id(),
            Some(&id)
        );
    }

    #[test]
    fn bad_keys_say_what_is_wrong() {
        assert!(matches!(
            "mesh/lab/leader".parse::<SwarmKey>(),
            Err(KeyError::NotSwarm { .. })
        ));
        assert!(matches!(
            "swarm/Lab/leader".parse::<SwarmKey>(),
            Err(KeyError::BadName { .. })
        ));
        assert!(matches!(
            "swarm/lab/node/*/energy".parse::<SwarmKey>(),
            Err(KeyError::BadName { .. })
        ));
        let err = "swarm/lab/node/a/power".parse::<SwarmKey>().unwrap_err();
        assert!(err.to_string().contains("heartbeat"), "{err}");
        assert!(matches!(
            "swarm/lab/node/a/energy/x".parse::<SwarmKey>(),
            Err(KeyError::Shape { .. })
        ));
        assert!(matches!(
            "swarm".parse::<SwarmKey>(),
            Err(KeyError::Shape { .. })
        ));
    }
}
