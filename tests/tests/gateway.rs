//! `swarm-node run --bridge`: boards on MQTT are members in `swarm-node status`, and leave it.

use std::process::{Command, Stdio};
use std::time::Duration;
use swarm_tests::{Mesh, Node, eventually, free_port, swarm_bridge_bin};

fn status(mesh: &Mesh) -> Vec<serde_json::Value> {
    let (code, out, err) = mesh.cli(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("status --json");
    doc.as_array()
        .or_else(|| doc["nodes"].as_array())
        .cloned()
        .unwrap_or_else(|| panic!("no node list in {doc}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boards_on_the_gateway_are_members_until_they_go() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let gw = Node::spawn_gateway(dir.path(), "gw", "gw", free_port(), mqtt_port);
    // Asked before it runs, the gateway could not answer: wait until it says it runs (its
    // queryables are declared by then), so every `status` below must be answered.
    let running = eventually(Duration::from_secs(30), || async {
        gw.log_text().contains("node running").then_some(())
    })
    .await;
    assert!(
        running.is_some(),
        "the gateway never ran:\n{}",
        gw.log_text()
    );
    let mesh = Mesh {
        swarm: "gw".into(),
        nodes: vec![gw],
        dir,
    };
    let mut boards = Command::new(swarm_bridge_bin())
        .args([
            "devices", "--count", "3", "--swarm", "gw", "--prefix", "esp",
        ])
        .args(["--mqtt", &format!("127.0.0.1:{mqtt_port}")])
        .env_remove("SWARM_CONFIG")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rows = eventually(Duration::from_secs(20), || async {
        let rows = status(&mesh);
        (rows.len() == 4).then_some(rows)
    })
    .await;
    // The gateway leads alone, and its swarm total counts the boards on its bridge.
    let total = eventually(Duration::from_secs(20), || async {
        let (code, out, err) = mesh.cli(&["energy", "--json", "--total"]);
        assert_eq!(code, 0, "{err}");
        let total: serde_json::Value = serde_json::from_str(&out).expect("energy --json --total");
        // A member joins `by_class` with its first heartbeat, which may come after its energy.
        let classed: u64 = total["by_class"]
            .as_array()
            .map_or(0, |l| l.iter().filter_map(|s| s["nodes"].as_u64()).sum());
        (total["nodes"] == 4 && classed == 4).then_some(total)
    })
    .await;
    let _ = boards.kill();
    let _ = boards.wait();
    let rows = rows.unwrap_or_else(|| panic!("boards never listed; log:\n{}", mesh.logs()));
    let total = total.unwrap_or_else(|| panic!("boards never summed; log:\n{}", mesh.logs()));
    let boards_by = |list: &str, kind: &str| {
        total[list]
            .as_array()
            .and_then(|l| l.iter().find(|s| s["kind"] == kind))
            .map(|s| s["nodes"].clone())
    };
    assert_eq!(boards_by("by_source", "device"), Some(3.into()), "{total}");
    assert_eq!(boards_by("by_class", "minimal"), Some(3.into()), "{total}");
    assert_eq!(total["leader"], "gw", "{total}");
    for row in &rows {
        let id = row["id"].as_str().unwrap();
        let expected = if id == "gw" { "full" } else { "minimal" };
        assert_eq!(row["class"], expected, "{row}");
        if id != "gw" {
            assert_eq!(row["role"], "observer", "{row}");
            assert!(row["watts"].as_f64().is_some(), "{row}");
        }
    }
    // Killed: their connections close, the Last-Will says offline, the members go.
    let alone = eventually(Duration::from_secs(10), || async {
        (status(&mesh).len() == 1).then_some(())
    })
    .await;
    assert!(alone.is_some(), "boards still listed after they died");
}
