//! The operator's cadence control on real nodes: a pin is applied (heartbeats really slow
//! down and advertise it), shown, kept across a restart, and lifted.

use nix::sys::signal::Signal;
use std::time::{Duration, Instant};
use swarm_bus::zenoh as bus;
use swarm_bus::{Heartbeat, NodeId};
use swarm_tests::{Mesh, Node, free_port, loopback_session, wait_for_leader};

fn show(mesh: &Mesh) -> serde_json::Value {
    let (code, out, err) = mesh.cli(&["cadence", "show", "--json"]);
    assert_eq!(code, 0, "cadence show: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn row<'a>(rows: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    rows.as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == id))
        .unwrap_or_else(|| panic!("no row for {id} in {rows}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_mode_is_applied_shown_kept_across_a_restart_and_lifted() {
    let mut mesh = Mesh::start("pace", 3);
    let observer = loopback_session(Some(free_port()), Some(mesh.nodes[0].port)).await;
    mesh.wait_for_full_mesh(&observer, 3).await;
    // Pin a follower: the leader's heartbeat never slows, whatever its mode (failover bound).
    let (leader, _) = wait_for_leader(
        &observer,
        &mesh.keys(),
        &["n0", "n1", "n2"],
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|| panic!("no leader; logs:\n{}", mesh.logs()));
    let followers: Vec<usize> = (0..3)
        .filter(|i| mesh.nodes[*i].id != leader.as_str())
        .collect();
    let (p, o) = (followers[1], followers[0]);
    let (pinned, other) = (mesh.nodes[p].id.clone(), mesh.nodes[o].id.clone());
    let (pinned, other) = (pinned.as_str(), other.as_str());

    let (code, out, err) = mesh.cli(&["cadence", "set", "--mode", "emergency", "--node", pinned]);
    assert_eq!(code, 0, "cadence set: {out}{err}\n{}", mesh.logs());
    let rows = show(&mesh);
    assert_eq!(row(&rows, pinned)["mode"], "emergency");
    assert_eq!(row(&rows, pinned)["pinned"], true);
    assert_eq!(row(&rows, other)["pinned"], false);
    let slow_ms = row(&rows, pinned)["heartbeat_ms"].as_u64().unwrap();
    let normal_ms = row(&rows, other)["heartbeat_ms"].as_u64().unwrap();
    assert!(slow_ms >= 4 * normal_ms, "{rows}");

    // Applied, not only reported: its heartbeats now come that far apart and say so.
    let keys = mesh.keys();
    let id = NodeId::new(pinned).unwrap();
    let hb = bus::subscribe::<Heartbeat>(&observer, keys.heartbeat(&id), Default::default())
        .await
        .unwrap();
    let mut arrivals = Vec::new();
    let until = Instant::now() + Duration::from_secs(12);
    while arrivals.len() < 4 && Instant::now() < until {
        if let Ok(Some(r)) = tokio::time::timeout(Duration::from_secs(5), hb.recv()).await {
            arrivals.push((Instant::now(), r.msg.cadence_ms));
        }
    }
    assert!(arrivals.len() >= 3, "{arrivals:?}");
    for pair in arrivals.windows(2).skip(1) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap.as_millis() as u64 >= slow_ms * 3 / 4,
            "{gap:?} between heartbeats"
        );
        assert_eq!(u64::from(pair[1].1), slow_ms, "advertised interval");
    }

    // A restart keeps the pin: it lives in the node's state directory.
    mesh.nodes[p].signal(Signal::SIGTERM);
    assert!(
        mesh.nodes[p].wait(Duration::from_secs(5)).is_some(),
        "{pinned} did not stop"
    );
    let earlier: Vec<u16> = (0..3)
        .filter(|i| *i != p)
        .map(|i| mesh.nodes[i].port)
        .collect();
    let port = free_port();
    mesh.nodes[p] = Node::spawn(mesh.dir.path(), &mesh.swarm, pinned, port, &earlier);
    mesh.wait_for_full_mesh(&observer, 3).await;
    let rows = show(&mesh);
    assert_eq!(row(&rows, pinned)["mode"], "emergency", "{}", mesh.logs());
    assert_eq!(row(&rows, pinned)["pinned"], true);

    let (code, out, err) = mesh.cli(&["cadence", "set", "--mode", "auto", "--node", pinned]);
    assert_eq!(code, 0, "cadence set auto: {out}{err}");
    let rows = show(&mesh);
    assert_eq!(row(&rows, pinned)["pinned"], false);
    // The inputs decide again at once: normal, or conservative in a swarm already quiet.
    let mode = row(&rows, pinned)["mode"].clone();
    assert!(
        mode == "normal" || mode == "conservative",
        "{mode} after the pin was lifted"
    );

    let (code, _, err) = mesh.cli(&["cadence", "set", "--mode", "turbo"]);
    assert_ne!(code, 0);
    assert!(err.contains("auto"), "{err}");
}
