//! A swarm past `adaptive_gossip.small_swarm`, with real processes: the threshold is set to 2,
//! so five nodes make a large swarm (docs/protocol.md#scale). Followers then subscribe to their
//! leader's heartbeats only, only the leader answers for the swarm, and after the leader is
//! killed the new one's announcement reaches followers that hear nobody else.

use nix::sys::signal::Signal;
use std::time::Duration;
use swarm_bus::zenoh::{self as bus, DropCounters, Received, TypedSubscriber};
use swarm_bus::{LeaderInfo, Leaf, NodeId, Role, Vote};
use swarm_tests::{Mesh, eventually, states, who_leads};

const CONFIG: &str = "[adaptive_gossip]\nsmall_swarm = 2\n";
const NODES: usize = 5;
/// Generous: CI runs this beside other tests on two cores.
const WITHIN: Duration = Duration::from_secs(15);

/// Waits until the leader alone answers `swarm/<s>/leader`, stating every voter, in a term
/// after `after`, and every live member follows it.
async fn only_the_leader_answers(
    mesh: &Mesh,
    session: &zenoh::Session,
    members: usize,
    after: u64,
) -> LeaderInfo {
    let keys = mesh.keys();
    let found = eventually(WITHIN, || async {
        let answers = who_leads(session, &keys).await;
        let [(_, info)] = <[_; 1]>::try_from(answers.into_iter().collect::<Vec<_>>()).ok()?;
        if info.role != Role::Leader || info.term <= after || info.voters != Some(NODES as u32) {
            return None;
        }
        let states = states(session, &keys).await;
        let agreed = states.len() == members
            && states
                .values()
                .all(|s| s.leader.as_ref() == Some(&info.node) && s.term == info.term);
        agreed.then_some(info)
    })
    .await;
    found.unwrap_or_else(|| {
        panic!(
            "no single answering leader followed by {members} nodes; logs:\n{}",
            mesh.logs()
        )
    })
}

/// The node's log says it subscribed to `leader`'s heartbeats alone.
fn subscribed_to_leader(log: &str, leader: &NodeId) -> bool {
    log.lines().any(|l| {
        l.contains("heartbeats subscribed to") && l.contains(&format!("Leader(\"{leader}\")"))
    })
}

/// Every message the subscription has now, waiting a little for stragglers.
async fn drain(sub: &TypedSubscriber<Vote>) -> Vec<Received<Vote>> {
    let mut out = Vec::new();
    while let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(300), sub.recv()).await {
        out.push(r);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_swarm_hears_the_leader_alone_learns_its_successor_from_its_announcement_and_addresses_vote_replies()
 {
    let mesh = Mesh::start_configured("large", NODES, Some(CONFIG));
    let session = bus::open(&mesh.settings()).await.unwrap();

    let first = only_the_leader_answers(&mesh, &session, NODES, 0).await;
    for node in mesh.nodes.iter().filter(|n| n.id != first.node.as_str()) {
        assert!(
            subscribed_to_leader(&node.log_text(), &first.node),
            "{} did not narrow its heartbeats to {}:\n{}",
            node.id,
            first.node,
            node.log_text()
        );
    }

    // What an eavesdropper on the votes sees of the next election.
    let keys = mesh.keys();
    let broadcast = bus::subscribe::<Vote>(&session, keys.all(Leaf::Vote), DropCounters::default())
        .await
        .unwrap();
    let mut addressed = Vec::new();
    for node in &mesh.nodes {
        let to = NodeId::new(node.id.as_str()).unwrap();
        let key = keys.vote_replies_to(&to);
        addressed.push((
            to,
            bus::subscribe::<Vote>(&session, key, DropCounters::default())
                .await
                .unwrap(),
        ));
    }

    let killed = mesh
        .nodes
        .iter()
        .find(|n| n.id == first.node.as_str())
        .unwrap();
    killed.signal(Signal::SIGKILL);
    // The survivors heard only the old leader's heartbeats: they can name the new one so soon
    // (anti-entropy runs every 47 s at this size) only through its announcement.
    let second = only_the_leader_answers(&mesh, &session, NODES - 1, first.term).await;
    assert_ne!(second.node, first.node);
    for node in mesh
        .nodes
        .iter()
        .filter(|n| n.id != first.node.as_str() && n.id != second.node.as_str())
    {
        assert!(
            subscribed_to_leader(&node.log_text(), &second.node),
            "{} did not move its heartbeats to {}:\n{}",
            node.id,
            second.node,
            node.log_text()
        );
    }

    // Requests go to everyone; each reply only to the candidate it answers.
    let requests = drain(&broadcast).await;
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|r| matches!(r.msg, Vote::Request(_))),
        "a reply on the broadcast key: {requests:?}"
    );
    for (to, sub) in &addressed {
        let replies = drain(sub).await;
        for r in &replies {
            assert!(
                matches!(&r.msg, Vote::Reply(reply) if reply.candidate == *to),
                "{r:?} under {to}'s key"
            );
        }
        if *to == second.node {
            assert!(
                replies.len() >= 2,
                "the winner got {} replies",
                replies.len()
            );
        }
    }
}
