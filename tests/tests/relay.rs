//! The relay (docs/protocol.md#first-answer): a querier linked to one node gets every member's
//! answer on its first query, a relayed query is never passed on again, and a flood of queries
//! is refused and counted instead of fanned out.

use std::time::Duration;
use swarm_bus::zenoh::{DropCounters, Refused, relay};
use swarm_tests::{free_port, loopback_session};
use zenoh::Wait;
use zenoh::query::{ConsolidationMode, Query, QueryTarget};

/// A peer that links to `port` only and never to the peers it hears of: what zenoh-cli is in
/// the moment after it opened, before its own links to the other nodes come up.
async fn lone_querier(port: u16) -> zenoh::Session {
    let mut config = zenoh::Config::default();
    for (key, value) in [
        ("mode", "\"peer\"".to_string()),
        ("connect/endpoints", format!("[\"tcp/127.0.0.1:{port}\"]")),
        ("listen/endpoints", "[]".to_string()),
        ("scouting/multicast/enabled", "false".to_string()),
        ("scouting/gossip/enabled", "false".to_string()),
    ] {
        config.insert_json5(key, &value).expect("zenoh setting");
    }
    zenoh::open(config).await.expect("querier session")
}

/// A member's own answer on `key`: its id as the payload.
async fn member_answer(
    session: &zenoh::Session,
    key: &str,
    id: &'static str,
) -> zenoh::query::Queryable<()> {
    let own = key.to_string();
    session
        .declare_queryable(key)
        .callback(move |query: Query| {
            let _ = query.reply(own.clone(), id).wait();
        })
        .await
        .expect("member queryable")
}

