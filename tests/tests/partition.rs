//! Partitions with real processes: five nodes, each in its own network namespace on a bridge,
//! and nftables dropping every packet between two of them and the other three, so sockets and
//! liveliness tokens stay up until zenoh's lease runs out (a pulled cable, Wi-Fi gone). Each
//! node's own log says its role; the test samples it every 250 ms. Needs root for `ip netns`
//! and the nftables package; SWARM_SKIP_NETNS=1 skips it.

use std::time::{Duration, Instant};
use swarm_tests::Node;
use swarm_tests::netlab::{Direction, NetLab};
use swarm_tests::roles::{RoleLine, current_role, leaders_by_term};

const IDS: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];
const PORT: u16 = 7447;
/// The default longest election timeout (`consensus.election_timeout_max_ms`).
const TIMEOUT_MAX: Duration = Duration::from_millis(3000);
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Past zenoh's lease (10 s), when the cut peers' links and tokens finally go.
const OBSERVE: Duration = Duration::from_secs(30);

struct Swarm {
    lab: NetLab,
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Swarm {
    fn start(prefix: &str) -> Option<Swarm> {
        let lab = NetLab::for_test(prefix, IDS.len())?;
        let dir = tempfile::tempdir().unwrap();
        let nodes = IDS
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let mut flags = vec![
                    "--no-multicast".to_string(),
                    "--listen".into(),
                    lab.endpoint(i, PORT),
                ];
                for j in 0..i {
                    flags.extend(["--connect".to_string(), lab.endpoint(j, PORT)]);
                }
                lab.spawn(dir.path(), i, "split", id, &flags)
            })
            .collect();
        Some(Swarm {
            lab,
            nodes,
            _dir: dir,
        })
    }

    fn roles(&self) -> Vec<Option<RoleLine>> {
        self.nodes
            .iter()
            .map(|n| current_role(&n.log_text()))
            .collect()
    }

    /// One leader, followed by every node in its term: its index and the term.
    fn settled(&self) -> Option<(usize, u64)> {
        let roles = self.roles();
        let first = roles.first()?.as_ref()?;
        let leader = first.leader.clone()?;
        let at = IDS.iter().position(|id| *id == leader)?;
        let same = roles
            .iter()
            .all(|r| matches!(r, Some(r) if r.term == first.term && r.leader.as_deref() == Some(&leader)));
        (same && roles[at].as_ref()?.leads()).then_some((at, first.term))
    }

    fn wait_settled(&self, what: &str, within: Duration) -> (usize, u64) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.settled() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: no leader followed by all within {within:?}; roles {:?}\n{}",
                self.roles(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {}\n{}", n.id, n.log_text()))
            .collect()
    }

    /// Every term's leaders, by the nodes' own logs, must be at most one.
    fn assert_one_leader_per_term(&self) {
        let by_term = leaders_by_term(self.nodes.iter().map(|n| (n.id.as_str(), n.log_text())));
        for (term, leaders) in &by_term {
            assert!(
                leaders.len() <= 1,
                "term {term} had two leaders {leaders:?}\n{}",
                self.logs()
            );
        }
    }
}

/// What a cut looked like from inside, sample by sample.
struct Watch {
    /// For each sample, the majority node that led then, if any.
    majority_leader: Vec<Option<usize>>,
    /// Samples in which a cut-off node led in a term after the cut.
    minority_elected: Vec<(usize, u64)>,
}

impl Watch {
    /// One character per sample: the leading majority node's number, or `.`.
    fn line(&self) -> String {
        self.majority_leader
            .iter()
            .map(|l| l.map_or('.', |i| char::from(b'1' + i as u8)))
            .collect()
    }

    /// Samples before the majority first had a leader, and samples without one after that.
    fn gaps(&self) -> (usize, usize) {
        let first = self
            .majority_leader
            .iter()
            .position(Option::is_some)
            .unwrap_or(self.majority_leader.len());
        let later = self.majority_leader[first..]
            .iter()
            .filter(|l| l.is_none())
            .count();
        (first, later)
    }
}

fn watch(swarm: &Swarm, cut: &[usize], term: u64) -> Watch {
    let mut w = Watch {
        majority_leader: Vec::new(),
        minority_elected: Vec::new(),
    };
    let start = Instant::now();
    let mut next = start;
    while next < start + OBSERVE {
        let roles = swarm.roles();
        let leader = (0..IDS.len())
            .filter(|i| !cut.contains(i))
            .find(|&i| roles[i].as_ref().is_some_and(RoleLine::leads));
        w.majority_leader.push(leader);
        for &i in cut {
            if let Some(r) = roles[i].as_ref().filter(|r| r.leads() && r.term > term) {
                w.minority_elected.push((i, r.term));
            }
        }
        next += SAMPLE_EVERY;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    w
}

/// Cuts `cut` off (both ways) for `OBSERVE`, then heals; asserts the partition bounds.
fn partition(swarm: &Swarm, cut: &[usize], leader_cut: bool) {
    let (leader, term) = swarm.wait_settled("before the cut", Duration::from_secs(30));
    assert_eq!(
        cut.contains(&leader),
        leader_cut,
        "the cut is chosen by who leads"
    );
    let rest: Vec<usize> = (0..IDS.len()).filter(|i| !cut.contains(i)).collect();
    swarm.lab.cut(cut, &rest, Direction::Both).unwrap();
    let w = watch(swarm, cut, term);
    swarm.lab.heal().unwrap();
    let line = w.line();
    eprintln!("cut {cut:?} (leader n{}): {line}", leader + 1);
    let (first, later) = w.gaps();
    // One election when the leader is cut off (the longest timeout, plus half a second for the
    // vote and one sample), none otherwise; never a leaderless moment after that.
    let allowed = if leader_cut {
        ((TIMEOUT_MAX + Duration::from_millis(500)).as_millis() / SAMPLE_EVERY.as_millis()) as usize
            + 1
    } else {
        0
    };
    assert!(
        first <= allowed && later == 0,
        "majority leaderless for {first} samples before its first leader (allowed {allowed}) \
         and {later} after: {line}\n{}",
        swarm.logs()
    );
    assert!(
        w.minority_elected.is_empty(),
        "the cut-off minority elected: {:?}\n{}",
        w.minority_elected,
        swarm.logs()
    );
    swarm.wait_settled("after the heal", Duration::from_secs(10));
    swarm.assert_one_leader_per_term();
}

#[test]
fn a_cut_off_minority_never_costs_the_majority_its_leader() {
    let Some(swarm) = Swarm::start("swarm-cut") else {
        return;
    };
    // The leader and the next node cut off: the other three elect once and keep their leader.
    let (leader, _) = swarm.wait_settled("at start", Duration::from_secs(30));
    let cut = [leader, (leader + 1) % IDS.len()];
    partition(&swarm, &cut, true);
    // Two followers cut off: the leader keeps leading throughout.
    let (leader, _) = swarm.wait_settled("after the first heal", Duration::from_secs(10));
    let cut = [(leader + 1) % IDS.len(), (leader + 2) % IDS.len()];
    partition(&swarm, &cut, false);
}
