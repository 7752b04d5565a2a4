//! Mutual TLS: nodes with certificates from the swarm's CA form a swarm and elect a leader,
//! directly or through a zenohd router; a process without a certificate, or with one from
//! another CA, cannot join; no secret shows up in a log.

use std::path::Path;
use std::time::Duration;
use swarm_bus::zenoh::{SessionMode, ZenohSettings};
use swarm_tests::{
    Node, Zenohd, free_port, quic_endpoint, run_cli, states, tls_endpoint, wait_for_leader,
};

const SWARM: &str = "tls";

/// A CA in `dir` and a certificate for each `(name, role)`.
fn certs_with_roles(dir: &Path, names: &[(&str, &str)]) {
    let home = dir.parent().expect("a parent dir");
    let dir = dir.to_str().expect("utf-8 temp path");
    let (code, out, err) = run_cli(home, &["certs", "init", "--dir", dir]);
    assert_eq!(code, 0, "certs init: {out}{err}");
    assert!(out.contains("ca.pem") && out.contains("ca.key"), "{out}");
    for (name, role) in names {
        let (code, out, err) = run_cli(
            home,
            &["certs", "issue", name, "--dir", dir, "--role", role],
        );
        assert_eq!(code, 0, "certs issue {name}: {out}{err}");
    }
}

/// Certificates for the members n0, n1 and n2, the observer ops, and `more`.
fn members_and(dir: &Path, more: &[(&str, &str)]) {
    let mut all = vec![
        ("n0", "node"),
        ("n1", "node"),
        ("n2", "node"),
        ("ops", "observer"),
    ];
    all.extend_from_slice(more);
    certs_with_roles(dir, &all);
}

fn certs(dir: &Path, names: &[&str]) {
    let as_nodes: Vec<(&str, &str)> = names.iter().map(|n| (*n, "node")).collect();
    certs_with_roles(dir, &as_nodes);
}

/// n0, n1 and n2 with the certificates in `tls`, each dialling those before it; and their ports.
fn three_tls_nodes(dir: &Path, tls: &Path) -> (Vec<Node>, Vec<u16>) {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let nodes = (0..3)
        .map(|i| Node::spawn_tls(dir, SWARM, &format!("n{i}"), ports[i], &ports[..i], tls))
        .collect();
    (nodes, ports)
}

fn logs_of(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| format!("--- {}\n{}", n.id, n.log_text()))
        .collect()
}

