//! Processes that die or stop: peers notice through liveliness at once.

use nix::sys::signal::Signal;
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{self as bus, DropCounters, MemberEvent, query_cbor};
use swarm_bus::{Heartbeat, Leaf, Leave, NodeId, NodeState, SwarmKeys};
use swarm_tests::{Mesh, eventually};

async fn peers_of(session: &zenoh::Session, keys: &SwarmKeys, id: &str) -> Option<Vec<NodeId>> {
    let key = keys.state(&NodeId::new(id).unwrap());
    let replies = query_cbor::<NodeState>(session, &key, Duration::from_millis(500))
        .await
        .ok()?;
    replies.into_iter().next()?.msg.ok().map(|s| s.peers)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_withdraws_the_token_within_a_second() {
    let mut mesh = Mesh::start("crash", 3);
    let keys = mesh.keys();
    let session = bus::open(&mesh.settings()).await.unwrap();
    mesh.wait_for_full_mesh(&session, mesh.nodes.len()).await;
    let members = bus::watch_members(&session, &keys).await.unwrap();
    // Drain the history of current members first.
    tokio::time::timeout(Duration::from_secs(5), async {
        let mut present = 0;
        while present < 3 {
            match members.recv().await {
                Some(MemberEvent::Joined(_)) => present += 1,
                Some(MemberEvent::Left(id)) => panic!("{id} left before the kill"),
                None => panic!("session closed"),
            }
        }
    })
    .await
    .expect("the three members' tokens were not all seen");

    let victim = mesh.nodes.remove(2);
    let killed_at = Instant::now();
    victim.signal(Signal::SIGKILL);
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(MemberEvent::Left(id)) = members.recv().await {
                return id;
            }
        }
    })
    .await
    .expect("the killed node's token never went away");
    let seen_after = killed_at.elapsed();
    assert_eq!(gone.as_str(), "n2");
    assert!(seen_after < Duration::from_secs(1), "took {seen_after:?}");

    // The surviving nodes drop it from their peers too, inside the same second.
    for survivor in ["n0", "n1"] {
        let dropped = eventually(Duration::from_secs(1), || async {
            peers_of(&session, &keys, survivor)
                .await
                .filter(|p| !p.iter().any(|id| id.as_str() == "n2"))
        })
        .await;
        assert!(dropped.is_some(), "{survivor} still lists n2");
    }
    drop(victim);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_says_leave_withdraws_the_token_and_exits_0() {
    let mut mesh = Mesh::start("stop", 2);
    let keys = mesh.keys();
    let session = bus::open(&mesh.settings()).await.unwrap();
    mesh.wait_for_full_mesh(&session, mesh.nodes.len()).await;
    let leaves = bus::subscribe::<Leave>(&session, keys.all(Leaf::Leave), DropCounters::default())
        .await
        .unwrap();
    // Declarations travel in order on a link: once a heartbeat from n1 reaches a subscriber
    // declared after the Leave subscriber, n1 knows about both.
    let heartbeats =
        bus::subscribe::<Heartbeat>(&session, keys.all(Leaf::Heartbeat), DropCounters::default())
            .await
            .unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while heartbeats
            .recv()
            .await
            .is_some_and(|r| r.from.as_str() != "n1")
        {}
    })
    .await
    .expect("no heartbeat from n1");

    mesh.nodes[1].signal(Signal::SIGTERM);
    let leave = tokio::time::timeout(Duration::from_secs(5), leaves.recv())
        .await
        .expect("no Leave message")
        .unwrap();
    assert_eq!(leave.from.as_str(), "n1");
    let status = mesh.nodes[1]
        .wait(Duration::from_secs(5))
        .expect("node did not exit");
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        mesh.nodes[1].log_text()
    );

    let dropped = eventually(Duration::from_secs(2), || async {
        peers_of(&session, &keys, "n0")
            .await
            .filter(|p| p.is_empty())
    })
    .await;
    assert!(dropped.is_some(), "n0 still lists n1 after its Leave");
    assert!(mesh.nodes[0].log_text().contains("peer left cleanly"));

    // SIGINT (Ctrl-C) behaves the same.
    mesh.nodes[0].signal(Signal::SIGINT);
    let status = mesh.nodes[0]
        .wait(Duration::from_secs(5))
        .expect("node did not exit on SIGINT");
    assert!(status.success());
}