/// Payloads of every reply to `selector`, sorted, as zenoh-cli asks (default target and
/// consolidation) or as our own tools do (`QueryTarget::All`).
async fn ask(session: &zenoh::Session, selector: &str, target: QueryTarget) -> Vec<String> {
    let replies = session
        .get(selector)
        .target(target)
        .timeout(Duration::from_secs(5))
        .await
        .expect("query");
    let mut out = Vec::new();
    while let Ok(reply) = replies.recv_async().await {
        if let Ok(sample) = reply.result() {
            out.push(String::from_utf8_lossy(&sample.payload().to_bytes()).into_owned());
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_querier_linked_to_one_node_gets_every_members_answer_once() {
    let (pa, pb) = (free_port(), free_port());
    let a = loopback_session(Some(pa), None).await;
    let b = loopback_session(Some(pb), Some(pa)).await;
    let _qa = member_answer(&a, "swarm/t/node/a/energy", "a").await;
    let _qb = member_answer(&b, "swarm/t/node/b/energy", "b").await;
    let drops_a = DropCounters::default();
    let _ra = relay(&a, drops_a.clone(), Duration::from_secs(3))
        .await
        .expect("relay on a");
    let _rb = relay(&b, DropCounters::default(), Duration::from_secs(3))
        .await
        .expect("relay on b");
    // a and b must know each other's queryables before anyone asks through them.
    wait_until_answered(&a, "swarm/t/node/b/energy").await;

    let querier = lone_querier(pa).await;
    assert_eq!(
        ask(&querier, "swarm/**/energy", QueryTarget::default()).await,
        ["a", "b"],
        "b is reached through a, and each member answers once"
    );
    assert_eq!(
        ask(&querier, "swarm/t/node/b/energy", QueryTarget::default()).await,
        ["b"]
    );
    // A large payload is not carried to every member: refused and counted.
    let replies = querier
        .get("swarm/t/node/b/energy")
        .payload(vec![0u8; 4096])
        .timeout(Duration::from_secs(5))
        .await
        .expect("query");
    let mut refused = Vec::new();
    while let Ok(reply) = replies.recv_async().await {
        match reply.result() {
            Ok(sample) => panic!("relayed a 4 KiB payload: {:?}", sample.payload()),
            Err(err) => {
                refused.push(String::from_utf8_lossy(&err.payload().to_bytes()).into_owned())
            }
        }
    }
    assert_eq!(refused, ["payload too large to relay"]);
    assert_eq!(
        drops_a
            .snapshot()
            .iter()
            .find(|(k, _)| *k == "malformed")
            .map(|(_, n)| *n),
        Some(1)
    );
    // A query marked as relayed is answered by each node for itself and goes no further.
    assert_eq!(
        ask(&querier, "swarm/**/energy?relayed=1", QueryTarget::All).await,
        ["a"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_queries_is_refused_and_counted_not_fanned_out() {
    let (pa, pm) = (free_port(), free_port());
    let a = loopback_session(Some(pa), None).await;
    // A member that never answers keeps every fan-out waiting for the relay's whole timeout.
    let mute = loopback_session(Some(pm), Some(pa)).await;
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let _silent = mute
        .declare_queryable("swarm/t/node/mute/energy")
        .callback({
            let held = held.clone();
            move |query: Query| {
                if let Ok(mut held) = held.lock() {
                    held.push(query);
                }
            }
        })
        .await
        .expect("silent queryable");
    // The mute member must be known to a before the flood, or the fan-outs end at once.
    wait_until_asked(&a, &held).await;
    let drops = DropCounters::default();
    let _relay = relay(&a, drops.clone(), Duration::from_secs(30))
        .await
        .expect("relay");

    let querier = lone_querier(pa).await;
    let mut refusals = 0;
    let mut pending = Vec::new();
    for _ in 0..120 {
        let replies = querier
            .get("swarm/**/energy")
            .consolidation(ConsolidationMode::None)
            .timeout(Duration::from_secs(2))
            .await
            .expect("query");
        pending.push(replies);
    }
    for replies in pending {
        while let Ok(reply) = replies.recv_async().await {
            if let Err(err) = reply.result()
                && String::from_utf8_lossy(&err.payload().to_bytes()).starts_with("busy")
            {
                refusals += 1;
            }
        }
    }
    // At most 16 fan-outs in flight and 64 waiting: at least the other 40 are refused at once.
    // How many of the first queries the relay's worker takes off the queue before the flood
    // fills it depends on scheduling (a loaded machine refused 44), but the queue itself is
    // never refused: at most 120 - 64 are.
    assert!((40..=56).contains(&refusals), "refused queries: {refusals}");
    assert_eq!(
        drops.refused(Refused::Busy),
        refusals,
        "every refusal counted by reason"
    );
}

async fn wait_until_answered(session: &zenoh::Session, key: &str) {
    for _ in 0..100 {
        let replies = session
            .get(format!("{key}?relayed=1"))
            .target(QueryTarget::All)
            .timeout(Duration::from_millis(500))
            .await
            .expect("query");
        if replies.recv_async().await.is_ok_and(|r| r.result().is_ok()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{key} never answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_answers_once_even_to_a_querier_linked_to_all() {
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a = loopback_session(Some(pa), None).await;
    let b = loopback_session(Some(pb), Some(pa)).await;
    let c = loopback_session(Some(pc), Some(pa)).await;
    let mut held = Vec::new();
    for (session, id) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        let key = format!("swarm/t/node/{id}/energy");
        held.push(member_answer(session, &key, id).await);
    }
    let mut relays = Vec::new();
    for session in [&a, &b, &c] {
        relays.push(
            relay(session, DropCounters::default(), Duration::from_secs(3))
                .await
                .expect("relay"),
        );
    }
    wait_until_answered(&a, "swarm/t/node/b/energy").await;
    wait_until_answered(&a, "swarm/t/node/c/energy").await;
    // Gossip links it to b and c too; the relay it reaches must not repeat its own node.
    let querier = loopback_session(None, Some(pa)).await;
    for _ in 0..100 {
        if querier.info().peers_zid().await.count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..5 {
        let replies = querier
            .get("swarm/**/energy")
            .consolidation(ConsolidationMode::None)
            .timeout(Duration::from_secs(5))
            .await
            .expect("query");
        let mut ids = Vec::new();
        while let Ok(reply) = replies.recv_async().await {
            if let Ok(sample) = reply.result() {
                ids.push(String::from_utf8_lossy(&sample.payload().to_bytes()).into_owned());
            }
        }
        ids.sort();
        assert_eq!(ids, ["a", "b", "c"], "one answer per member, none repeated");
    }
}

/// Until `session` reaches the mute member (its queryable holds what it is asked).
async fn wait_until_asked(session: &zenoh::Session, held: &std::sync::Mutex<Vec<Query>>) {
    for _ in 0..100 {
        let _ = session
            .get("swarm/t/node/mute/energy?relayed=1")
            .target(QueryTarget::All)
            .timeout(Duration::from_millis(100))
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if held.lock().is_ok_and(|mut h| {
            let asked = !h.is_empty();
            h.clear();
            asked
        }) {
            return;
        }
    }
    panic!("the mute member was never reached");
}