/// A TLS session presenting `name`'s certificate from `tls_dir`, dialling `ports`.
fn tls_settings(tls_dir: &Path, name: &str, ports: &[u16]) -> ZenohSettings {
    ZenohSettings {
        mode: SessionMode::Peer,
        listen: vec![tls_endpoint(free_port())],
        connect: ports.iter().copied().map(tls_endpoint).collect(),
        multicast_scouting: false,
        tls_dir: Some(tls_dir.to_path_buf()),
        tls_name: Some(name.into()),
        ..ZenohSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_holders_of_the_swarms_certificates_join() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tls = dir.path().join("tls");
    certs(&tls, &["n0", "n1", "n2", "ops"]);
    // Another swarm's CA, and a certificate it signed for a name this swarm uses.
    let foreign = dir.path().join("foreign");
    certs(&foreign, &["n1", "n9"]);

    let (nodes, ports) = three_tls_nodes(dir.path(), &tls);
    let logs = || logs_of(&nodes);

    let ops = swarm_bus::zenoh::open(&tls_settings(&tls, "ops", &ports))
        .await
        .expect("ops session");
    let keys = swarm_bus::SwarmKeys::new(swarm_bus::SwarmName::new(SWARM).unwrap());
    let leader = wait_for_leader(&ops, &keys, &["n0", "n1", "n2"], Duration::from_secs(20)).await;
    assert!(leader.is_some(), "no leader over TLS; logs:\n{}", logs());

    // A node with a certificate from another CA, and one with no TLS at all, both dialling
    // every member. Neither must become a member.
    let rogue_ports = (free_port(), free_port());
    let mut rogue_tls = Node::spawn_tls(dir.path(), SWARM, "n9", rogue_ports.0, &ports, &foreign);
    let mut rogue_plain = Node::spawn(dir.path(), SWARM, "n8", rogue_ports.1, &ports);
    // The same name as a member, with the foreign CA's certificate for it.
    let impostor = swarm_bus::zenoh::open(&tls_settings(&foreign, "n1", &ports)).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        rogue_tls.is_running(),
        "rogue n9 exited; log:\n{}",
        rogue_tls.log_text()
    );
    assert!(
        rogue_plain.is_running(),
        "rogue n8 exited; log:\n{}",
        rogue_plain.log_text()
    );

    let members: Vec<String> = states(&ops, &keys)
        .await
        .keys()
        .map(|id| id.to_string())
        .collect();
    assert_eq!(members, ["n0", "n1", "n2"], "logs:\n{}", logs());
    if let Ok(impostor) = &impostor {
        let seen = states(impostor, &keys).await;
        assert!(
            seen.is_empty(),
            "a foreign certificate saw the swarm: {seen:?}"
        );
    }
    // No private key material in any log.
    let key = std::fs::read_to_string(tls.join("n0.key")).expect("n0.key");
    let secret_line = key.lines().nth(1).expect("a base64 line");
    for node in &nodes {
        let log = node.log_text();
        assert!(
            !log.contains(secret_line) && !log.contains("PRIVATE KEY"),
            "{} logged its key",
            node.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_tls_router_the_swarm_elects_and_a_foreign_certificate_stays_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tls = dir.path().join("tls");
    members_and(&tls, &[("site", "router")]);
    let foreign = dir.path().join("foreign");
    certs(&foreign, &["n9"]);
    let router = Zenohd::start_tls(dir.path(), "site", &tls);
    let nodes: Vec<Node> = ["n0", "n1", "n2"]
        .iter()
        .map(|id| Node::spawn_tls_client(dir.path(), SWARM, id, router.port, &tls))
        .collect();
    let logs = || {
        let router = std::fs::read_to_string(&router.log).unwrap_or_default();
        format!("{}--- router\n{router}", logs_of(&nodes))
    };
    let ops = swarm_bus::zenoh::open(&ZenohSettings {
        mode: SessionMode::Client,
        connect: vec![quic_endpoint(router.port)],
        multicast_scouting: false,
        tls_dir: Some(tls.clone()),
        tls_name: Some("ops".into()),
        ..ZenohSettings::default()
    })
    .await
    .expect("ops through the router");
    let keys = swarm_bus::SwarmKeys::new(swarm_bus::SwarmName::new(SWARM).unwrap());
    let members = ["n0", "n1", "n2"];
    let leader = wait_for_leader(&ops, &keys, &members, Duration::from_secs(30)).await;
    assert!(
        leader.is_some(),
        "no leader through the TLS router; logs:\n{}",
        logs()
    );

    // The rogue trusts the swarm's CA, so only the router's check of the client's certificate
    // can keep it out.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).expect("mixed dir");
    for (from, file) in [(&tls, "ca.pem"), (&foreign, "n9.pem"), (&foreign, "n9.key")] {
        std::fs::copy(from.join(file), mixed.join(file)).expect("copying a certificate");
    }
    std::fs::copy(foreign.join("roster"), mixed.join("roster")).expect("roster");
    let rogue = Node::spawn_tls_client(dir.path(), SWARM, "n9", router.port, &mixed);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let seen: Vec<String> = states(&ops, &keys)
        .await
        .keys()
        .map(|id| id.to_string())
        .collect();
    assert_eq!(
        seen,
        members,
        "rogue log:\n{}\n{}",
        rogue.log_text(),
        logs()
    );
    // A client's session opens only once a router has accepted it.
    let rogue_log = rogue.log_text();
    assert!(
        !rogue_log.contains("node running") && rogue_log.contains("Unable to connect"),
        "a foreign certificate got a session through the router:\n{rogue_log}"
    );
}

#[tokio::test]
async fn a_plain_endpoint_next_to_tls_and_a_missing_certificate_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tls = dir.path().join("tls");
    certs(&tls, &["n0"]);
    let tls_arg = tls.to_str().expect("utf-8");
    let plain = format!("tcp/127.0.0.1:{}", free_port());
    let (code, _, err) = run_cli(
        dir.path(),
        &[
            "run",
            "--id",
            "n0",
            "--no-multicast",
            "--tls-dir",
            tls_arg,
            "--listen",
            &plain,
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("is not TLS"), "{err}");
    let (code, _, err) = run_cli(
        dir.path(),
        &["run", "--id", "n5", "--no-multicast", "--tls-dir", tls_arg],
    );
    assert_ne!(code, 0);
    assert!(err.contains("n5.pem is missing"), "{err}");
}

/// Every node's (term, leader) as the observer sees them.
async fn terms(
    session: &zenoh::Session,
    keys: &swarm_bus::SwarmKeys,
) -> Vec<(String, u64, Option<String>)> {
    states(session, keys)
        .await
        .into_iter()
        .map(|(id, s)| (id.to_string(), s.term, s.leader.map(|l| l.to_string())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_speak_for_another_and_an_observer_cannot_speak_at_all() {
    use swarm_bus::{DeviceClass, Heartbeat, Leave, Role};
    let dir = tempfile::tempdir().expect("temp dir");
    let tls = dir.path().join("tls");
    members_and(&tls, &[("mallory", "node"), ("gw", "gateway")]);
    let (nodes, ports) = three_tls_nodes(dir.path(), &tls);
    let logs = || logs_of(&nodes);
    let keys = swarm_bus::SwarmKeys::new(swarm_bus::SwarmName::new(SWARM).unwrap());
    let ops = swarm_bus::zenoh::open(&tls_settings(&tls, "ops", &ports))
        .await
        .expect("ops session");
    let (leader, _) = wait_for_leader(&ops, &keys, &["n0", "n1", "n2"], Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("no leader over TLS; logs:\n{}", logs()));
    let before = terms(&ops, &keys).await;

    // mallory holds a valid certificate and a place in the roster, as a node of its own.
    let mallory = swarm_bus::zenoh::open(&tls_settings(&tls, "mallory", &ports))
        .await
        .expect("mallory");
    // A gateway writes its devices' keys, which are not roster names.
    let gw = swarm_bus::zenoh::open(&tls_settings(&tls, "gw", &ports))
        .await
        .expect("gw");
    let forged_lead = Heartbeat {
        term: 1_000,
        role: Role::Leader,
        leader: None,
        seq: 1,
        cadence_ms: 100,
        class: DeviceClass::Full,
        voters: Some(3),
        at_ms: None,
    };
    let follower = ["n0", "n1", "n2"]
        .into_iter()
        .find(|n| *n != leader.as_str())
        .unwrap();
    let follower = swarm_bus::NodeId::new(follower).unwrap();
    for _ in 0..30 {
        // A follower's id claiming the lead at a far later term; the leader "leaving".
        swarm_bus::zenoh::publish(&mallory, &keys.heartbeat(&follower), &forged_lead)
            .await
            .unwrap();
        let leave = keys.node_leaf(&leader, swarm_bus::Leaf::Leave);
        swarm_bus::zenoh::publish(&mallory, &leave, &Leave { term: before[0].1 })
            .await
            .unwrap();
        // The gateway, as if a device of its own had a member's name.
        swarm_bus::zenoh::publish(&gw, &keys.heartbeat(&follower), &forged_lead)
            .await
            .unwrap();
        swarm_bus::zenoh::publish(&gw, &leave, &Leave { term: before[0].1 })
            .await
            .unwrap();
        // The observer, under its own name: observers write no node keys at all.
        let ops_id = swarm_bus::NodeId::new("ops").unwrap();
        swarm_bus::zenoh::publish(&ops, &keys.heartbeat(&ops_id), &forged_lead)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = terms(&ops, &keys).await;
    assert_eq!(
        after,
        before,
        "forged messages moved the swarm; logs:\n{}",
        logs()
    );
    for node in &nodes {
        let log = node.log_text();
        assert!(
            !log.contains("peer left cleanly"),
            "{} believed a forged leave:\n{log}",
            node.id
        );
        assert!(
            !log.contains("peer=ops") && !log.contains("peer=mallory") && !log.contains("peer=gw"),
            "{} heard a forged heartbeat:\n{log}",
            node.id
        );
    }
}
