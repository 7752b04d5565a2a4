//! Fleet care end to end: boards running the firmware core (`swarm-bridge devices
//! --firmware-core`, a process of their own) against a real bridge in this process, watched from
//! a zenoh session on loopback.

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swarm_bridge::config::BridgeConfig;
use swarm_bridge::{Bridge, run_bridge};
use swarm_bus::zenoh::{DropCounters, is_replayed, publish, query_cbor, subscribe};
use swarm_bus::{
    Command as Cmd, CommandOp, Energy, Leaf, NodeId, NodeState, SwarmKey, SwarmKeys, SwarmName,
    encode, samples,
};
use swarm_tests::boards::{Boards, SWARM};
use swarm_tests::{BridgeProcess, endpoint, eventually, free_port, loopback_session, member_keys};
use zenoh::Session;
use zenoh::sample::Sample;

fn keys() -> SwarmKeys {
    SwarmKeys::new(SwarmName::new(SWARM).unwrap())
}

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

struct Rig {
    bridge: Option<Bridge>,
    observer: Session,
    mqtt_port: u16,
}

impl Rig {
    async fn start() -> Rig {
        let zenoh_port = free_port();
        let config = BridgeConfig {
            listen: ([127, 0, 0, 1], free_port()).into(),
            ..BridgeConfig::default()
        };
        let bridge_session = loopback_session(Some(zenoh_port), None).await;
        let observer = loopback_session(Some(free_port()), Some(zenoh_port)).await;
        let bridge = run_bridge(
            bridge_session,
            SwarmName::new(SWARM).unwrap(),
            &config,
            &Default::default(),
        )
        .await
        .expect("bridge starts");
        // The observer's link to the bridge comes up just after opening.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Rig {
            bridge: Some(bridge),
            observer,
            mqtt_port: config.listen.port(),
        }
    }

    /// An MQTT 5 client of the bridge's broker as `device`, its events polled in the
    /// background.
    fn mqtt_client(&self, device: &NodeId) -> AsyncClient {
        let mut options = MqttOptions::new(device.as_str(), "127.0.0.1", self.mqtt_port);
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut events) = AsyncClient::new(options, 16);
        tokio::spawn(async move {
            while let Ok(Event::Incoming(_) | Event::Outgoing(_)) = events.poll().await {}
        });
        client
    }

    fn bridge(&self) -> &Bridge {
        self.bridge.as_ref().expect("bridge running")
    }
}

/// Every energy sample on the mesh from now on, per device.
async fn record_energy(
    observer: &Session,
) -> (Arc<Mutex<Readings>>, zenoh::pubsub::Subscriber<()>) {
    let seen: Arc<Mutex<Readings>> = Arc::default();
    let sink = seen.clone();
    let sub = observer
        .declare_subscriber(keys().all(Leaf::Energy))
        .callback(move |sample: Sample| {
            let Ok(SwarmKey::NodeLeaf { id, .. }) = sample.key_expr().as_str().parse() else {
                return;
            };
            let Ok(e) = swarm_bus::decode::<Energy>(&sample.payload().to_bytes()) else {
                return;
            };
            let stamp = sample
                .timestamp()
                .map(|t| t.get_time().to_duration().as_millis() as u64);
            sink.lock().unwrap().entry(id).or_default().push(Seen {
                ts_ms: e.ts_ms,
                replayed: is_replayed(&sample),
                stamp,
            });
        })
        .await
        .unwrap();
    (seen, sub)
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    ts_ms: u64,
    replayed: bool,
    stamp: Option<u64>,
}

type Readings = BTreeMap<NodeId, Vec<Seen>>;

const OUTAGE: Duration = Duration::from_secs(60);
const INTERVAL_MS: u64 = 1000;

