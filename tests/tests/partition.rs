//! Partitions with real processes: five nodes, each in its own network namespace on a bridge,
//! and nftables dropping packets between some of them and the rest, so sockets and liveliness
//! tokens stay up until zenoh's lease runs out (a pulled cable, Wi-Fi gone). Each node's own
//! log says its role; the trial samples it every 250 ms for 30 s, past the lease, then heals.
//! Needs root for `ip netns` and the nftables package; SWARM_SKIP_NETNS=1 skips it.
//! `scripts/bench-partition.sh` prints the same trials' figures.

use std::time::Duration;
use swarm_tests::netlab::{Direction, NetLab};
use swarm_tests::partition::{Fault, SAMPLE_EVERY, Swarm, TIMEOUT_MAX, Trial, trial};

const NODES: usize = 5;
/// Past zenoh's lease (10 s), when the cut peers' links and tokens finally go.
const OBSERVE: Duration = Duration::from_secs(30);
/// "One leader followed by all within a few seconds" of the heal.
const HEAL_WITHIN: Duration = Duration::from_secs(10);

/// Samples an election may take: the longest timeout, half a second for the vote, and one
/// sample for where the cut fell between two.
fn one_election() -> usize {
    ((TIMEOUT_MAX + Duration::from_millis(500)).as_millis() / SAMPLE_EVERY.as_millis()) as usize + 1
}

/// The partition bounds: at most one leaderless stretch, no longer than one election; when
/// the leader was cut off so that the others stop hearing it, it starts at the cut; when it
/// was not cut off, there is none. The cut-off side never elects, the heal ends with one
/// leader followed by all, and no term ever had two leaders.
fn assert_bounds(swarm: &Swarm, t: &Trial) {
    let line = t.line();
    eprintln!(
        "{} around {:?} (leader among them: {}): {line}; healed in {:?}",
        t.fault, t.side, t.leader_on_side, t.healed_in
    );
    let stretches = t.stretches();
    let context = || format!("{}: {line}\n{}", t.fault, swarm.logs());
    if !t.leader_on_side {
        assert!(
            stretches.is_empty(),
            "leaderless without need: {}",
            context()
        );
    } else {
        assert!(
            stretches.len() <= 1,
            "leaderless more than once: {}",
            context()
        );
        if let Some(&(start, len)) = stretches.first() {
            assert!(
                len <= one_election(),
                "leaderless for {len} samples: {}",
                context()
            );
            if !matches!(t.fault, Fault::Cut(Direction::Inbound)) {
                assert_eq!(start, 0, "leaderless later than the cut: {}", context());
            }
        }
    }
    assert!(
        t.side_elected.is_empty(),
        "the cut-off side elected {:?}: {}",
        t.side_elected,
        context()
    );
    assert!(
        t.healed_in.is_some(),
        "no leader followed by all after the heal: {}",
        context()
    );
    let split = swarm.split_terms();
    assert!(
        split.is_empty(),
        "two leaders in a term {split:?}: {}",
        context()
    );
}

fn start(prefix: &str) -> Option<Swarm> {
    NetLab::for_test(prefix, NODES).map(|lab| Swarm::start(lab, "split"))
}

fn leader(swarm: &Swarm) -> usize {
    swarm
        .wait_settled(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", swarm.logs()))
        .0
}

#[test]
fn a_cut_off_minority_never_costs_the_majority_its_leader() {
    let Some(swarm) = start("swarm-cut") else {
        return;
    };
    let both = Fault::Cut(Direction::Both);
    // The leader and the next node cut off: the other three elect once and keep their leader.
    let l = leader(&swarm);
    let side = [l, (l + 1) % NODES];
    let t = trial(&swarm, &side, both, OBSERVE, HEAL_WITHIN).unwrap();
    assert_bounds(&swarm, &t);
    // Two followers cut off: the leader keeps leading throughout.
    let l = leader(&swarm);
    let side = [(l + 1) % NODES, (l + 2) % NODES];
    let t = trial(&swarm, &side, both, OBSERVE, HEAL_WITHIN).unwrap();
    assert_bounds(&swarm, &t);
}

#[test]
fn a_leader_that_hears_nothing_steps_down_and_the_others_elect_at_once() {
    let Some(swarm) = start("swarm-deaf") else {
        return;
    };
    // One way: the leader's heartbeats still arrive, but it hears nobody, so it stops leading
    // after one election timeout, and says so.
    let l = leader(&swarm);
    let side = [l, (l + 1) % NODES];
    let t = trial(
        &swarm,
        &side,
        Fault::Cut(Direction::Inbound),
        OBSERVE,
        HEAL_WITHIN,
    )
    .unwrap();
    assert_bounds(&swarm, &t);
}
