//! Which of the workers able to take a task gets it.

use alloc::vec::Vec;
use swarm_bus::NodeId;

/// How the leader picks a worker among those with the capability and a free slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// In turn, by node id.
    RoundRobin,
    /// The one with the smallest share of its slots in use, then the lowest CPU load.
    #[default]
    LeastLoaded,
    /// The most specialised: the fewest capabilities, so generalists stay free.
    Capability,
    /// Mains power before battery, then the most efficient (work per joule); a node on
    /// battery below the low threshold only when nobody else can.
    EnergyAware,
}

/// What the scheduler knows of a candidate worker.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub id: &'a NodeId,
    pub running: u32,
    pub slots: u32,
    pub cpu_load: f32,
    pub capabilities: usize,
    pub on_battery: bool,
    pub battery_low: bool,
    pub eff_pct: Option<u8>,
}

impl Strategy {
    /// The chosen one among `candidates` (all eligible); `last` is the previous pick, for
    /// round-robin.
    pub fn pick<'a>(
        self,
        candidates: &[Candidate<'a>],
        last: Option<&NodeId>,
    ) -> Option<&'a NodeId> {
        match self {
            Strategy::RoundRobin => round_robin(candidates, last).first().copied(),
            _ => candidates
                .iter()
                .min_by(|a, b| self.order(a, b))
                .map(|c| c.id),
        }
    }

    /// Every candidate, best first: the workers for a task run on several, by the same rule
    /// as [`pick`](Self::pick).
    pub fn rank<'a>(self, candidates: &[Candidate<'a>], last: Option<&NodeId>) -> Vec<&'a NodeId> {
        match self {
            Strategy::RoundRobin => round_robin(candidates, last),
            _ => {
                let mut order: Vec<&Candidate<'a>> = candidates.iter().collect();
                order.sort_by(|a, b| self.order(a, b));
                order.into_iter().map(|c| c.id).collect()
            }
        }
    }

    /// Which of two candidates goes first; ids break ties, so the order is total.
    fn order(self, a: &Candidate, b: &Candidate) -> core::cmp::Ordering {
        let share = |c: &Candidate| c.running as f32 / c.slots.max(1) as f32;
        let by = |a: f32, b: f32| a.total_cmp(&b);
        match self {
            Strategy::RoundRobin => a.id.cmp(b.id),
            Strategy::LeastLoaded => by(share(a), share(b))
                .then(by(a.cpu_load, b.cpu_load))
                .then(a.id.cmp(b.id)),
            Strategy::Capability => a
                .capabilities
                .cmp(&b.capabilities)
                .then(by(share(a), share(b)))
                .then(a.id.cmp(b.id)),
            Strategy::EnergyAware => a
                .battery_low
                .cmp(&b.battery_low)
                .then(a.on_battery.cmp(&b.on_battery))
                .then(b.eff_pct.unwrap_or(0).cmp(&a.eff_pct.unwrap_or(0)))
                .then(by(share(a), share(b)))
                .then(a.id.cmp(b.id)),
        }
    }
}

