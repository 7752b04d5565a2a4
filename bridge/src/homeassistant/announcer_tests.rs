use super::*;
use swarm_bus::{Role, SwarmName, samples};

const DAY_MS: u64 = 86_400_000;

fn announcer(max: usize) -> Announcer {
    let keys = SwarmKeys::new(SwarmName::new("home").unwrap());
    Announcer::new(keys, "homeassistant".into(), max, DAY_MS)
}

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn topics(out: &[Publish]) -> Vec<&str> {
    out.iter().map(|p| p.topic.as_str()).collect()
}

fn json(p: &Publish) -> Value {
    serde_json::from_str(&p.payload).unwrap()
}

#[test]
fn a_member_appears_with_the_sensors_it_reports() {
    let mut a = announcer(8);
    let out = a.handle(0, Input::Joined(id("pi-1")));
    assert_eq!(topics(&out), ["swarm/home/ha/pi-1/availability"]);
    assert_eq!(out[0].payload, "online");
    assert!(out[0].retain);

    let mut e = samples::energy();
    e.battery_pct = None;
    e.temp_c = Some(48.5);
    let out = a.handle(1, Input::Energy(id("pi-1"), e.clone()));
    let configs: Vec<&str> = topics(&out)
        .into_iter()
        .filter(|t| t.ends_with("/config"))
        .collect();
    assert_eq!(
        configs,
        [
            "homeassistant/sensor/home_pi-1/power_w/config",
            "homeassistant/sensor/home_pi-1/energy_kwh/config",
            "homeassistant/sensor/home_pi-1/co2_g/config",
            "homeassistant/sensor/home_pi-1/temperature_c/config",
        ],
        "no battery on a member without one"
    );
    let state = out.last().unwrap();
    assert_eq!(state.topic, "swarm/home/ha/pi-1/state");
    assert!(!state.retain);
    let v = json(state);
    assert_eq!(v["temperature_c"], 48.5);
    assert!((v["energy_kwh"].as_f64().unwrap() - f64::from(e.wh_total) / 1000.0).abs() < 1e-6);

    // The same sensors again: only the state.
    e.watts += 1.0;
    let out = a.handle(2, Input::Energy(id("pi-1"), e));
    assert_eq!(topics(&out), ["swarm/home/ha/pi-1/state"]);
}

#[test]
fn nothing_from_a_non_member_creates_state() {
    let mut a = announcer(8);
    assert!(
        a.handle(0, Input::Energy(id("ghost"), samples::energy()))
            .is_empty()
    );
    assert!(
        a.handle(0, Input::Heartbeat(id("ghost"), samples::heartbeat(4)))
            .is_empty()
    );
    assert!(a.handle(0, Input::Left(id("ghost"))).is_empty());
    assert_eq!(a.known(), 0);
    assert_eq!(a.take_refusals(), [Refusal::NotMember, Refusal::NotMember]);
}

#[test]
fn the_table_is_bounded() {
    let mut a = announcer(2);
    a.handle(0, Input::Joined(id("a")));
    a.handle(0, Input::Joined(id("b")));
    assert!(a.handle(0, Input::Joined(id("c"))).is_empty());
    assert_eq!(a.known(), 2);
    assert_eq!(a.take_refusals(), [Refusal::Full]);
    // One already known may come back.
    assert_eq!(a.handle(0, Input::Joined(id("a"))).len(), 1);
}

#[test]
fn impossible_values_are_left_out_and_counted() {
    let mut a = announcer(8);
    a.handle(0, Input::Joined(id("esp-0")));
    let mut e = samples::energy();
    e.watts = f32::NAN;
    e.wh_total = -3.0;
    e.battery_pct = Some(250);
    e.temp_c = Some(f32::INFINITY);
    let out = a.handle(0, Input::Energy(id("esp-0"), e));
    assert_eq!(
        topics(&out),
        [
            "homeassistant/sensor/home_esp-0/co2_g/config",
            "swarm/home/ha/esp-0/state"
        ]
    );
    let state = json(out.last().unwrap());
    assert!(state.get("power_w").is_none());
    assert_eq!(a.take_refusals(), [Refusal::BadValue]);
}

#[test]
fn a_heartbeat_only_speaks_when_the_role_changes() {
    let mut a = announcer(8);
    a.handle(0, Input::Joined(id("pi-1")));
    let mut hb = samples::heartbeat(4);
    hb.role = Role::Follower;
    let out = a.handle(0, Input::Heartbeat(id("pi-1"), hb.clone()));
    assert_eq!(
        topics(&out),
        [
            "homeassistant/sensor/home_pi-1/role/config",
            "swarm/home/ha/pi-1/state"
        ]
    );
    assert!(
        a.handle(1, Input::Heartbeat(id("pi-1"), hb.clone()))
            .is_empty()
    );
    hb.role = Role::Leader;
    let out = a.handle(2, Input::Heartbeat(id("pi-1"), hb));
    assert_eq!(json(&out[0])["role"], "leader");
}

