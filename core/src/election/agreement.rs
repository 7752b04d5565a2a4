//! Reading the swarm's answers to "who leads?" (`swarm/<s>/leader`) from outside.

use swarm_bus::{LeaderInfo, NodeId, Role};

/// The leader and term that every answer names, provided the leader is among the answers and
/// itself says it leads; `None` while any answer differs (an election under way).
pub fn agreed_leader<'a>(
    answers: impl IntoIterator<Item = &'a LeaderInfo>,
) -> Option<(NodeId, u64)> {
    let mut agreed: Option<(&NodeId, u64)> = None;
    let mut leader_confirms = false;
    for a in answers {
        if a.role == Role::Observer {
            continue;
        }
        let claim = (a.leader.as_ref()?, a.term);
        if agreed.is_some_and(|seen| seen != claim) {
            return None;
        }
        agreed = Some(claim);
        leader_confirms |= a.role == Role::Leader && &a.node == claim.0;
    }
    let (leader, term) = agreed?;
    leader_confirms.then(|| (leader.clone(), term))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(node: &str, role: Role, term: u64, leader: Option<&str>) -> LeaderInfo {
        LeaderInfo {
            node: NodeId::new(node).unwrap(),
            role,
            term,
            leader: leader.map(|l| NodeId::new(l).unwrap()),
            since_ms: None,
            voters: None,
            heir: None,
        }
    }

    #[test]
    fn agreement_needs_one_leader_one_term_and_the_leader_itself() {
        let a = answer("a", Role::Leader, 2, Some("a"));
        let b = answer("b", Role::Follower, 2, Some("a"));
        let esp = answer("esp", Role::Observer, 0, None);
        let leader = Some((NodeId::new("a").unwrap(), 2));
        assert_eq!(agreed_leader([&a, &b, &esp]), leader);
        assert_eq!(agreed_leader([&b]), None, "the leader has not answered");
        let stale = answer("c", Role::Follower, 1, Some("a"));
        assert_eq!(agreed_leader([&a, &b, &stale]), None);
        let lost = answer("c", Role::Candidate, 3, None);
        assert_eq!(agreed_leader([&a, &b, &lost]), None);
        assert_eq!(agreed_leader([]), None);
    }
}
