//! Three real nodes on loopback: they hear each other, and every query answers per node.

use std::collections::BTreeSet;
use std::time::Duration;
use swarm_bus::Leaf;
use swarm_bus::zenoh as bus;
use swarm_tests::{Mesh, Node, get_json, wait_for_leader};

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_hear_each_other_and_answer_in_json() {
    let mesh = Mesh::start("mesh3", 3);
    let keys = mesh.keys();
    let session = bus::open(&mesh.settings()).await.unwrap();

    // Each node lists the two others as live peers it has had heartbeats from.
    let states = mesh.wait_for_full_mesh(&session, 3).await;
    for (me, state) in &states {
        assert!(!state.peers.contains(me), "{me} lists itself");
        assert_eq!(
            state.dropped,
            0,
            "{me} dropped messages; logs:\n{}",
            mesh.logs()
        );
    }

    // A fourth session's query on swarm/**/energy: three JSON replies with numeric watts, and
    // once there is a leader its swarm total on `swarm/<s>/energy`.
    let (energy, totals): (Vec<_>, Vec<_>) = get_json(&session, "swarm/**/energy")
        .await
        .into_iter()
        .partition(|(key, _, _)| key.contains("/node/"));
    assert!(totals.len() <= 1, "one leader sums: {totals:?}");
    for (key, _, total) in &totals {
        assert_eq!(key, &keys.swarm_energy());
        assert!(total["leader"].is_string(), "{total}");
    }
    let ids: BTreeSet<_> = energy
        .iter()
        .map(|(_, _, j)| j["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        ["n0", "n1", "n2"].map(String::from).into(),
        "{energy:?}"
    );
    for (key, encoding, json) in &energy {
        assert_eq!(encoding, "application/json");
        assert!(key.ends_with(&format!("/{}/energy", json["id"].as_str().unwrap())));
        assert!(json["watts"].as_f64().unwrap() > 0.0, "{json}");
        assert_eq!(json["source"], "model");
        assert!(
            json["wh_total"].is_number() && json["co2_g"].is_number(),
            "{json}"
        );
    }

    // Every node answers on the swarm's leader key in JSON, naming the same leader.
    let (leader, term) = wait_for_leader(
        &session,
        &keys,
        &["n0", "n1", "n2"],
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|| panic!("no leader; logs:\n{}", mesh.logs()));
    let leaders = get_json(&session, &keys.leader()).await;
    assert_eq!(leaders.len(), 3, "{leaders:?}");
    for (_, _, json) in &leaders {
        assert_eq!(json["leader"], leader.as_str(), "{json}");
        assert_eq!(json["term"], term);
        let role = if json["node"] == leader.as_str() {
            "leader"
        } else {
            "follower"
        };
        assert_eq!(json["role"], role, "{json}");
    }

    // ?format=cbor answers in CBOR; an unknown format is an error reply, not silence.
    let cbor = session
        .get(format!("{}?format=cbor", keys.all(Leaf::Energy)))
        .await
        .unwrap();
    let first = cbor.recv_async().await.unwrap();
    assert_eq!(
        first.result().unwrap().encoding().to_string(),
        "application/cbor"
    );
    let bad = session
        .get(format!("{}?format=xml", keys.leader()))
        .await
        .unwrap();
    let err = bad.recv_async().await.unwrap();
    let text = String::from_utf8(err.result().unwrap_err().payload().to_bytes().to_vec()).unwrap();
    assert!(text.contains("format=json"), "{text}");
    session.close().await.unwrap();

    // The CLI, from a separate process, sees the same swarm.
    let (code, out, err) = mesh.cli(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = status.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{out}");
    for row in rows {
        for field in [
            "id",
            "class",
            "role",
            "term",
            "leader",
            "heartbeat_age_ms",
            "watts",
        ] {
            assert!(row.get(field).is_some(), "status row lacks {field}: {row}");
        }
    }
    let (code, out, err) = mesh.cli(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("HEARTBEAT") && out.contains("n2") && out.contains("3 node(s)"),
        "{out}"
    );

    let (code, out, err) = mesh.cli(&["energy", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 3, "{out}");
    let reply_fields: BTreeSet<String> = energy[0].2.as_object().unwrap().keys().cloned().collect();
    for row in &rows {
        let mut fields: BTreeSet<String> = row.as_object().unwrap().keys().cloned().collect();
        // The CLI adds the letter its `eff_pct` earns.
        assert!(fields.remove("rating"), "{row}");
        assert_eq!(
            fields, reply_fields,
            "energy --json and the energy queryable differ"
        );
    }
}

#[test]
fn query_commands_fail_clearly_when_nobody_answers() {
    let mesh = Mesh::start("empty", 0);
    let (code, out, err) = mesh.cli(&["status", "--timeout-ms", "300"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("no node of swarm `empty` answered"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_mode_node_joins_through_a_peer() {
    let mut mesh = Mesh::start("client", 2);
    let session = bus::open(&mesh.settings()).await.unwrap();
    // A client gives up when its router is not there yet (zenoh's client default), so it
    // starts once the peer it goes through answers.
    let via = mesh.nodes[0].port;
    mesh.wait_for_full_mesh(&session, 2).await;
    let client = Node::spawn_client(mesh.dir.path(), "client", "c0", via);
    mesh.nodes.push(client);
    mesh.wait_for_full_mesh(&session, 3).await;
}

/// What a joining node relies on to refuse no sound answer on who leads: a node that answers
/// has declared its token already, so the members asked for after its answer include it. The
/// observer asks as fast as it can while the node starts; each first answer is checked.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_answers_who_leads_only_once_its_token_can_be_seen() {
    let dir = tempfile::tempdir().unwrap();
    let keys = swarm_bus::SwarmKeys::new(swarm_bus::SwarmName::new("joinorder").unwrap());
    let port = swarm_tests::free_port();
    let observer = swarm_tests::loopback_session(Some(port), None).await;
    // Started beside the questions, not before them: `spawn` waits for each node's listener.
    let path = dir.path().to_path_buf();
    let starting = std::thread::spawn(move || {
        ["j0", "j1", "j2"]
            .map(|id| Node::spawn(&path, "joinorder", id, swarm_tests::free_port(), &[port]))
    });
    let mut unseen: BTreeSet<String> = ["j0", "j1", "j2"].map(String::from).into();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !unseen.is_empty() && std::time::Instant::now() < deadline {
        let answered = swarm_tests::who_leads(&observer, &keys).await;
        let fresh: Vec<String> = answered
            .keys()
            .map(|id| id.as_str().to_string())
            .filter(|id| unseen.contains(id))
            .collect();
        if fresh.is_empty() {
            continue;
        }
        let members = swarm_tests::member_keys(&observer, &keys).await;
        for id in fresh {
            assert!(
                members.iter().any(|k| k.ends_with(&format!("/{id}"))),
                "{id} answered who leads before its token could be seen: {members:?}"
            );
            unseen.remove(&id);
        }
    }
    let nodes = starting.join().expect("starting the nodes");
    assert!(unseen.is_empty(), "never answered: {unseen:?}");
    drop(nodes);
}
