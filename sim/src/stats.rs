//! What a simulation run counts, and the report it prints.

use serde::Serialize;

/// Messages one node sent and received, split by the role it held at the time, and how long
/// it held each role.
#[derive(Debug, Default, Clone)]
pub struct NodeCounters {
    pub tx: u64,
    pub rx_leading: u64,
    pub rx_following: u64,
    pub leading_us: u64,
    pub following_us: u64,
}

/// One simulated second of the whole swarm, for `--csv`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Second {
    pub second: u64,
    pub sent: u64,
    pub received: u64,
    /// Received by whichever node led at the time.
    pub leader_received: u64,
    pub leaders: u32,
    pub term: u64,
}

/// The whole run. Rates are messages per node per second of simulated time; "leader" is
/// whichever node led at the moment, "follower" every other live node.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub nodes: usize,
    pub duration_s: u64,
    pub seed: u64,
    pub loss_pct: f64,
    pub latency_ms: f64,
    pub adaptive: bool,
    /// Simulated ms from start to the first leader; null if none was elected.
    pub first_leader_ms: Option<f64>,
    /// Leaders crashed on purpose (`--crash-leader-every`) and replaced.
    pub failovers: usize,
    /// Crash to new leader, for each failover.
    pub failover_ms: Vec<f64>,
    pub failover_ms_max: Option<f64>,
    /// Crashes after which no new leader was elected before the run ended.
    pub failovers_unfinished: usize,
    /// What each `--partition` did.
    pub partitions: Vec<PartitionReport>,
    /// Terms in which two nodes claimed to lead (from the election's safety checker).
    pub split_brain: usize,
    /// Leaders elected in all (the first, failovers, and any other).
    pub elections: usize,
    pub follower_rx_per_s_mean: f64,
    /// The highest follower's own mean.
    pub follower_rx_per_s_max: f64,
    pub follower_tx_per_s_mean: f64,
    pub leader_rx_per_s_mean: f64,
    /// The busiest single second of whichever node led.
    pub leader_rx_per_s_max: f64,
    pub leader_tx_per_s_mean: f64,
    /// Messages sent per node per hour, all nodes and roles.
    pub msgs_per_node_hour: f64,
    /// Heartbeat interval (ms) of a follower and of the leader at the end of the run.
    pub follower_heartbeat_ms: Option<u32>,
    pub leader_heartbeat_ms: Option<u32>,
    /// How many live nodes are in each cadence mode at the end of the run.
    pub modes: std::collections::BTreeMap<String, usize>,
    /// Wall-clock time the simulation took.
    pub wall_ms: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionReport {
    pub at_s: f64,
    pub length_s: f64,
    /// Nodes cut off from the rest, the leader among them.
    pub cut_off: usize,
    /// The term in force when the partition began.
    #[serde(skip)]
    pub term_before: u64,
    /// From the cut to a leader in a later term among the nodes not cut off; null if they
    /// elected none (they need a majority of all voters).
    pub new_leader_ms: Option<f64>,
    /// From the heal until every live node follows one leader; null if not by the end.
    pub healed_ms: Option<f64>,
}

fn per_s(count: u64, us: u64) -> f64 {
    if us == 0 {
        0.0
    } else {
        count as f64 * 1e6 / us as f64
    }
}

/// Rates from every node's counters: (follower rx mean, follower rx max, follower tx mean,
/// leader rx mean, leader tx mean). A node's tx is split by the time it spent in each role.
pub fn rates(nodes: &[NodeCounters]) -> (f64, f64, f64, f64, f64) {
    let mut f = NodeCounters::default();
    let mut l = NodeCounters::default();
    let mut f_max: f64 = 0.0;
    let (mut f_tx, mut l_tx) = (0.0, 0.0);
    for n in nodes {
        f.rx_following += n.rx_following;
        f.following_us += n.following_us;
        l.rx_leading += n.rx_leading;
        l.leading_us += n.leading_us;
        let lived = n.leading_us + n.following_us;
        if lived > 0 {
            let share = n.leading_us as f64 / lived as f64;
            l_tx += n.tx as f64 * share;
            f_tx += n.tx as f64 * (1.0 - share);
        }
        // A node that followed for under a second says little about a rate.
        if n.following_us >= 1_000_000 {
            f_max = f_max.max(per_s(n.rx_following, n.following_us));
        }
    }
    let secs = |us: u64| us as f64 / 1e6;
    (
        per_s(f.rx_following, f.following_us),
        f_max,
        if f.following_us == 0 {
            0.0
        } else {
            f_tx / secs(f.following_us)
        },
        per_s(l.rx_leading, l.leading_us),
        if l.leading_us == 0 {
            0.0
        } else {
            l_tx / secs(l.leading_us)
        },
    )
}

/// The per-second series as CSV, one header line first.
pub fn csv(series: &[Second]) -> String {
    let mut out = String::from("second,sent,received,leader_received,leaders,term\n");
    for s in series {
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            s.second, s.sent, s.received, s.leader_received, s.leaders, s.term
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_split_by_role_time() {
        let follower = NodeCounters {
            tx: 10,
            rx_following: 20,
            following_us: 10_000_000,
            ..Default::default()
        };
        // Led for half its life: half its messages count as the leader's.
        let both = NodeCounters {
            tx: 100,
            rx_leading: 500,
            rx_following: 10,
            leading_us: 5_000_000,
            following_us: 5_000_000,
        };
        let (f_rx, f_max, f_tx, l_rx, l_tx) = rates(&[follower, both]);
        assert_eq!(f_rx, 30.0 / 15.0);
        assert_eq!(f_max, 2.0);
        assert_eq!(f_tx, (10.0 + 50.0) / 15.0);
        assert_eq!(l_rx, 100.0);
        assert_eq!(l_tx, 10.0);
        assert_eq!(
            csv(&[Second {
                second: 3,
                sent: 1,
                ..Default::default()
            }]),
            "second,sent,received,leader_received,leaders,term\n3,1,0,0,0,0\n"
        );
    }
}
