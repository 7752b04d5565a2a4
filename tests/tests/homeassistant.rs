//! Home Assistant MQTT discovery against a real mosquitto: the bridge in external mode, three
//! nodes over zenoh and three simulated boards on the broker, and a subscriber on
//! `homeassistant/#` standing in for Home Assistant.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use swarm_tests::boards::{Boards, SWARM};
use swarm_tests::{BridgeProcess, Mosquitto, Node, free_port};

#[derive(Debug, Clone)]
struct Msg {
    topic: String,
    payload: String,
    retain: bool,
    at: Instant,
}

/// Everything published on Home Assistant's topics and ours, in order of arrival.
struct Watcher {
    seen: Arc<Mutex<Vec<Msg>>>,
    client: rumqttc::Client,
}

impl Watcher {
    fn start(port: u16) -> Watcher {
        Self::start_named(
            port,
            "hass-watcher",
            &["homeassistant/#", &format!("swarm/{SWARM}/ha/#")],
        )
    }

    fn start_named(port: u16, id: &str, filters: &[&str]) -> Watcher {
        let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(64 * 1024, 64 * 1024);
        let (client, mut connection) = rumqttc::Client::new(options, 1000);
        for filter in filters {
            client
                .subscribe(*filter, rumqttc::QoS::AtLeastOnce)
                .expect("subscribing");
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        sink.lock().unwrap().push(Msg {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                            at: Instant::now(),
                        })
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("watcher: {e}");
                        return;
                    }
                }
            }
        });
        Watcher { seen, client }
    }

    fn all(&self) -> Vec<Msg> {
        self.seen.lock().unwrap().clone()
    }

    /// The last payload on each topic.
    fn last(&self) -> BTreeMap<String, String> {
        self.all()
            .into_iter()
            .map(|m| (m.topic, m.payload))
            .collect()
    }

    fn wait_for(&self, what: &str, within: Duration, ok: impl Fn(&Watcher) -> bool) {
        let deadline = Instant::now() + within;
        while !ok(self) {
            assert!(
                Instant::now() < deadline,
                "waited {within:?} for {what}; saw {:#?}",
                self.last()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .expect("publishing");
    }
}

fn config_topic(id: &str, field: &str) -> String {
    format!("homeassistant/sensor/{SWARM}_{id}/{field}/config")
}

fn availability(id: &str) -> String {
    format!("swarm/{SWARM}/ha/{id}/availability")
}

fn state(id: &str) -> String {
    format!("swarm/{SWARM}/ha/{id}/state")
}

/// Each member's discovery config carries what Home Assistant's MQTT sensor needs, and its
/// state has a number in the unit announced.
fn check_member(w: &Watcher, id: &str, fields: &[(&str, &str, &str)]) {
    let last = w.last();
    let values: Value = serde_json::from_str(&last[&state(id)]).expect("state is JSON");
    for (field, device_class, unit) in fields {
        let config: Value = serde_json::from_str(&last[&config_topic(id, field)])
            .unwrap_or_else(|e| panic!("{id} {field}: config not JSON: {e}"));
        for key in [
            "name",
            "unique_id",
            "state_topic",
            "value_template",
            "device",
        ] {
            assert!(
                config.get(key).is_some(),
                "{id} {field}: no {key}: {config}"
            );
        }
        assert_eq!(config["state_topic"], state(id));
        assert_eq!(config["device_class"], *device_class, "{id} {field}");
        assert_eq!(config["unit_of_measurement"], *unit, "{id} {field}");
        assert!(
            config["device"]["identifiers"][0]
                .as_str()
                .is_some_and(|s| s.contains(id))
        );
        let topics: Vec<&str> = config["availability"]
            .as_array()
            .expect("availability list")
            .iter()
            .filter_map(|a| a["topic"].as_str())
            .collect();
        assert!(topics.contains(&availability(id).as_str()), "{config}");
        assert_eq!(
            config["value_template"],
            format!("{{{{ value_json.{field} }}}}")
        );
        let value = values[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{id}: {field} is not a number in {values}"));
        assert!(value.is_finite() && value >= 0.0, "{id}: {field} = {value}");
    }
    let energy: Value = serde_json::from_str(&last[&config_topic(id, "energy_kwh")]).unwrap();
    assert_eq!(energy["state_class"], "total_increasing");
    assert_eq!(last[&availability(id)], "online");
}

fn configs_of(w: &Watcher, id: &str) -> BTreeSet<String> {
    let prefix = format!("homeassistant/sensor/{SWARM}_{id}/");
    w.all()
        .into_iter()
        .filter(|m| m.topic.starts_with(&prefix) && !m.payload.is_empty())
        .map(|m| m.topic)
        .collect()
}

/// A bridge in external mode on `mosquitto`, announcing to Home Assistant, forgetting members
/// away `forget_after_s`.
fn gateway_on(mosquitto: &Mosquitto, dir: &std::path::Path, forget_after_s: u64) -> BridgeProcess {
    let config = dir.join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            "[homeassistant]\nenabled = true\nforget_after_s = {forget_after_s}\nstate_every_s = 3\n"
        ),
    )
    .unwrap();
    BridgeProcess::start_external(
        SWARM,
        mosquitto.port,
        &["--config", config.to_str().unwrap()],
    )
}

