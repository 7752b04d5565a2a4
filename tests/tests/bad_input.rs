//! Garbage on the bus is counted, logged and dropped; the node keeps going.

use ::zenoh::bytes::Encoding;
use std::time::Duration;
use swarm_bus::zenoh::{self as bus, query_cbor};
use swarm_bus::*;
use swarm_tests::{Mesh, eventually};

#[tokio::test(flavor = "multi_thread")]
async fn bad_payloads_are_counted_and_dropped() {
    let mut mesh = Mesh::start("garbage", 1);
    let keys = SwarmKeys::new(SwarmName::new("garbage").unwrap());
    let session = bus::open(&mesh.settings()).await.unwrap();
    let target = NodeId::new("n0").unwrap();
    let state = |session: ::zenoh::Session| {
        let key = keys.state(&target);
        async move {
            let replies = query_cbor::<NodeState>(&session, &key, Duration::from_millis(500))
                .await
                .ok()?;
            replies.into_iter().next()?.msg.ok()
        }
    };
    // Once it leads: only the leader subscribes to peers' energy (docs/protocol.md#scale).
    let before = eventually(Duration::from_secs(15), || async {
        state(session.clone())
            .await
            .filter(|s| s.role == Role::Leader)
    })
    .await
    .unwrap_or_else(|| panic!("node never answered:\n{}", mesh.nodes[0].log_text()));
    assert_eq!(before.dropped, 0);

    let liar = NodeId::new("mallory").unwrap();
    let good = encode(&Heartbeat {
        term: 1,
        role: Role::Follower,
        leader: None,
        seq: 1,
        cadence_ms: 500,
        class: DeviceClass::Full,
        voters: None,
        at_ms: None,
    });
    let mut wrong_version = good.clone();
    wrong_version[1] = 9;
    let payloads: Vec<(String, Vec<u8>)> = vec![
        (keys.heartbeat(&liar), b"\xff\x00garbage".to_vec()),
        (keys.heartbeat(&liar), good[..good.len() - 2].to_vec()),
        (keys.heartbeat(&liar), wrong_version),
        (keys.heartbeat(&liar), encode(&Leave { term: 1 })),
        (keys.node_leaf(&liar, Leaf::Leave), Vec::new()),
        (keys.energy(&liar), b"{\"watts\": 3}".to_vec()),
    ];
    for (key, bytes) in &payloads {
        session
            .put(key, bytes.clone())
            .encoding(Encoding::APPLICATION_CBOR)
            .await
            .unwrap();
    }
    // A key whose node id is not valid never reaches a subscriber of valid ids, but wildcard
    // subscribers would see it: publish one anyway to prove it cannot crash anything.
    session
        .put("swarm/garbage/node/BAD/heartbeat", good.clone())
        .await
        .unwrap();

    let after = eventually(Duration::from_secs(5), || async {
        // Drops counted, and two more heartbeats since: the node went on.
        state(session.clone())
            .await
            .filter(|s| s.dropped > payloads.len() as u64 && s.seq > before.seq + 1)
    })
    .await;
    let after = after.unwrap_or_else(|| panic!("drops not counted:\n{}", mesh.nodes[0].log_text()));
    assert_eq!(
        after.dropped,
        payloads.len() as u64 + 1,
        "the invalid-id key is a bad_key drop"
    );
    assert!(mesh.nodes[0].is_running());
    let log = mesh.nodes[0].log_text();
    for reason in ["truncated", "unknown_version", "wrong_type"] {
        assert!(log.contains(reason), "log lacks {reason}:\n{log}");
    }
    assert!(
        !after.peers.iter().any(|p| p.as_str() == "mallory"),
        "a sender of garbage became a peer"
    );
}
