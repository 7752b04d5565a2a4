//! Zero-configuration discovery: nodes started with no endpoints find each other by zenoh's
//! multicast scouting. Runs in a network namespace the test creates (its loopback carries the
//! multicast), so nothing leaves this host. Needs root for `ip netns`; set
//! SWARM_SKIP_NETNS=1 to skip it on a machine without.

use std::time::{Duration, Instant};
use swarm_tests::{NetNs, Node};

#[test]
fn nodes_find_each_other_by_multicast_scouting() {
    let Some(ns) = NetNs::for_test("swarm-mc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<Node> = ["mc0", "mc1", "mc2"]
        .iter()
        .map(|id| Node::spawn_in_netns(dir.path(), &ns, "scout", id))
        .collect();

    let deadline = Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let (code, out, err) = ns.cli(dir.path(), &["status", "--swarm", "scout", "--json"]);
        let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap_or_default();
        let settled = rows.len() == 3 && rows.iter().all(|r| r["peers"] == 2);
        if code == 0 && settled {
            break rows;
        }
        let logs: String = nodes.iter().map(|n| n.log_text()).collect();
        assert!(
            Instant::now() < deadline,
            "no full mesh by multicast: {out}{err}\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["mc0", "mc1", "mc2"]);
}