#[test]
fn nodes_and_boards_appear_leave_come_back_and_are_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let mosquitto = Mosquitto::start();
    let bridge = gateway_on(&mosquitto, dir.path(), 6);
    let watcher = Watcher::start(mosquitto.port);
    let mut nodes: Vec<Node> = ["pi-1", "pi-2", "pc-1"]
        .iter()
        .map(|id| {
            let node_dir = dir.path().join(id);
            std::fs::create_dir_all(&node_dir).unwrap();
            Node::spawn(&node_dir, SWARM, id, free_port(), &[bridge.zenoh_port])
        })
        .collect();
    let mut boards = Boards::spawn(mosquitto.port, 3, "esp", 5);
    let members = ["pi-1", "pi-2", "pc-1", "esp-0", "esp-1", "esp-2"];

    // Every member appears, with its values.
    watcher.wait_for(
        "every member's configs and state",
        Duration::from_secs(30),
        |w| {
            let last = w.last();
            members.iter().all(|id| {
                last.contains_key(&config_topic(id, "energy_kwh"))
                    && last.contains_key(&config_topic(id, "role"))
                    && last.contains_key(&state(id))
                    && last.get(&availability(id)).is_some_and(|a| a == "online")
            })
        },
    );
    let last = watcher.last();
    assert_eq!(
        last[&format!("swarm/{SWARM}/ha/_gateway/availability")],
        "online"
    );
    let energy = [
        ("power_w", "power", "W"),
        ("energy_kwh", "energy", "kWh"),
        ("co2_g", "weight", "g"),
    ];
    for id in members {
        check_member(&watcher, id, &energy);
    }
    for id in ["esp-0", "esp-1", "esp-2"] {
        check_member(&watcher, id, &[("battery_pct", "battery", "%")]);
    }
    // The configs are retained: Home Assistant connecting later still sees them.
    let late = Watcher::start_named(mosquitto.port, "hass-late", &["homeassistant/#"]);
    late.wait_for("retained configs", Duration::from_secs(5), |w| {
        members.iter().all(|id| {
            w.all()
                .iter()
                .any(|m| m.retain && m.topic == config_topic(id, "power_w"))
        })
    });
    watcher.wait_for("roles and cadence modes", Duration::from_secs(15), |w| {
        let last = w.last();
        ["pi-1", "pi-2", "pc-1"].iter().all(|id| {
            serde_json::from_str::<Value>(&last[&state(id)])
                .is_ok_and(|s| s["role"].is_string() && s["cadence"].is_string())
        })
    });

    // kill -9 of a node: unavailable within seconds; back when it restarts.
    let killed_at = Instant::now();
    nodes[1].signal(nix::sys::signal::Signal::SIGKILL);
    watcher.wait_for("pi-2 unavailable", Duration::from_secs(10), |w| {
        w.last()[&availability("pi-2")] == "offline"
    });
    let flipped = watcher
        .all()
        .into_iter()
        .find(|m| m.topic == availability("pi-2") && m.payload == "offline" && m.at > killed_at)
        .unwrap();
    eprintln!(
        "pi-2 unavailable {:?} after kill -9",
        flipped.at - killed_at
    );
    let node_dir = dir.path().join("pi-2");
    nodes[1] = Node::spawn(&node_dir, SWARM, "pi-2", free_port(), &[bridge.zenoh_port]);
    watcher.wait_for("pi-2 available again", Duration::from_secs(15), |w| {
        w.last()[&availability("pi-2")] == "online"
    });

    // Home Assistant restarts: its birth brings every config out again, however many births.
    let before = watcher.all().len();
    let birth_at = Instant::now();
    for _ in 0..30 {
        watcher.publish("homeassistant/status", "online");
    }
    watcher.wait_for("a full re-announce", Duration::from_secs(10), |w| {
        let again: BTreeSet<String> = w.all()[before..]
            .iter()
            .filter(|m| m.topic.ends_with("/config"))
            .map(|m| m.topic.clone())
            .collect();
        members
            .iter()
            .all(|id| configs_of(w, id).iter().all(|t| again.contains(t)))
    });
    std::thread::sleep(Duration::from_secs(3));
    let mut repeats: BTreeMap<String, usize> = BTreeMap::new();
    for m in &watcher.all()[before..] {
        if m.topic.ends_with("/config") && m.at >= birth_at {
            *repeats.entry(m.topic.clone()).or_default() += 1;
        }
    }
    let most = repeats.values().max().copied().unwrap_or(0);
    assert!(
        most <= 2,
        "30 births re-announced a config {most} times: {repeats:?}"
    );

    // The boards go for good: unavailable, then removed.
    boards.signal(nix::sys::signal::Signal::SIGKILL);
    watcher.wait_for("boards unavailable", Duration::from_secs(15), |w| {
        let last = w.last();
        ["esp-0", "esp-1", "esp-2"]
            .iter()
            .all(|id| last[&availability(id)] == "offline")
    });
    watcher.wait_for("boards removed", Duration::from_secs(20), |w| {
        let last = w.last();
        ["esp-0", "esp-1", "esp-2"].iter().all(|id| {
            configs_of(w, id)
                .iter()
                .all(|t| last.get(t).is_some_and(|p| p.is_empty()))
        })
    });
    // The nodes stay.
    let last = watcher.last();
    for id in ["pi-1", "pi-2", "pc-1"] {
        assert!(
            !last[&config_topic(id, "power_w")].is_empty(),
            "{id} removed"
        );
    }

    // The gateway vanishes: its Last-Will makes every member unavailable at once.
    drop(bridge);
    watcher.wait_for("gateway unavailable", Duration::from_secs(10), |w| {
        w.last()[&format!("swarm/{SWARM}/ha/_gateway/availability")] == "offline"
    });
    drop(nodes);
}

