//! Swarm-wide decisions: a proposed command every voter votes on, applied on every node once a
//! majority of the voters said yes. Sans-IO: how a node votes, and how the leader counts.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use swarm_bus::{CadenceMode, CommandOp, NodeId, UNPIN_MODE};

/// What this node knows when it votes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Local {
    /// Battery charge when on battery; `None` on mains.
    pub battery_pct: Option<u8>,
    /// Below this a node on battery refuses what would drain it.
    pub low_battery_pct: u8,
}

/// A node's vote on a proposed command: yes, or no with the reason.
pub fn vote_on(op: CommandOp, arg: u32, local: Local) -> Result<(), String> {
    match op {
        CommandOp::SetMode => {
            if arg == UNPIN_MODE {
                return Ok(());
            }
            let Some(mode) = u8::try_from(arg).ok().and_then(CadenceMode::from_u8) else {
                return Err(format!("{arg} is no cadence mode"));
            };
            match local.battery_pct {
                Some(pct) if pct < local.low_battery_pct && mode == CadenceMode::Aggressive => Err(
                    format!("on battery at {pct}%: an aggressive cadence would drain it"),
                ),
                _ => Ok(()),
            }
        }
        other => Err(format!("`{other}` is for one node, not the swarm")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected,
    /// Not yet: too few votes either way.
    Open,
}

/// The leader's count. Only voters count, each once; anyone else's vote is noted as ignored.
#[derive(Debug, Clone)]
pub struct Tally {
    voters: BTreeSet<NodeId>,
    pub yes: BTreeSet<NodeId>,
    pub no: BTreeSet<NodeId>,
    pub ignored: BTreeSet<NodeId>,
}

impl Tally {
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Self {
            voters: voters.into_iter().collect(),
            yes: BTreeSet::new(),
            no: BTreeSet::new(),
            ignored: BTreeSet::new(),
        }
    }

    pub fn voters(&self) -> usize {
        self.voters.len()
    }

    /// Votes needed: a majority of the voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    pub fn vote(&mut self, from: NodeId, yes: bool) {
        if !self.voters.contains(&from) {
            self.ignored.insert(from);
            return;
        }
        if self.yes.contains(&from) || self.no.contains(&from) {
            return;
        }
        if yes {
            self.yes.insert(from);
        } else {
            self.no.insert(from);
        }
    }

    /// Accepted once a majority said yes; rejected once a majority can no longer say yes.
    pub fn verdict(&self) -> Verdict {
        if self.yes.len() >= self.quorum() {
            Verdict::Accepted
        } else if self.voters.len() - self.no.len() < self.quorum() {
            Verdict::Rejected
        } else {
            Verdict::Open
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
    fn a_majority_of_voters_decides_and_outsiders_do_not_count() {
        let mut t = Tally::new(["a", "b", "c", "d", "e"].map(id));
        assert_eq!(t.quorum(), 3);
        t.vote(id("a"), true);
        t.vote(id("a"), true);
        t.vote(id("x"), true);
        t.vote(id("y"), true);
        assert_eq!(
            t.verdict(),
            Verdict::Open,
            "a twice and two outsiders are one vote"
        );
        assert_eq!(t.ignored.len(), 2);
        t.vote(id("b"), true);
        t.vote(id("c"), false);
        assert_eq!(t.verdict(), Verdict::Open);
        t.vote(id("d"), true);
        assert_eq!(t.verdict(), Verdict::Accepted);

        let mut t = Tally::new(["a", "b", "c"].map(id));
        t.vote(id("a"), false);
        assert_eq!(t.verdict(), Verdict::Open);
        t.vote(id("b"), false);
        assert_eq!(t.verdict(), Verdict::Rejected, "2 of 3 said no");
    }

    #[test]
    fn a_node_low_on_battery_refuses_an_aggressive_cadence_only() {
        let low = Local {
            battery_pct: Some(10),
            low_battery_pct: 20,
        };
        let mains = Local {
            battery_pct: None,
            ..low
        };
        let aggressive = CadenceMode::Aggressive as u32;
        let conservative = CadenceMode::Conservative as u32;
        assert!(vote_on(CommandOp::SetMode, aggressive, low).is_err());
        assert!(vote_on(CommandOp::SetMode, aggressive, mains).is_ok());
        assert!(vote_on(CommandOp::SetMode, conservative, low).is_ok());
        assert!(vote_on(CommandOp::SetMode, UNPIN_MODE, low).is_ok());
        assert!(vote_on(CommandOp::SetMode, 77, mains).is_err());
        assert!(vote_on(CommandOp::Reboot, 0, mains).is_err());
    }
}