/// The outage: the gateway's broker is gone for a minute while three boards keep
/// measuring; afterwards every reading of the minute arrives, at the time it was taken, marked
/// as replayed, and the bridge's current value for each board is a live one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_taken_through_a_minute_long_broker_outage_all_arrive_with_their_time() {
    let observer_port = free_port();
    let observer = loopback_session(Some(observer_port), None).await;
    let (seen, _sub) = record_energy(&observer).await;
    let mut bridge = BridgeProcess::start(SWARM, &["--connect", &endpoint(observer_port)]);
    let extra = ["--firmware-core", "--interval-ms", "1000"];
    let boards = Boards::spawn_with(bridge.mqtt_port, 3, "out", 5, &extra);
    let real_time = |s: &Seen| s.ts_ms > 1_704_067_200_000;
    let timed = eventually(Duration::from_secs(20), || async {
        let seen = seen.lock().unwrap();
        (seen.len() == 3
            && seen
                .values()
                .all(|v| v.iter().filter(|s| real_time(s)).count() >= 3))
        .then_some(())
    })
    .await;
    assert!(
        timed.is_some(),
        "boards never sent timed readings; log:\n{}",
        boards.log()
    );

    let down_at = swarm_bus::clock::unix_ms();
    bridge.kill();
    tokio::time::sleep(OUTAGE).await;
    let up_at = swarm_bus::clock::unix_ms();
    bridge.restart();

    // Each board is back with live readings and its whole backlog delivered.
    let back = eventually(Duration::from_secs(90), || async {
        let seen = seen.lock().unwrap();
        let done = seen.values().all(|v| {
            v.iter().any(|s| !s.replayed && s.ts_ms > up_at + 2_000)
                && v.iter().filter(|s| s.replayed).count() >= 50
        });
        done.then_some(())
    })
    .await;
    // Replays still in flight when the last live reading was seen settle within a second.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = seen.lock().unwrap().clone();
    let summary: Vec<(String, usize, usize)> = seen
        .iter()
        .map(|(k, v)| {
            let replayed = v.iter().filter(|s| s.replayed).count();
            (k.to_string(), v.len(), replayed)
        })
        .collect();
    assert!(
        back.is_some(),
        "(device, samples, replayed): {summary:?}\nboards' log:\n{}",
        boards.log()
    );
    for (device, readings) in &seen {
        // The outage is covered with no gap wider than two readings: nothing was lost.
        let mut times: Vec<u64> = readings
            .iter()
            .filter(|s| real_time(s))
            .map(|s| s.ts_ms)
            .filter(|t| (down_at - 3_000..=up_at + 2_000).contains(t))
            .collect();
        times.sort_unstable();
        times.dedup();
        let widest = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        assert!(
            times.first().is_some_and(|t| *t <= down_at)
                && times.last().is_some_and(|t| *t >= up_at),
            "{device}: readings from {:?} to {:?}, outage {down_at}..{up_at}",
            times.first(),
            times.last()
        );
        assert!(
            widest <= 2 * INTERVAL_MS + 500,
            "{device}: a gap of {widest} ms in the readings across the outage"
        );
        for s in readings.iter().filter(|s| s.replayed) {
            assert_eq!(
                s.stamp,
                Some(s.ts_ms),
                "{device}: a replayed reading's zenoh timestamp is the time it was taken"
            );
            assert!(s.ts_ms < swarm_bus::clock::unix_ms());
        }
        let replayed_in_outage = readings
            .iter()
            .filter(|s| s.replayed && (down_at..up_at).contains(&s.ts_ms))
            .count();
        assert!(
            replayed_in_outage >= 55,
            "{device}: {replayed_in_outage} readings of the 60 s outage replayed"
        );
    }
    // The bridge's current value is live, not the last replayed one.
    let now = swarm_bus::clock::unix_ms();
    let current =
        query_cbor::<Energy>(&observer, &keys().all(Leaf::Energy), Duration::from_secs(2))
            .await
            .unwrap();
    assert_eq!(current.len(), 3, "bridge log:\n{}", bridge.log_text());
    for r in current {
        let e = r.msg.expect("an energy sample");
        assert!(
            now.abs_diff(e.ts_ms) < 3_000,
            "{}: the current value is from {} ms ago",
            r.key,
            now.saturating_sub(e.ts_ms)
        );
    }
}

