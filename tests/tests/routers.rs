//! Scale-out through zenohd: two sites, each a router with three nodes behind it in client
//! mode, routers linked. They are one swarm with one leader; a leader killed in one site is
//! replaced, and both sites follow the new one; zenohd's REST API shows every node's energy
//! as inline JSON.

use nix::sys::signal::Signal;
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{SessionMode, ZenohSettings};
use swarm_tests::{Node, Zenohd, endpoint, wait_for_leader};

const SWARM: &str = "sites";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_behind_linked_routers_are_one_swarm_and_fail_over_across_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let site_a = Zenohd::start(dir.path(), "router-a", &[]);
    let site_b = Zenohd::start(dir.path(), "router-b", &[site_a.port]);
    let mut nodes: Vec<Node> = Vec::new();
    for (site, router) in [("a", &site_a), ("b", &site_b)] {
        for i in 0..3 {
            let id = format!("{site}{i}");
            nodes.push(Node::spawn_client(dir.path(), SWARM, &id, router.port));
        }
    }
    let logs = |nodes: &[Node]| {
        let routers = [&site_a, &site_b]
            .iter()
            .map(|r| std::fs::read_to_string(&r.log).unwrap_or_default())
            .collect::<String>();
        let nodes: String = nodes
            .iter()
            .map(|n| format!("--- {}\n{}", n.id, n.log_text()))
            .collect();
        format!("{nodes}--- routers\n{routers}")
    };
    // The observer sits behind site B's router only.
    let observer = swarm_bus::zenoh::open(&ZenohSettings {
        mode: SessionMode::Client,
        connect: vec![endpoint(site_b.port)],
        multicast_scouting: false,
        ..ZenohSettings::default()
    })
    .await
    .expect("observer through router b");
    let keys = swarm_bus::SwarmKeys::new(swarm_bus::SwarmName::new(SWARM).unwrap());
    let all = ["a0", "a1", "a2", "b0", "b1", "b2"];
    let (leader, term) = wait_for_leader(&observer, &keys, &all, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("no single leader of both sites; logs:\n{}", logs(&nodes)));

    // Every node hears the five others, whichever side of the routers they are on.
    let states = swarm_tests::states(&observer, &keys).await;
    for (id, state) in &states {
        assert_eq!(state.peers.len(), 5, "{id} hears {:?}", state.peers);
    }

    // zenohd's REST plugin: one reply per node, each value inline JSON (not a string).
    let url = format!(
        "http://127.0.0.1:{}/swarm/{SWARM}/**/energy",
        site_a.rest_port
    );
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", &url])
        .output()
        .expect("running curl");
    let body = String::from_utf8_lossy(&out.stdout);
    let replies: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON from {url}: {e}: {body}"));
    let mut ids: Vec<String> = replies
        .as_array()
        .expect("a JSON array")
        .iter()
        .filter(|r| r["key"].as_str().is_some_and(|k| k.contains("/node/")))
        .map(|r| {
            assert!(r["value"].is_object(), "value not inline JSON: {r}");
            assert!(r["value"]["watts"].as_f64().is_some_and(|w| w > 0.0), "{r}");
            r["value"]["id"].as_str().expect("an id").to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, all, "{body}");

    // Kill the leader: the five others, in both sites, agree on a new one.
    let killed_at = Instant::now();
    let index = nodes.iter().position(|n| n.id == leader.as_str()).unwrap();
    nodes[index].signal(Signal::SIGKILL);
    let rest: Vec<&str> = all
        .iter()
        .copied()
        .filter(|id| *id != leader.as_str())
        .collect();
    let (new_leader, new_term) = wait_for_leader(&observer, &keys, &rest, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| {
            panic!(
                "no new leader after killing {leader}; logs:\n{}",
                logs(&nodes)
            )
        });
    assert!(new_term > term, "term {new_term} after {term}");
    assert_ne!(new_leader, leader);
    eprintln!(
        "leader {leader} (term {term}) killed; {new_leader} leads term {new_term}, agreed by both sites after {} ms (as polled)",
        killed_at.elapsed().as_millis()
    );
}
