//! Records every (term, leader) claim seen and reports any term with two leaders.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use swarm_bus::NodeId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitBrain {
    pub term: u64,
    pub leaders: (NodeId, NodeId),
}

#[derive(Debug, Default)]
pub struct SafetyChecker {
    leaders: BTreeMap<u64, NodeId>,
    violations: Vec<SplitBrain>,
}

impl SafetyChecker {
    /// `node` claims to lead in `term`; returns the violation if another node already did.
    pub fn observe(&mut self, term: u64, node: &NodeId) -> Option<SplitBrain> {
        match self.leaders.get(&term) {
            None => {
                self.leaders.insert(term, node.clone());
                None
            }
            Some(first) if first == node => None,
            Some(first) => {
                let v = SplitBrain {
                    term,
                    leaders: (first.clone(), node.clone()),
                };
                self.violations.push(v.clone());
                Some(v)
            }
        }
    }

    pub fn violations(&self) -> &[SplitBrain] {
        &self.violations
    }

    pub fn leader_of(&self, term: u64) -> Option<&NodeId> {
        self.leaders.get(&term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_two_leaders_in_one_term_only() {
        let (a, b) = (NodeId::new("a").unwrap(), NodeId::new("b").unwrap());
        let mut c = SafetyChecker::default();
        assert_eq!(c.observe(1, &a), None);
        assert_eq!(c.observe(1, &a), None);
        assert_eq!(c.observe(2, &b), None);
        let v = c.observe(1, &b).unwrap();
        assert_eq!(v.leaders, (a, b));
        assert_eq!(c.violations().len(), 1);
    }
}
