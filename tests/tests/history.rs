//! History on the gateway: zenoh's storage manager keeps every member's energy samples and
//! answers `_time` ranges, as zenoh-cli asks them; the members' own queryables keep answering
//! the current value alone.

use std::collections::BTreeMap;
use std::time::Duration;
use swarm_bus::clock::unix_ms;
use swarm_bus::{Leaf, NodeId, SwarmKeys, SwarmName, encode, samples};
use swarm_tests::{Node, free_port, get_json, loopback_session, run_cli};

const SWARM: &str = "hist";
const INTERVAL_MS: u64 = 200;

fn keys() -> SwarmKeys {
    SwarmKeys::new(SwarmName::new(SWARM).unwrap())
}

/// Each member's samples (`ts_ms`) in the order the replies came.
fn by_member(replies: &[(String, String, serde_json::Value)]) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (key, encoding, json) in replies {
        assert!(
            encoding.starts_with("application/json"),
            "{key}: {encoding}"
        );
        let ts = json["ts_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {json}"));
        out.entry(key.clone()).or_default().push(ts);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_answers_time_ranges_with_every_sample_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("swarm.toml");
    std::fs::write(
        &config,
        format!("[energy]\nsample_interval_ms = {INTERVAL_MS}\n"),
    )
    .unwrap();
    let gw_port = free_port();
    let flags = [
        "--bridge".to_string(),
        "--mqtt-listen".into(),
        format!("127.0.0.1:{}", free_port()),
    ];
    let _gateway =
        Node::spawn_with_flags(dir.path(), SWARM, "gw", gw_port, &[], Some(&config), &flags);
    let _nodes: Vec<Node> = ["n1", "n2"]
        .iter()
        .map(|id| {
            Node::spawn_configured(
                dir.path(),
                SWARM,
                id,
                free_port(),
                &[gw_port],
                Some(&config),
            )
        })
        .collect();
    let started = unix_ms();
    let observer = loopback_session(None, Some(gw_port)).await;
    // What a live subscriber hears is what the history must hold.
    let live = observer
        .declare_subscriber(keys().all(Leaf::Energy))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut heard: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    while let Ok(Some(sample)) = live.try_recv() {
        let e: swarm_bus::Energy = swarm_bus::decode(&sample.payload().to_bytes()).unwrap();
        heard
            .entry(sample.key_expr().to_string())
            .or_default()
            .push(e.ts_ms);
    }

    let asked_at = unix_ms();
    let all = keys().all(Leaf::Energy);
    let history = by_member(&get_json(&observer, &format!("{all}?_time=[now(-1m)..]")).await);
    assert_eq!(history.len(), 3, "{:?}", history.keys());
    for (key, times) in &history {
        assert!(times.is_sorted(), "{key}: out of order {times:?}");
        let mut unique = times.clone();
        unique.dedup();
        assert_eq!(&unique, times, "{key}: a sample twice");
        // Complete: from the node's first sample to now, no gap longer than a late tick.
        let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let widest = gaps.iter().max().copied().unwrap_or(0);
        assert!(
            widest < 3 * INTERVAL_MS,
            "{key}: a gap of {widest} ms in {times:?}"
        );
        let first = times[0];
        let last = *times.last().unwrap();
        assert!(
            first < started + 4_000,
            "{key}: history starts late at +{} ms",
            first - started
        );
        // The range is open-ended, so a sample stamped after `asked_at` may be in the answer.
        let age = asked_at.saturating_sub(last);
        assert!(age < 2 * INTERVAL_MS + 500, "{key}: newest is {age} ms old");
        let missing: Vec<&u64> = heard[key].iter().filter(|t| !times.contains(t)).collect();
        assert!(
            missing.is_empty(),
            "{key}: heard live but not in history: {missing:?}"
        );
        eprintln!(
            "{key}: {} samples over {} ms, {} heard live",
            times.len(),
            last - first,
            heard[key].len()
        );
    }

    // Without `_time`: the current value, once per member, not the history.
    let latest = get_json(&observer, &all).await;
    assert_eq!(latest.len(), 3, "{latest:?}");

    // A range in the past holds nothing; a narrow one only what it covers.
    let old = get_json(&observer, &format!("{all}?_time=[..now(-1h)]")).await;
    assert!(old.is_empty(), "{old:?}");
    let recent = by_member(&get_json(&observer, &format!("{all}?_time=[now(-2s)..]")).await);
    for (key, times) in &recent {
        assert!(
            times.len() < history[key].len(),
            "{key}: a 2 s range gave the whole minute"
        );
    }

    // A reading sent late lands at its own time; junk and the far past are not kept.
    let late_key = keys().energy(&NodeId::new("n1").unwrap());
    let taken = unix_ms() - 30_000;
    let mut late = samples::energy();
    late.ts_ms = taken;
    late.watts = 77.0;
    let stamp = zenoh::time::Timestamp::new(
        zenoh::time::NTP64::from(Duration::from_millis(taken)),
        zenoh::time::TimestampId::rand(),
    );
    observer
        .put(&late_key, encode(&late))
        .timestamp(stamp)
        .attachment(swarm_bus::zenoh::REPLAYED)
        .await
        .unwrap();
    let ancient = unix_ms() - 3 * 86_400_000;
    let mut far = samples::energy();
    far.ts_ms = ancient;
    let stamp = zenoh::time::Timestamp::new(
        zenoh::time::NTP64::from(Duration::from_millis(ancient)),
        zenoh::time::TimestampId::rand(),
    );
    observer
        .put(&late_key, encode(&far))
        .timestamp(stamp)
        .await
        .unwrap();
    let ghost = keys().energy(&NodeId::new("ghost").unwrap());
    observer.put(&ghost, b"not cbor".to_vec()).await.unwrap();
    // Well-formed, but from no member: no token on its node key.
    let stray = keys().energy(&NodeId::new("stray").unwrap());
    observer
        .put(&stray, encode(&samples::energy()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let window = get_json(
        &observer,
        &format!("{late_key}?_time=[now(-40s)..now(-20s)]"),
    )
    .await;
    let watts: Vec<f64> = window
        .iter()
        .filter_map(|(_, _, j)| j["watts"].as_f64())
        .collect();
    assert_eq!(
        watts,
        [77.0],
        "the late reading at its own time: {window:?}"
    );
    let everything = by_member(&get_json(&observer, &format!("{all}?_time=[now(-7d)..]")).await);
    assert!(!everything.contains_key(&ghost), "junk was kept");
    assert!(
        !everything.contains_key(&stray),
        "a non-member's sample was kept"
    );
    assert!(
        !everything[&late_key].contains(&ancient),
        "a reading three days old was kept"
    );

    // The CLI prints the same history.
    let (code, out, err) = run_cli(
        dir.path(),
        &[
            "energy",
            "--since",
            "1m",
            "--json",
            "--swarm",
            SWARM,
            "--connect",
            &format!("tcp/127.0.0.1:{gw_port}"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    let members = doc["members"].as_object().expect("members");
    assert_eq!(members.len(), 3, "{doc}");
    for (id, samples) in members {
        let n = samples.as_array().map_or(0, Vec::len);
        assert!(n >= 20, "{id}: {n} samples");
    }
    let (code, out, _) = run_cli(
        dir.path(),
        &[
            "energy",
            "--since",
            "1m",
            "--swarm",
            SWARM,
            "--connect",
            &format!("tcp/127.0.0.1:{gw_port}"),
        ],
    );
    assert_eq!(code, 0);
    for id in ["gw", "n1", "n2"] {
        assert!(out.contains(id), "{out}");
    }
}
