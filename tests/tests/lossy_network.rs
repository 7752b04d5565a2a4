//! A lossy network makes the swarm talk faster until it heals, with real processes: three
//! nodes on zenoh's UDP links inside a network namespace the test creates, where nftables
//! drops a fifth of the UDP packets for a while. (Over TCP the kernel retransmits what is
//! lost, so no heartbeat goes missing; UDP links lose messages as a radio link would.) Needs
//! root for `ip netns` and the nftables package; SWARM_SKIP_NETNS=1 skips it.

use std::time::{Duration, Instant};
use swarm_tests::roles::without_colour;
use swarm_tests::{NetNs, Node};

const NODES: [&str; 3] = ["u0", "u1", "u2"];
const BASE_PORT: u16 = 17_700;

fn endpoint(i: usize) -> String {
    format!("udp/127.0.0.1:{}", BASE_PORT + i as u16)
}

/// Each node's cadence mode, as `cadence show --json` reports it; empty while the query fails.
fn modes(ns: &NetNs, dir: &std::path::Path) -> Vec<(String, String)> {
    let connect = endpoint(0);
    let args = [
        "cadence",
        "show",
        "--swarm",
        "lossy",
        "--no-multicast",
        "--connect",
        &connect,
        "--json",
    ];
    let (_, out, _) = ns.cli(dir, &args);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap_or_default();
    rows.iter()
        .filter_map(|r| {
            Some((
                r["id"].as_str()?.to_string(),
                r["mode"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn all_in(modes: &[(String, String)], mode: &str) -> bool {
    modes.len() == NODES.len() && modes.iter().all(|(_, m)| m == mode)
}

/// Whether the node's log says it took `mode` (colour codes aside).
fn took(node: &Node, mode: &str) -> bool {
    let wanted = format!("mode={mode}");
    node.log_text()
        .lines()
        .map(without_colour)
        .any(|l| l.contains(" cadence ") && l.contains(&wanted))
}

fn wait(what: &str, within: Duration, nodes: &[Node], mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        let logs: String = nodes
            .iter()
            .map(|n| format!("--- {}\n{}", n.id, n.log_text()))
            .collect();
        assert!(
            Instant::now() < deadline,
            "{what} within {within:?}; logs:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn loss_speeds_the_swarm_up_and_it_calms_down_after_the_heal() {
    let Some(ns) = NetNs::for_test("swarm-loss") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<Node> = NODES
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut flags = vec!["--no-multicast".to_string(), "--listen".into(), endpoint(i)];
            for j in 0..i {
                flags.extend(["--connect".to_string(), endpoint(j)]);
            }
            Node::spawn_in_netns_with(dir.path(), &ns, "lossy", id, &flags)
        })
        .collect();
    wait(
        "three nodes in normal mode",
        Duration::from_secs(20),
        &nodes,
        || all_in(&modes(&ns, dir.path()), "normal"),
    );

    ns.drop_share("udp", 20)
        .expect("nftables rule (Debian package nftables)");
    // Queries suffer too while packets are dropped, so the nodes' own logs tell.
    wait(
        "every node aggressive",
        Duration::from_secs(45),
        &nodes,
        || nodes.iter().all(|n| took(n, "aggressive")),
    );

    ns.heal().unwrap();
    // The loss must leave two 10-s windows, then the mode waits out its dwell. Calm is normal,
    // or conservative: a healthy swarm with a leader goes quiet (docs/protocol.md#quiet).
    wait(
        "every node calm again (normal or quiet)",
        Duration::from_secs(90),
        &nodes,
        || {
            let modes = modes(&ns, dir.path());
            modes.len() == NODES.len()
                && modes
                    .iter()
                    .all(|(_, m)| m == "normal" || m == "conservative")
        },
    );
}