#[test]
fn the_state_names_cadence_mode_and_version() {
    let mut a = announcer(8);
    a.handle(0, Input::Joined(id("pi-1")));
    let mut state = samples::node_state();
    state.cadence_mode = CadenceMode::Conservative;
    state.version = "9.9.9".into();
    let out = a.handle(0, Input::State(id("pi-1"), state));
    let cadence = out
        .iter()
        .find(|p| p.topic.ends_with("/cadence/config"))
        .unwrap();
    assert_eq!(json(cadence)["device"]["sw_version"], "9.9.9");
    assert_eq!(json(out.last().unwrap())["cadence"], "conservative");
}

#[test]
fn leaving_is_unavailable_and_a_day_away_is_removal() {
    let mut a = announcer(8);
    a.handle(0, Input::Joined(id("esp-0")));
    a.handle(0, Input::Energy(id("esp-0"), samples::energy()));
    let out = a.handle(10, Input::Left(id("esp-0")));
    assert_eq!(out[0].payload, "offline");
    assert!(a.handle(10 + DAY_MS - 1, Input::Tick).is_empty());
    // Back within the day: kept.
    a.handle(20, Input::Joined(id("esp-0")));
    a.handle(30, Input::Left(id("esp-0")));
    let out = a.handle(30 + DAY_MS, Input::Tick);
    assert!(!out.is_empty());
    assert!(out.iter().all(|p| p.retain && p.payload.is_empty()));
    assert!(topics(&out).contains(&"homeassistant/sensor/home_esp-0/battery_pct/config"));
    assert!(topics(&out).contains(&"swarm/home/ha/esp-0/availability"));
    assert_eq!(a.known(), 0);
}

#[test]
fn a_birth_brings_everything_out_once_per_tick() {
    let mut a = announcer(8);
    for m in ["a", "b"] {
        a.handle(0, Input::Joined(id(m)));
        a.handle(0, Input::Energy(id(m), samples::energy()));
    }
    a.handle(0, Input::Left(id("b")));
    for _ in 0..50 {
        assert!(a.handle(1, Input::Birth).is_empty());
    }
    let out = a.handle(2, Input::Tick);
    let per_member = Sensor::ALL.len() - 2 + 2; // 5 energy sensors, availability, state
    assert_eq!(out.len(), 2 * per_member);
    let b_avail = out
        .iter()
        .find(|p| p.topic == "swarm/home/ha/b/availability")
        .unwrap();
    assert_eq!(b_avail.payload, "offline");
    assert!(a.handle(3, Input::Tick).is_empty());
}

#[test]
fn members_remembered_from_an_earlier_run_are_said_offline_then_forgotten_unless_they_return() {
    let mut a = announcer(3);
    // The restarted gateway finds two availabilities retained by its earlier run.
    assert!(a.handle(0, Input::Remembered(id("gone"))).is_empty());
    assert!(a.handle(0, Input::Remembered(id("back"))).is_empty());
    assert_eq!(a.known(), 2);
    // "back" shows its token within the grace: online, never said offline.
    assert_eq!(
        topics(&a.handle(1_500, Input::Joined(id("back")))),
        ["swarm/home/ha/back/availability"]
    );
    assert!(a.handle(REMEMBER_GRACE_MS - 1, Input::Tick).is_empty());
    let out = a.handle(REMEMBER_GRACE_MS, Input::Tick);
    assert_eq!(topics(&out), ["swarm/home/ha/gone/availability"]);
    assert_eq!((out[0].payload.as_str(), out[0].retain), ("offline", true));
    assert!(
        a.handle(REMEMBER_GRACE_MS + 1_000, Input::Tick).is_empty(),
        "said once"
    );
    // A day later every sensor it may have had is cleared, and its availability.
    let out = a.handle(DAY_MS, Input::Tick);
    assert_eq!(out.len(), Sensor::ALL.len() + 1);
    assert!(out.iter().all(|p| p.payload.is_empty() && p.retain));
    assert!(topics(&out).contains(&"homeassistant/sensor/home_gone/battery_pct/config"));
    assert_eq!(a.known(), 1);
    // Remembering a member known live changes nothing.
    assert!(a.handle(DAY_MS, Input::Remembered(id("back"))).is_empty());
    assert!(a.handle(DAY_MS + 20_000, Input::Tick).is_empty());
}

#[test]
fn remembered_members_never_keep_a_live_one_out() {
    let mut a = announcer(2);
    // Forged retained availabilities fill the table...
    a.handle(0, Input::Remembered(id("forged-1")));
    a.handle(0, Input::Remembered(id("forged-2")));
    assert!(a.handle(0, Input::Remembered(id("forged-3"))).is_empty());
    assert_eq!(a.take_refusals(), [Refusal::Full]);
    // ...and a live member takes a place: the one it replaces is cleared.
    let out = a.handle(1, Input::Joined(id("pi-1")));
    assert_eq!(
        out.last().map(|p| (p.topic.as_str(), p.payload.as_str())),
        Some(("swarm/home/ha/pi-1/availability", "online"))
    );
    assert!(
        out.iter()
            .any(|p| p.topic == "swarm/home/ha/forged-1/availability" && p.payload.is_empty())
    );
    assert_eq!(a.known(), 2);
    a.handle(2, Input::Joined(id("pi-2")));
    assert!(
        a.handle(3, Input::Joined(id("pi-3"))).is_empty(),
        "live ones are kept"
    );
    assert_eq!(a.take_refusals(), [Refusal::Full]);
}
