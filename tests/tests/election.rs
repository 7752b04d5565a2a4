//! Leader election with real `swarm-node run` processes on loopback: five nodes elect one
//! leader, and replace it after kill -9, SIGSTOP and a clean stop.

use nix::sys::signal::Signal;
use std::time::Duration;
use swarm_bus::zenoh::{self as bus, DropCounters};
use swarm_bus::{Heartbeat, Leaf, NodeId, Role};
use swarm_node::election::{SafetyChecker, agreed_leader};
use swarm_tests::{Mesh, Node, eventually, wait_for_leader, who_leads};

const ALL: [&str; 5] = ["n0", "n1", "n2", "n3", "n4"];
/// Generous: CI runs these beside other tests on two cores. The speed itself is measured by
/// `swarm-node bench failover`, not here.
const AGREE_WITHIN: Duration = Duration::from_secs(10);

fn without(leader: &NodeId) -> Vec<&'static str> {
    ALL.iter()
        .copied()
        .filter(|n| *n != leader.as_str())
        .collect()
}

fn index_of(leader: &NodeId) -> usize {
    ALL.iter().position(|n| *n == leader.as_str()).unwrap()
}

async fn elected(mesh: &Mesh, session: &zenoh::Session, members: &[&str]) -> (NodeId, u64) {
    wait_for_leader(session, &mesh.keys(), members, AGREE_WITHIN)
        .await
        .unwrap_or_else(|| panic!("{members:?} agreed on no leader; logs:\n{}", mesh.logs()))
}