/// The same through the gateway's own broker: retained configs for a late Home Assistant, and
/// its birth heard although it is no mesh topic.
#[test]
fn the_embedded_broker_keeps_configs_and_hears_births() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    std::fs::write(&config, "[homeassistant]\nenabled = true\n").unwrap();
    let bridge = BridgeProcess::start(SWARM, &["--config", config.to_str().unwrap()]);
    let _boards = Boards::spawn(bridge.mqtt_port, 1, "emb", 5);
    let watcher = Watcher::start(bridge.mqtt_port);
    watcher.wait_for("emb-0's configs and state", Duration::from_secs(20), |w| {
        let last = w.last();
        last.contains_key(&config_topic("emb-0", "battery_pct"))
            && last.contains_key(&state("emb-0"))
    });
    check_member(
        &watcher,
        "emb-0",
        &[("power_w", "power", "W"), ("battery_pct", "battery", "%")],
    );
    let late = Watcher::start_named(bridge.mqtt_port, "hass-late", &["homeassistant/#"]);
    late.wait_for("retained configs", Duration::from_secs(5), |w| {
        w.all()
            .iter()
            .any(|m| m.retain && m.topic == config_topic("emb-0", "battery_pct"))
    });
    let before = late.all().len();
    late.publish("homeassistant/status", "online");
    late.wait_for("a re-announce", Duration::from_secs(5), |w| {
        w.all()[before..]
            .iter()
            .any(|m| m.topic == config_topic("emb-0", "power_w"))
    });
}

/// The gateway is down while a board leaves for good: once restarted, it reads back the
/// availability its earlier run retained on the broker, says the board offline after the grace
/// and removes it; a board still there stays available throughout.
#[test]
fn a_restarted_gateway_clears_a_member_that_left_while_it_was_down() {
    let dir = tempfile::tempdir().unwrap();
    let mosquitto = Mosquitto::start();
    let mut bridge = gateway_on(&mosquitto, dir.path(), 15);
    let watcher = Watcher::start(mosquitto.port);
    let stays = Boards::spawn(mosquitto.port, 1, "stays", 5);
    let mut goes = Boards::spawn(mosquitto.port, 1, "goes", 5);
    watcher.wait_for("both boards announced", Duration::from_secs(30), |w| {
        let last = w.last();
        ["stays-0", "goes-0"].iter().all(|id| {
            last.contains_key(&config_topic(id, "power_w"))
                && last.get(&availability(id)).is_some_and(|a| a == "online")
        })
    });

    bridge.kill();
    goes.signal(nix::sys::signal::Signal::SIGKILL);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        watcher.last()[&availability("goes-0")],
        "online",
        "nobody was there to say otherwise"
    );
    let restarted_at = Instant::now();
    bridge.restart();
    watcher.wait_for(
        "the departed board unavailable",
        Duration::from_secs(25),
        |w| w.last()[&availability("goes-0")] == "offline",
    );
    // Said offline after the grace (10 s), removed after forget_after_s (15 s).
    watcher.wait_for("the departed board removed", Duration::from_secs(20), |w| {
        let last = w.last();
        last.get(&config_topic("goes-0", "power_w"))
            .is_some_and(|p| p.is_empty())
            && last
                .get(&availability("goes-0"))
                .is_some_and(|p| p.is_empty())
    });
    let stays_offline = watcher
        .all()
        .into_iter()
        .filter(|m| m.at > restarted_at && m.topic == availability("stays-0"))
        .find(|m| m.payload != "online");
    assert!(
        stays_offline.is_none(),
        "the board still there was said {stays_offline:?}"
    );
    assert_eq!(watcher.last()[&availability("stays-0")], "online");
    let log = bridge.log_text();
    assert!(
        !log.contains("bad_topic"),
        "its own availability topics came back as refusals:\n{log}"
    );
    drop(stays);
}
