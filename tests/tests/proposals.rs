//! Swarm-wide decisions on real nodes: a proposal is voted on by the voters, applied on every
//! node once a majority agrees, and a vote from outside the voter set is shown but not counted.

use std::time::Duration;
use swarm_bus::zenoh as bus;
use swarm_bus::{Ballot, NodeId};
use swarm_tests::{Mesh, eventually};

fn json(mesh: &Mesh, args: &[&str]) -> (i32, serde_json::Value, String) {
    let (code, out, err) = mesh.cli(args);
    let value = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    (code, value, err)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_majority_pins_every_nodes_cadence_and_an_outsiders_vote_is_ignored() {
    let mesh = Mesh::start("decide", 3);
    let session = bus::open(&mesh.settings()).await.unwrap();
    let keys = mesh.keys();
    mesh.leader(&session).await;
    // Not a member: no token, no heartbeat. It answers every call to vote with yes.
    let intruder = NodeId::new("intruder").unwrap();
    let _ballot_box = bus::serve(
        &session,
        keys.node_leaf(&intruder, swarm_bus::Leaf::Ballot),
        || {
            Some(Ballot {
                yes: true,
                reason: None,
            })
        },
    )
    .await
    .unwrap();

    let (code, d, err) = json(&mesh, &["propose", "--cadence", "conservative", "--json"]);
    assert_eq!(code, 0, "{err}\n{d}\nlogs:\n{}", mesh.logs());
    assert_eq!(d["accepted"], true, "{d}");
    assert_eq!(d["voters"], 3, "{d}");
    assert_eq!(d["yes"], serde_json::json!(["n0", "n1", "n2"]), "{d}");
    assert_eq!(d["no"], serde_json::json!([]), "{d}");
    assert_eq!(d["ignored"], serde_json::json!(["intruder"]), "{d}");

    // Applied on every node: each reports the mode, pinned.
    let applied = eventually(Duration::from_secs(10), || async {
        let (code, rows, _) = json(&mesh, &["cadence", "show", "--json"]);
        let rows = rows.as_array().cloned().unwrap_or_default();
        let all = code == 0
            && rows.len() == 3
            && rows
                .iter()
                .all(|r| r["mode"] == "conservative" && r["pinned"] == true);
        all.then_some(rows)
    })
    .await;
    assert!(
        applied.is_some(),
        "not applied everywhere; logs:\n{}",
        mesh.logs()
    );

    // The text form lists the votes; auto unpins.
    let (code, out, err) = mesh.cli(&["propose", "--cadence", "auto"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("accepted"), "{out}");
    assert!(out.contains("ignored (not voters): intruder"), "{out}");
    // A mode that does not exist never reaches the swarm.
    let (code, _, err) = mesh.cli(&["propose", "--cadence", "ludicrous"]);
    assert_ne!(code, 0);
    assert!(err.contains("--cadence"), "{err}");
}
