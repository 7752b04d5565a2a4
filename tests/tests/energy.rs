//! The swarm's energy total: three real nodes, the leader's sum against the members' own
//! samples, through the CLI and a plain zenoh query.

use std::time::Duration;
use swarm_tests::{Mesh, eventually, get_json, wait_for_leader};

/// Every node draws a constant 2.5 W (idle = max), so the sum is exact whatever the CPU does;
/// samples every 500 ms so the leader's copies are fresh.
const CONFIG: &str = "[energy]\nprofile = \"generic-x86\"\nidle_watts = 2.5\nmax_watts = 2.5\n\
                      sample_interval_ms = 500\ncarbon_intensity_gco2_kwh = 400\n";

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn wh_sum(rows: &serde_json::Value) -> f64 {
    let rows = rows.as_array().expect("an array of members");
    rows.iter().map(|r| r["wh_total"].as_f64().unwrap()).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_swarm_total_is_the_sum_of_its_members() {
    let mesh = Mesh::start_configured("sum", 3, Some(CONFIG));
    let session = swarm_bus::zenoh::open(&mesh.settings()).await.unwrap();
    let keys = mesh.keys();
    let (leader, term) = wait_for_leader(
        &session,
        &keys,
        &["n0", "n1", "n2"],
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|| panic!("no leader; logs:\n{}", mesh.logs()));

    // The members' own samples, then the leader's total, then the members' again: the total
    // must lie between the two readings of the members.
    let total = eventually(Duration::from_secs(15), || async {
        let (_, before, _) = mesh.cli(&["energy", "--json"]);
        let (code, out, err) = mesh.cli(&["energy", "--json", "--total"]);
        let (_, after, _) = mesh.cli(&["energy", "--json"]);
        assert_eq!(code, 0, "{err}");
        let total = json(&out);
        (total["nodes"] == 3).then(|| (json(&before), total, json(&after)))
    })
    .await;
    let (before, total, after) =
        total.unwrap_or_else(|| panic!("the total never counted 3 nodes; logs:\n{}", mesh.logs()));

    assert_eq!(total["leader"], leader.as_str(), "{total}");
    assert_eq!(total["term"], term, "{total}");
    assert_eq!(total["watts"], 7.5, "3 × 2.5 W: {total}");
    assert_eq!(
        total["by_source"],
        serde_json::json!([{"kind": "model", "nodes": 3, "watts": 7.5}])
    );
    assert_eq!(
        total["by_class"],
        serde_json::json!([{"kind": "full", "nodes": 3, "watts": 7.5}])
    );
    // The leader's copies are at most a sample interval (and a query) older than `before`.
    let wh = total["wh_total"].as_f64().unwrap();
    let slack = 7.5 * 2.0 / 3600.0;
    assert!(
        wh_sum(&before) - slack <= wh && wh <= wh_sum(&after) + 1e-6,
        "total {wh} Wh, members {} then {} Wh",
        wh_sum(&before),
        wh_sum(&after)
    );
    let co2 = total["co2_g"].as_f64().unwrap();
    assert!(
        (co2 - wh * 0.4).abs() <= 1e-4 + wh * 1e-4,
        "{co2} g for {wh} Wh at 400 g/kWh"
    );
    // Idle = max: whatever the load, the work per joule is the load itself, so a rating shows.
    assert!(total["rating"].is_string(), "{total}");

    // A plain zenoh query (as zenoh-cli sends it) gets one JSON answer: the leader's.
    let replies = get_json(&session, &keys.swarm_energy()).await;
    assert_eq!(replies.len(), 1, "only the leader answers: {replies:?}");
    let (key, encoding, reply) = &replies[0];
    assert_eq!(
        (key.as_str(), encoding.as_str()),
        ("swarm/sum/energy", "application/json")
    );
    assert_eq!(reply["leader"], leader.as_str());
    assert_eq!(reply["nodes"], 3);

    // The text report shows the same sum and where it came from.
    let (code, out, err) = mesh.cli(&["energy"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("swarm: 3 node(s), 7.50 W now"), "{out}");
    assert!(out.contains(&format!("summed by {leader}")), "{out}");
    session.close().await.unwrap();
}

#[test]
fn energy_watch_repeats_until_stopped() {
    let mesh = Mesh::start_configured("watch", 1, Some(CONFIG));
    let mut cmd = std::process::Command::new(swarm_tests::swarm_node_bin());
    swarm_tests::isolate(&mut cmd, mesh.dir.path());
    cmd.args([
        "energy",
        "--watch",
        "--json",
        "--every-ms",
        "200",
        "--swarm",
        "watch",
        "--no-multicast",
    ])
    .args(["--connect", &swarm_tests::endpoint(mesh.ports()[0])])
    .env("SWARM_LOG", "error")
    .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("starting energy --watch");
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    // Rounds keep coming, one JSON document each, until one names the node (the first may
    // go out before the node has answered).
    let mut rounds = 0;
    let last = loop {
        let line = lines
            .next()
            .expect("another round")
            .expect("readable output");
        let doc = json(&line);
        rounds += 1;
        let rows = doc.as_array().expect("one array per round").clone();
        if rows.iter().any(|r| r["id"] == "n0") || rounds == 50 {
            break doc;
        }
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "Ctrl-C ends the watch cleanly: {status}");
    let rows = last.as_array().expect("one array per round");
    assert!(
        rows.iter().any(|r| r["id"] == "n0"),
        "after {rounds} rounds: {last}"
    );
}

/// The energy a node has used, as its queryable states it.
async fn wh_of(session: &zenoh::Session, key: &str) -> Option<f64> {
    let replies = get_json(session, key).await;
    replies.first().and_then(|(_, _, j)| j["wh_total"].as_f64())
}

#[tokio::test(flavor = "multi_thread")]
async fn cumulative_energy_survives_a_restart() {
    // 3,600 W is one Wh a second: the total grows fast enough to see in a short test.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("swarm.toml");
    std::fs::write(
        &config,
        "[energy]\nidle_watts = 3600\nmax_watts = 3600\nsample_interval_ms = 200\n",
    )
    .unwrap();
    let port = swarm_tests::free_port();
    let settings = swarm_bus::zenoh::ZenohSettings {
        mode: swarm_bus::zenoh::SessionMode::Peer,
        listen: vec![],
        connect: vec![swarm_tests::endpoint(port)],
        multicast_scouting: false,
        ..swarm_bus::zenoh::ZenohSettings::default()
    };
    let keys = swarm_bus::SwarmKeys::new(swarm_bus::SwarmName::new("keep").unwrap());
    let key = keys.energy(&swarm_bus::NodeId::new("n0").unwrap());

    let mut first =
        swarm_tests::Node::spawn_configured(dir.path(), "keep", "n0", port, &[], Some(&config));
    let session = swarm_bus::zenoh::open(&settings).await.unwrap();
    let before = eventually(Duration::from_secs(15), || async {
        wh_of(&session, &key).await.filter(|wh| *wh >= 1.0)
    })
    .await
    .unwrap_or_else(|| panic!("no energy counted; log:\n{}", first.log_text()));
    session.close().await.unwrap();
    first.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(
        first
            .wait(Duration::from_secs(10))
            .is_some_and(|s| s.success()),
        "{}",
        first.log_text()
    );

    // The same id and state directory: the total goes on from where it was, not from zero.
    let second =
        swarm_tests::Node::spawn_configured(dir.path(), "keep", "n0", port, &[], Some(&config));
    let session = swarm_bus::zenoh::open(&settings).await.unwrap();
    let after = eventually(Duration::from_secs(15), || async {
        wh_of(&session, &key).await
    })
    .await
    .unwrap_or_else(|| panic!("no energy after the restart; log:\n{}", second.log_text()));
    assert!(
        after >= before,
        "{after} Wh after the restart, {before} Wh before"
    );
    session.close().await.unwrap();
}