/// A replayed reading is history with a time of its own: one with no real time, or from the
/// future, is refused and counted; a good one reaches zenoh marked, at its time, and leaves
/// the current value alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_without_real_time_are_refused_and_good_ones_do_not_replace_the_current_value() {
    let rig = Rig::start().await;
    let (seen, _sub) = record_energy(&rig.observer).await;
    let device = id("esp-replay");
    // The two ways a swarm-bus reader takes a member's energy: current only, or marked.
    let current_only = subscribe::<Energy>(
        &rig.observer,
        keys().energy(&device),
        DropCounters::default(),
    )
    .await
    .unwrap();
    let marked = subscribe::<Energy>(
        &rig.observer,
        keys().energy(&device),
        DropCounters::default(),
    )
    .await
    .unwrap();
    let client = rig.mqtt_client(&device);
    let now = swarm_bus::clock::unix_ms();
    let sample = |ts_ms: u64| {
        encode(&Energy {
            ts_ms,
            ..samples::energy()
        })
    };
    let replay = keys().node_leaf(&device, Leaf::Replay);
    client
        .publish(
            keys().node_leaf(&device, Leaf::Status),
            QoS::AtLeastOnce,
            true,
            "online",
        )
        .await
        .unwrap();
    client
        .publish(keys().energy(&device), QoS::AtLeastOnce, false, sample(now))
        .await
        .unwrap();
    for ts in [0, 1_600_000_000_000, now + 3_600_000, now - 120_000] {
        client
            .publish(replay.clone(), QoS::AtLeastOnce, false, sample(ts))
            .await
            .unwrap();
    }
    let arrived = eventually(Duration::from_secs(10), || async {
        let seen = seen.lock().unwrap();
        (seen.get(&device).map_or(0, Vec::len) == 2).then_some(())
    })
    .await;
    let got = seen
        .lock()
        .unwrap()
        .get(&device)
        .cloned()
        .unwrap_or_default();
    assert!(arrived.is_some(), "{got:?}");
    assert!(!got[0].replayed && got[0].ts_ms == now);
    assert!(got[1].replayed && got[1].ts_ms == now - 120_000);
    assert_eq!(got[1].stamp, Some(now - 120_000));
    let stats = &rig.bridge().stats;
    assert_eq!(stats.dropped_bad_replay.load(Relaxed), 3);
    assert_eq!(stats.replayed.load(Relaxed), 1);
    let current = query_cbor::<Energy>(
        &rig.observer,
        &keys().energy(&device),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(current.len(), 1);
    assert_eq!(
        current[0].msg.as_ref().unwrap().ts_ms,
        now,
        "the current value stays"
    );
    let live = tokio::time::timeout(Duration::from_secs(2), current_only.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.msg.ts_ms, now);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), current_only.recv())
            .await
            .is_err(),
        "a live reader passes the replay over"
    );
    let mut both = Vec::new();
    for _ in 0..2 {
        let (r, late) = tokio::time::timeout(Duration::from_secs(2), marked.recv_marked())
            .await
            .unwrap()
            .unwrap();
        both.push((r.msg.ts_ms, late));
    }
    assert_eq!(
        both,
        [(now, false), (now - 120_000, true)],
        "a marked reader gets both, the replay marked (the dashboard places it by its time)"
    );
}

async fn state_of(observer: &Session, device: &NodeId) -> Option<NodeState> {
    let replies = query_cbor::<NodeState>(
        observer,
        &keys().node_leaf(device, Leaf::State),
        Duration::from_secs(2),
    )
    .await
    .ok()?;
    replies.into_iter().find_map(|r| r.msg.ok())
}

async fn present(observer: &Session, device: &NodeId) -> bool {
    member_keys(observer, &keys())
        .await
        .contains(&keys().node(device))
}