#[tokio::test(flavor = "multi_thread")]
async fn five_nodes_elect_one_leader_that_every_node_and_status_report() {
    let mesh = Mesh::start("elect", 5);
    let session = bus::open(&mesh.settings()).await.unwrap();
    let (leader, term) = elected(&mesh, &session, &ALL).await;
    assert!(term >= 1);

    let answers = who_leads(&session, &mesh.keys()).await;
    let leaders: Vec<&NodeId> = answers
        .values()
        .filter(|a| a.role == Role::Leader)
        .map(|a| &a.node)
        .collect();
    assert_eq!(leaders, vec![&leader]);
    assert!(answers[&leader].since_ms.is_some());

    let (code, out, err) = mesh.cli(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    let nodes = status.as_array().expect("an array of nodes");
    assert_eq!(nodes.len(), 5, "{out}");
    for node in nodes {
        assert_eq!(node["leader"], leader.as_str(), "{node}");
        assert_eq!(node["term"], term, "{node}");
        let role = if node["id"] == leader.as_str() {
            "leader"
        } else {
            "follower"
        };
        assert_eq!(node["role"], role, "{node}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_leader_elects_another_in_a_higher_term() {
    let mesh = Mesh::start("killed", 5);
    let session = bus::open(&mesh.settings()).await.unwrap();
    let (leader, term) = elected(&mesh, &session, &ALL).await;
    mesh.nodes[index_of(&leader)].signal(Signal::SIGKILL);
    let (new, new_term) = elected(&mesh, &session, &without(&leader)).await;
    assert_ne!(new, leader);
    assert!(new_term > term);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_stop_of_the_leader_hands_over_and_exits_0() {
    let mut mesh = Mesh::start("handover", 5);
    let session = bus::open(&mesh.settings()).await.unwrap();
    let (leader, term) = elected(&mesh, &session, &ALL).await;
    let node = &mut mesh.nodes[index_of(&leader)];
    node.signal(Signal::SIGTERM);
    let status = node.wait(Duration::from_secs(10)).expect("stopped");
    assert!(status.success(), "{status:?}");
    // It kept its links until the others had elected a successor, then closed.
    let log = node.log_text();
    assert!(log.contains("a successor leads; closing"), "{log}");
    let (new, new_term) = elected(&mesh, &session, &without(&leader)).await;
    assert!(new != leader && new_term > term);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_leader_is_replaced_and_after_sigcont_never_leads_in_its_old_term() {
    let mesh = Mesh::start("frozen", 5);
    let keys = mesh.keys();
    let session = bus::open(&mesh.settings()).await.unwrap();
    let (leader, term) = elected(&mesh, &session, &ALL).await;
    let heartbeats =
        bus::subscribe::<Heartbeat>(&session, keys.all(Leaf::Heartbeat), DropCounters::default())
            .await
            .unwrap();
    let mut checker = SafetyChecker::default();
    // Stopped right after one of its heartbeats, so none is half-sent inside the frozen process.
    loop {
        let r = heartbeats.recv().await.unwrap();
        if r.from == leader {
            break;
        }
    }
    let old = index_of(&leader);
    mesh.nodes[old].signal(Signal::SIGSTOP);

    // The others cannot see a crash (the token stays): the election timeout must catch it.
    let (new, new_term) = eventually(AGREE_WITHIN, || async {
        let answers = who_leads(&session, &keys).await;
        let live: Vec<_> = answers.values().filter(|a| a.node != leader).collect();
        if live.len() == 4 {
            agreed_leader(live)
        } else {
            None
        }
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no leader while {leader} is stopped; logs:\n{}",
            mesh.logs()
        )
    });
    assert!(new != leader && new_term > term, "{new} {new_term}");
    // Drain what the others sent meanwhile.
    while let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(50), heartbeats.recv()).await
    {
        if r.msg.role == Role::Leader {
            checker.observe(r.msg.term, &r.from);
        }
    }

    mesh.nodes[old].signal(Signal::SIGCONT);
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(r)) = tokio::time::timeout_at(until, heartbeats.recv()).await {
        if r.msg.role == Role::Leader {
            checker.observe(r.msg.term, &r.from);
        }
        if r.from == leader {
            assert_ne!(
                (r.msg.role, r.msg.term),
                (Role::Leader, term),
                "the old leader acted in its old term after SIGCONT"
            );
        }
    }
    assert!(
        checker.violations().is_empty(),
        "{:?}",
        checker.violations()
    );
    let (back, back_term) = elected(&mesh, &session, &ALL).await;
    assert_eq!((back, back_term), (new, new_term));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_node_keeps_its_term_and_vote() {
    let mut mesh = Mesh::start("restart", 5);
    let session = bus::open(&mesh.settings()).await.unwrap();
    // Every node has heard the four others, so each knows all voters before one is stopped.
    mesh.wait_for_full_mesh(&session, 5).await;
    let (leader, term) = elected(&mesh, &session, &ALL).await;
    // A follower that voted in this term: a majority did, but one that came up late may have
    // met the leader only by its heartbeats, with no vote of its own to keep.
    let record = |i: usize| -> Option<serde_json::Value> {
        let path = mesh.dir.path().join(ALL[i]).join("election.json");
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    };
    let follower = (1..5)
        .map(|k| (index_of(&leader) + k) % 5)
        .find(|i| record(*i).is_some_and(|r| r["term"] == term && r["voted_for"].is_string()))
        .unwrap_or_else(|| {
            panic!(
                "no follower stored a vote in term {term}; logs:\n{}",
                mesh.logs()
            )
        });
    let id = ALL[follower];
    let node = &mut mesh.nodes[follower];
    node.signal(Signal::SIGTERM);
    node.wait(Duration::from_secs(10)).expect("stopped");
    let stored: serde_json::Value = serde_json::from_slice(
        &std::fs::read(mesh.dir.path().join(id).join("election.json")).expect("vote record"),
    )
    .unwrap();
    assert_eq!(stored["term"], term, "{stored}");
    assert!(stored["voted_for"].is_string(), "{stored}");
    // The four others: a restart must not believe it is alone.
    assert_eq!(
        stored["voters"].as_array().map(Vec::len),
        Some(4),
        "{stored}"
    );

    let port = mesh.nodes[follower].port;
    let peers: Vec<u16> = mesh.ports().into_iter().filter(|p| *p != port).collect();
    mesh.nodes[follower] = Node::spawn(mesh.dir.path(), &mesh.swarm, id, port, &peers);
    // Back under the same leader, in the same term: the restart disturbed nobody.
    let (after, after_term) = elected(&mesh, &session, &ALL).await;
    assert_eq!((after, after_term), (leader, term));
    let again: serde_json::Value = serde_json::from_slice(
        &std::fs::read(mesh.dir.path().join(id).join("election.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(again["voted_for"], stored["voted_for"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_reports_the_leader_and_no_split_brain_then_stops_on_sigint() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mesh = Mesh::start("watched", 3);
    let session = bus::open(&mesh.settings()).await.unwrap();
    let (leader, term) = elected(&mesh, &session, &["n0", "n1", "n2"]).await;
    let mut cmd = Command::new(swarm_tests::swarm_node_bin());
    swarm_tests::isolate(&mut cmd, mesh.dir.path());
    cmd.args(["watch", "--swarm", &mesh.swarm, "--no-multicast"])
        .env("SWARM_LOG", "error")
        .stdout(Stdio::piped());
    for p in mesh.ports() {
        cmd.args(["--connect", &swarm_tests::endpoint(p)]);
    }
    let mut watch = cmd.spawn().unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let expected = format!("term {term}: {leader} leads");
    let seen = tokio::task::spawn_blocking(move || {
        let found = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.ends_with(&expected));
        (found, lines)
    });
    let (found, mut lines) = tokio::time::timeout(Duration::from_secs(10), seen)
        .await
        .expect("watch printed the leader within 10 s")
        .unwrap();
    assert!(found);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watch.id() as i32),
        Signal::SIGINT,
    )
    .unwrap();
    let status = watch.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.by_ref().map_while(Result::ok).collect();
    assert!(
        rest.iter()
            .any(|l| l.starts_with("0 term(s) with two leaders")),
        "{rest:?}"
    );
}