/// By node id, starting after the previous pick and wrapping.
fn round_robin<'a>(candidates: &[Candidate<'a>], last: Option<&NodeId>) -> Vec<&'a NodeId> {
    let mut ids: Vec<&NodeId> = candidates.iter().map(|c| c.id).collect();
    ids.sort();
    let after = last.and_then(|l| ids.iter().position(|id| *id > l));
    ids.rotate_left(after.unwrap_or(0));
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn candidate(id: &NodeId) -> Candidate<'_> {
        Candidate {
            id,
            running: 0,
            slots: 4,
            cpu_load: 0.1,
            capabilities: 2,
            on_battery: false,
            battery_low: false,
            eff_pct: Some(20),
        }
    }

    #[test]
    fn round_robin_goes_in_turn_and_wraps() {
        let (a, b, c) = (id("a"), id("b"), id("c"));
        let all = [candidate(&a), candidate(&b), candidate(&c)];
        assert_eq!(Strategy::RoundRobin.pick(&all, None), Some(&a));
        assert_eq!(Strategy::RoundRobin.pick(&all, Some(&a)), Some(&b));
        assert_eq!(Strategy::RoundRobin.pick(&all, Some(&c)), Some(&a));
        // The last pick is busy now: the next one after it.
        assert_eq!(Strategy::RoundRobin.pick(&all[..2], Some(&b)), Some(&a));
    }

    #[test]
    fn least_loaded_takes_the_emptiest_slots() {
        let (a, b) = (id("a"), id("b"));
        let all = [
            Candidate {
                running: 2,
                ..candidate(&a)
            },
            Candidate {
                running: 1,
                ..candidate(&b)
            },
        ];
        assert_eq!(Strategy::LeastLoaded.pick(&all, None), Some(&b));
    }

    #[test]
    fn capability_prefers_the_specialist() {
        let (cam, general) = (id("cam"), id("general"));
        let all = [
            Candidate {
                capabilities: 6,
                ..candidate(&general)
            },
            Candidate {
                capabilities: 1,
                running: 1,
                ..candidate(&cam)
            },
        ];
        assert_eq!(Strategy::Capability.pick(&all, None), Some(&cam));
    }

    #[test]
    fn energy_aware_prefers_mains_then_efficiency_and_spares_low_batteries() {
        let (mains, efficient, low) = (id("mains"), id("solar"), id("low"));
        let all = [
            Candidate {
                eff_pct: Some(10),
                ..candidate(&mains)
            },
            Candidate {
                on_battery: true,
                eff_pct: Some(90),
                ..candidate(&efficient)
            },
            Candidate {
                on_battery: true,
                battery_low: true,
                eff_pct: Some(99),
                ..candidate(&low)
            },
        ];
        assert_eq!(Strategy::EnergyAware.pick(&all, None), Some(&mains));
        assert_eq!(
            Strategy::EnergyAware.pick(&all[1..], None),
            Some(&efficient)
        );
        assert_eq!(
            Strategy::EnergyAware.pick(&all[2..], None),
            Some(&low),
            "when nobody else can"
        );
        let two_mains = [
            Candidate {
                eff_pct: Some(10),
                ..candidate(&mains)
            },
            Candidate {
                eff_pct: Some(60),
                ..candidate(&efficient)
            },
        ];
        assert_eq!(
            Strategy::EnergyAware.pick(&two_mains, None),
            Some(&efficient)
        );
    }

    #[test]
    fn ranking_puts_the_pick_first_and_lists_every_candidate_once() {
        let ids: Vec<NodeId> = ["a", "b", "c", "d"].into_iter().map(id).collect();
        let mut all: Vec<Candidate> = ids.iter().map(candidate).collect();
        all[0].running = 3;
        all[1].on_battery = true;
        all[2].capabilities = 1;
        all[3].eff_pct = Some(90);
        for s in [
            Strategy::RoundRobin,
            Strategy::LeastLoaded,
            Strategy::Capability,
            Strategy::EnergyAware,
        ] {
            for last in [None, Some(&ids[1]), Some(&ids[3])] {
                let ranked = s.rank(&all, last);
                assert_eq!(
                    ranked.first().copied(),
                    s.pick(&all, last),
                    "{s:?} {last:?}"
                );
                let mut sorted = ranked.clone();
                sorted.sort();
                assert_eq!(sorted, ids.iter().collect::<Vec<_>>(), "{s:?}");
            }
        }
        assert_eq!(
            Strategy::RoundRobin.rank(&all, Some(&ids[1])),
            vec![&ids[2], &ids[3], &ids[0], &ids[1]]
        );
        assert_eq!(
            Strategy::EnergyAware.rank(&all, None),
            vec![&ids[3], &ids[2], &ids[0], &ids[1]],
            "the most efficient, then the idle, then the busy, then the one on battery"
        );
    }
}