/// The sleeping board: told to deep-sleep 30 s, it says so before it goes; the bridge
/// keeps it present, says `asleep until` in its state, holds a command sent meanwhile and
/// hands it over as the board wakes, which obeys it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_asleep_30_s_stays_present_and_gets_the_command_held_for_it_at_its_wake() {
    let rig = Rig::start().await;
    let extra = ["--firmware-core", "--interval-ms", "1000"];
    let boards = Boards::spawn_with(rig.mqtt_port, 1, "nap", 5, &extra);
    let device = id("nap-0");
    let joined = eventually(Duration::from_secs(20), || async {
        state_of(&rig.observer, &device).await.map(|_| ())
    })
    .await;
    assert!(
        joined.is_some(),
        "board never joined; log:\n{}",
        boards.log()
    );
    let cmd_key = keys().node_leaf(&device, Leaf::Cmd);
    let sleep = Cmd {
        op: CommandOp::Sleep,
        arg: 30,
    };
    let told_at = swarm_bus::clock::unix_ms();
    publish(&rig.observer, &cmd_key, &sleep).await.unwrap();
    let asleep = eventually(Duration::from_secs(10), || async {
        state_of(&rig.observer, &device)
            .await
            .and_then(|s| s.asleep_until_ms)
    })
    .await
    .unwrap_or_else(|| panic!("never asleep in its state; log:\n{}", boards.log()));
    assert!(
        (told_at + 29_000..=told_at + 33_000).contains(&asleep),
        "wakes {} ms after the command",
        asleep - told_at
    );
    let faster = Cmd {
        op: CommandOp::SetInterval,
        arg: 2000,
    };
    publish(&rig.observer, &cmd_key, &faster).await.unwrap();
    let held = eventually(Duration::from_secs(5), || async {
        (rig.bridge().stats.commands_held.load(Relaxed) == 1).then_some(())
    })
    .await;
    assert!(held.is_some(), "the command was not held");
    // Silent, and present the whole time it sleeps.
    while swarm_bus::clock::unix_ms() + 2_000 < asleep {
        assert!(
            present(&rig.observer, &device).await,
            "the sleeping board was taken for gone; log:\n{}",
            boards.log()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Awake: the held command is obeyed, and the state says awake.
    let hb = rig
        .observer
        .declare_subscriber(keys().heartbeat(&device))
        .await
        .unwrap();
    let obeyed = eventually(Duration::from_secs(20), || async {
        let sample = tokio::time::timeout(Duration::from_secs(3), hb.recv_async())
            .await
            .ok()?
            .ok()?;
        let msg: swarm_bus::Heartbeat = swarm_bus::decode(&sample.payload().to_bytes()).ok()?;
        (msg.cadence_ms == 2000).then_some(())
    })
    .await;
    assert!(
        obeyed.is_some(),
        "held command not obeyed; log:\n{}",
        boards.log()
    );
    let awake = state_of(&rig.observer, &device).await.unwrap();
    assert_eq!(awake.asleep_until_ms, None);
    assert!(present(&rig.observer, &device).await);
}

/// A board that says it sleeps a second and never comes back is offline once it misses its
/// wake by the margin (30 s and a tenth of the sleep), not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_that_oversleeps_is_offline_after_the_margin() {
    let rig = Rig::start().await;
    let device = id("esp-nap");
    let client = rig.mqtt_client(&device);
    let status = keys().node_leaf(&device, Leaf::Status);
    client
        .publish(status.clone(), QoS::AtLeastOnce, true, "online")
        .await
        .unwrap();
    let online = eventually(Duration::from_secs(10), || async {
        present(&rig.observer, &device).await.then_some(())
    })
    .await;
    assert!(online.is_some());
    for bad in ["asleep soon", "asleep -1", "asleep 999999999"] {
        client
            .publish(status.clone(), QoS::AtLeastOnce, false, bad)
            .await
            .unwrap();
    }
    client
        .publish(status, QoS::AtLeastOnce, true, "asleep 1")
        .await
        .unwrap();
    let said_at = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.disconnect().await.unwrap();
    let bad = eventually(Duration::from_secs(5), || async {
        // `bad_status` is counted with the other refusals.
        (rig.bridge().stats.dropped_other.load(Relaxed) == 3).then_some(())
    })
    .await;
    assert!(bad.is_some(), "bad words not counted");
    // Present through the sleep and well into the margin.
    while said_at.elapsed() < Duration::from_secs(25) {
        assert!(
            present(&rig.observer, &device).await,
            "gone before the margin"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let gone = eventually(Duration::from_secs(15), || async {
        (!present(&rig.observer, &device).await).then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "still present {:?} after it said asleep 1",
        said_at.elapsed()
    );
    assert!(said_at.elapsed() >= Duration::from_secs(31));
}

/// `swarm-node firmware <args>` against the bridge's zenoh port, off the async runtime.
async fn firmware_cli(
    dir: &std::path::Path,
    zenoh_port: u16,
    args: &[&str],
) -> (i32, String, String) {
    let dir = dir.to_path_buf();
    let mut all: Vec<String> = vec!["firmware".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend(["--swarm", SWARM, "--no-multicast", "--connect"].map(String::from));
    all.push(endpoint(zenoh_port));
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        swarm_tests::run_cli(&dir, &refs)
    })
    .await
    .unwrap()
}

/// The rolling update: ten boards, the fourth of which cannot run the new image. The
/// push updates the first three, sees the fourth roll back, and stops; the six after it keep
/// their version. `firmware status --json` shows each board as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_push_to_ten_boards_stops_at_the_one_that_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let bridge = BridgeProcess::start(SWARM, &[]);
    let extra = [
        "--firmware-core",
        "--interval-ms",
        "1000",
        "--firmware-version",
        "0.1.0",
        "--broken-update",
        "upd-3",
        "--trial-deadline-ms",
        "4000",
    ];
    let boards = Boards::spawn_with(bridge.mqtt_port, 10, "upd", 5, &extra);
    let image_path = dir.path().join("fw.bin");
    let image = swarm_fw_core::image::sample("0.2.0", 5, 300_000);
    std::fs::write(&image_path, &image).unwrap();
    let sha = hex(&swarm_fw_core::update::sha256(&image));
    let status = || async {
        let (code, out, err) =
            firmware_cli(dir.path(), bridge.zenoh_port, &["status", "--json"]).await;
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let all_in = eventually(Duration::from_secs(20), || async {
        let s = status().await;
        (s.as_array().map_or(0, Vec::len) == 10).then_some(())
    })
    .await;
    assert!(all_in.is_some(), "boards' log:\n{}", boards.log());

    let image_arg = image_path.to_str().unwrap();
    let push = ["push", image_arg, "--class", "minimal", "--json"];
    let (code, out, err) = firmware_cli(dir.path(), bridge.zenoh_port, &push).await;
    assert_eq!(code, 1, "the push fails at upd-3: {out}\n{err}");
    let pushed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let outcomes: Vec<(String, String)> = pushed["boards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap().into(),
                b["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("upd-0", "updated"),
        ("upd-1", "updated"),
        ("upd-2", "updated"),
        ("upd-3", "rolled_back"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(outcomes, want, "{out}\nboards' log:\n{}", boards.log());
    assert_eq!(pushed["not_tried"].as_array().unwrap().len(), 6);
    assert!(
        pushed["boards"][3]["reason"]
            .as_str()
            .unwrap()
            .contains("did not rejoin")
    );

    let s = status().await;
    for board in s.as_array().unwrap() {
        let id = board["id"].as_str().unwrap();
        let n: u32 = id.trim_start_matches("upd-").parse().unwrap();
        if n < 3 {
            assert_eq!(board["version"], "0.2.0", "{board}");
            assert_eq!(board["image_sha256"], sha.as_str(), "{board}");
            assert_eq!(
                (board["slot"].as_u64(), board["phase"].as_str()),
                (Some(1), Some("confirmed"))
            );
        } else {
            assert_eq!(board["version"], "0.1.0", "{board}");
            assert_eq!(board["slot"].as_u64(), Some(0), "{board}");
            let phase = if n == 3 { "rolled_back" } else { "idle" };
            assert_eq!(board["phase"], phase, "{board}");
        }
    }
    // An image for another chip is refused before anything is sent.
    let other = dir.path().join("s3.bin");
    std::fs::write(&other, swarm_fw_core::image::sample("0.2.0", 9, 4096)).unwrap();
    let push = ["push", other.to_str().unwrap(), "--node", "upd-4"];
    let (code, _, err) = firmware_cli(dir.path(), bridge.zenoh_port, &push).await;
    assert_eq!(code, 2, "an error, as every refused input: {err}");
    assert!(err.contains("chip id 9"), "{err}");
}

/// A board asleep when the push starts gets the update when it wakes: its bridge holds the
/// offer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleeping_board_is_updated_when_it_wakes() {
    let dir = tempfile::tempdir().unwrap();
    let bridge = BridgeProcess::start(SWARM, &[]);
    let observer = loopback_session(None, Some(bridge.zenoh_port)).await;
    let extra = [
        "--firmware-core",
        "--interval-ms",
        "1000",
        "--firmware-version",
        "0.1.0",
    ];
    let boards = Boards::spawn_with(bridge.mqtt_port, 1, "doze", 5, &extra);
    let device = id("doze-0");
    let joined = eventually(Duration::from_secs(20), || async {
        state_of(&observer, &device).await.map(|_| ())
    })
    .await;
    assert!(joined.is_some(), "log:\n{}", boards.log());
    // Longer than the push's --timeout-s below: the time to answer starts at the wake.
    let sleep = Cmd {
        op: CommandOp::Sleep,
        arg: 20,
    };
    publish(&observer, &keys().node_leaf(&device, Leaf::Cmd), &sleep)
        .await
        .unwrap();
    let asleep = eventually(Duration::from_secs(10), || async {
        state_of(&observer, &device)
            .await
            .and_then(|s| s.asleep_until_ms)
    })
    .await;
    assert!(asleep.is_some(), "log:\n{}", boards.log());
    let image_path = dir.path().join("fw.bin");
    std::fs::write(
        &image_path,
        swarm_fw_core::image::sample("0.3.0", 5, 100_000),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let image_arg = image_path.to_str().unwrap();
    let push = [
        "push",
        image_arg,
        "--node",
        "doze-0",
        "--timeout-s",
        "10",
        "--json",
    ];
    let (code, out, err) = firmware_cli(dir.path(), bridge.zenoh_port, &push).await;
    assert_eq!(code, 0, "{out}\n{err}\nlog:\n{}", boards.log());
    assert!(out.contains("\"outcome\":\"updated\""), "{out}");
    assert!(
        started.elapsed() >= Duration::from_secs(15),
        "updated while asleep? {:?}",
        started.elapsed()
    );
    let state = state_of(&observer, &device).await.unwrap();
    assert_eq!(
        state.version, "0.3.0",
        "the board's state names its new version"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
