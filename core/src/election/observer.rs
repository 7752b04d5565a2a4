//! An outside view of an election from heartbeats alone (every node announces a change of role,
//! term or leader with an immediate heartbeat): who each node follows, whether they agree, and
//! any term with two leaders. Used by `swarm-node watch` and `swarm-node bench failover`.

use super::{SafetyChecker, SplitBrain};
use alloc::collections::BTreeMap;
use swarm_bus::{Heartbeat, NodeId, Role};

#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Nothing,
    /// The first heartbeat of a leader in this term.
    NewLeader {
        term: u64,
        leader: NodeId,
    },
    SplitBrain(SplitBrain),
}

#[derive(Debug, Clone, PartialEq)]
struct Latest {
    role: Role,
    term: u64,
    leader: Option<NodeId>,
}

#[derive(Debug, Default)]
pub struct ElectionObserver {
    latest: BTreeMap<NodeId, Latest>,
    checker: SafetyChecker,
}

impl ElectionObserver {
    pub fn heartbeat(&mut self, from: &NodeId, hb: &Heartbeat) -> Seen {
        self.latest.insert(
            from.clone(),
            Latest {
                role: hb.role,
                term: hb.term,
                leader: hb.leader_of(from).cloned(),
            },
        );
        if hb.role != Role::Leader {
            return Seen::Nothing;
        }
        let new = self.checker.leader_of(hb.term).is_none();
        match self.checker.observe(hb.term, from) {
            Some(v) => Seen::SplitBrain(v),
            None if new => Seen::NewLeader {
                term: hb.term,
                leader: from.clone(),
            },
            None => Seen::Nothing,
        }
    }

    /// Stops counting a node that is down, so its last word does not hold agreement back.
    pub fn forget(&mut self, id: &NodeId) {
        self.latest.remove(id);
    }

    /// The leader and term all of `members` follow, once the leader itself has said it leads.
    pub fn agreed<'a>(
        &self,
        members: impl IntoIterator<Item = &'a NodeId>,
    ) -> Option<(NodeId, u64)> {
        let mut agreed: Option<(&NodeId, u64)> = None;
        for id in members {
            let l = self.latest.get(id)?;
            let claim = (l.leader.as_ref()?, l.term);
            if agreed.is_some_and(|a| a != claim) {
                return None;
            }
            agreed = Some(claim);
        }
        let (leader, term) = agreed?;
        let own = self.latest.get(leader)?;
        (own.role == Role::Leader && own.term == term).then(|| (leader.clone(), term))
    }

    pub fn split_brains(&self) -> &[SplitBrain] {
        self.checker.violations()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::DeviceClass;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn hb(role: Role, term: u64, leader: &str) -> Heartbeat {
        Heartbeat {
            term,
            role,
            leader: Some(id(leader)),
            seq: 1,
            cadence_ms: 500,
            class: DeviceClass::Full,
            voters: None,
            at_ms: None,
        }
    }

    #[test]
    fn agreement_new_leaders_and_split_brains_from_heartbeats() {
        let mut o = ElectionObserver::default();
        let members = [id("a"), id("b")];
        assert_eq!(
            o.heartbeat(&id("b"), &hb(Role::Follower, 1, "a")),
            Seen::Nothing
        );
        assert_eq!(o.agreed(&members), None, "a has not spoken");
        assert_eq!(
            o.heartbeat(&id("a"), &hb(Role::Leader, 1, "a")),
            Seen::NewLeader {
                term: 1,
                leader: id("a")
            }
        );
        assert_eq!(o.agreed(&members), Some((id("a"), 1)));
        assert_eq!(
            o.heartbeat(&id("a"), &hb(Role::Leader, 1, "a")),
            Seen::Nothing
        );
        assert!(matches!(
            o.heartbeat(&id("b"), &hb(Role::Leader, 1, "b")),
            Seen::SplitBrain(_)
        ));
        assert_eq!(o.agreed(&members), None);
        assert_eq!(o.split_brains().len(), 1);
        o.forget(&id("b"));
        assert_eq!(o.agreed(&[id("a")]), Some((id("a"), 1)));
    }
}
