//! The runtime's side of admission: asks the sans-IO rules about each message, and counts and
//! logs (sparingly) every refusal, so each call site is one line.

use swarm_bus::zenoh::{DropCounters, Received, Refused, worth_logging};
use swarm_bus::{Energy, Heartbeat, LeaderInfo, NodeId, Vote};
use swarm_node::admission::Admission;

pub struct Gate {
    rules: Admission,
    drops: DropCounters,
}

impl Gate {
    pub fn new(rules: Admission, drops: DropCounters) -> Self {
        Self { rules, drops }
    }

    fn judge(&self, verdict: Result<(), Refused>, from: &NodeId, what: &'static str) -> bool {
        let Err(why) = verdict else {
            return true;
        };
        let n = self.drops.count_refused(why);
        if worth_logging(n) {
            tracing::warn!(peer = %from, reason = %why, count = n, "refused a {what}");
        }
        false
    }

    /// A token appeared; true for a member not known before.
    pub fn token_appeared(&mut self, id: &NodeId) -> bool {
        match self.rules.token_appeared(id) {
            Ok(new) => new,
            Err(why) => {
                self.judge(Err(why), id, "liveliness token");
                false
            }
        }
    }

    pub fn token_gone(&mut self, id: &NodeId) {
        self.rules.token_gone(id);
    }

    pub fn is_member(&self, id: &NodeId) -> bool {
        self.rules.is_member(id)
    }

    pub fn own_term(&mut self, term: u64) {
        self.rules.own_term(term);
    }

    pub fn heartbeat(&mut self, r: &Received<Heartbeat>) -> bool {
        let verdict = self.rules.heartbeat(&r.from, &r.msg);
        self.judge(verdict, &r.from, "heartbeat")
    }

    pub fn vote(&mut self, r: &Received<Vote>) -> bool {
        let verdict = self.rules.vote(&r.from, &r.msg);
        self.judge(verdict, &r.from, "vote")
    }

    pub fn leave(&mut self, from: &NodeId, term: u64) -> bool {
        let verdict = self.rules.leave(from, term);
        self.judge(verdict, from, "leave")
    }

    pub fn leader_info(&mut self, info: &LeaderInfo) -> bool {
        let verdict = self.rules.leader_info(info);
        self.judge(verdict, &info.node, "leader announcement")
    }

    pub fn energy(&self, from: &NodeId, _sample: &Energy) -> bool {
        self.judge(self.rules.report(from), from, "energy sample")
    }
}
