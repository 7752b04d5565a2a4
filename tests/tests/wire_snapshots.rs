//! Every message's bytes and JSON form, snapshotted: a change to the wire is a reviewed diff.
//! Also the byte budgets from the design: heartbeat ≤ 40 B, energy ≤ 64 B.

use swarm_bus::*;

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The snapshot text of one message: size, hex, and the JSON a query would return.
fn wire<T: WireMessage>(msg: &T) -> String {
    let bytes = encode(msg);
    let back: T = decode(&bytes).expect("round trip");
    assert_eq!(encode(&back), bytes, "{} does not round-trip", T::NAME);
    format!(
        "{} bytes\n{}\n{}",
        bytes.len(),
        hex(&bytes),
        serde_json::to_string_pretty(&json::to_json(msg, None)).unwrap()
    )
}

#[test]
fn heartbeat_wire() {
    insta::assert_snapshot!(wire(&samples::heartbeat(8)));
}

#[test]
fn leader_heartbeat_wire() {
    // A leader names no leader (the key names it) and states its count of voters.
    insta::assert_snapshot!(wire(&Heartbeat {
        role: Role::Leader,
        leader: None,
        voters: Some(1000),
        ..samples::heartbeat(8)
    }));
}

#[test]
fn board_heartbeat_with_time_wire() {
    // A board stamps its heartbeat with the gateway's time (docs/bridge.md#time); nodes
    // leave the stamp out, so their heartbeats above are unchanged.
    insta::assert_snapshot!(wire(&Heartbeat {
        at_ms: Some(1_790_000_000_000),
        ..samples::board_heartbeat(7, std::time::Duration::from_secs(10))
    }));
}

#[test]
fn vote_request_wire() {
    insta::assert_snapshot!(wire(&VoteRequest {
        term: 43,
        pre_vote: true,
        class: DeviceClass::Standard,
        voters: 5,
    }));
}

#[test]
fn vote_reply_wire() {
    insta::assert_snapshot!(wire(&VoteReply {
        term: 43,
        candidate: id("pi-gw-02"),
        granted: true,
        pre_vote: false,
    }));
}

#[test]
fn energy_wire() {
    insta::assert_snapshot!(wire(&samples::energy()));
}

#[test]
fn swarm_energy_wire() {
    insta::assert_snapshot!(wire(&samples::swarm_energy()));
}

#[test]
fn task_spec_wire() {
    insta::assert_snapshot!(wire(&samples::task_spec()));
}

#[test]
fn replicated_task_spec_wire() {
    let spec = swarm_bus::TaskSpec {
        replicas: Some(3),
        pick: Some(swarm_bus::TaskPick::Majority),
        ..samples::task_spec()
    };
    insta::assert_snapshot!(wire(&spec));
}

#[test]
fn a_spec_naming_a_pick_nobody_defined_does_not_decode() {
    let spec = swarm_bus::TaskSpec {
        replicas: Some(3),
        pick: Some(swarm_bus::TaskPick::BestOf),
        ..samples::task_spec()
    };
    let mut bytes = encode(&spec);
    assert_eq!(bytes.last(), Some(&(swarm_bus::TaskPick::BestOf as u8)));
    *bytes.last_mut().unwrap() = 9;
    assert!(decode::<swarm_bus::TaskSpec>(&bytes).is_err());
}

#[test]
fn task_ack_wire() {
    insta::assert_snapshot!(wire(&samples::task_ack()));
}

#[test]
fn task_assign_wire() {
    insta::assert_snapshot!(wire(&samples::task_assign()));
}

#[test]
fn worker_info_wire() {
    insta::assert_snapshot!(wire(&samples::worker_info()));
}

#[test]
fn task_record_wire() {
    insta::assert_snapshot!(wire(&samples::task_record()));
}

#[test]
fn proposal_wire() {
    insta::assert_snapshot!(wire(&samples::proposal()));
}

#[test]
fn ballot_wire() {
    insta::assert_snapshot!(wire(&samples::ballot()));
}

#[test]
fn decision_wire() {
    insta::assert_snapshot!(wire(&samples::decision()));
}

#[test]
fn task_result_wire() {
    insta::assert_snapshot!(wire(&samples::task_result()));
}

#[test]
fn task_answer_wire() {
    insta::assert_snapshot!(wire(&samples::task_answer()));
}

/// A reading taken on three boards, decided by its median: every answer with its vote, the
/// value, and the joules the three cost together.
#[test]
fn decided_replicated_result_wire() {
    let dissent = TaskAnswer {
        worker: id("esp-07"),
        output: Payload::from(&b"85.0"[..]),
        agrees: Some(false),
        ..samples::task_answer()
    };
    let result = TaskResult {
        worker: Some(id("esp-04")),
        output: Payload::from(&b"21.5"[..]),
        joules: Some(0.012),
        answers: Some(vec![samples::task_answer(), dissent]),
        value: Some(21.5),
        ..samples::task_result()
    };
    insta::assert_snapshot!(wire(&result));
}

/// A replicated task in a voter's copy while its vote runs: one replica answered, one out.
#[test]
fn replicated_task_record_wire() {
    let out = TaskAnswer {
        worker: id("esp-07"),
        attempt: 3,
        state: TaskState::Running,
        output: Payload::default(),
        score: None,
        joules: None,
        agrees: None,
    };
    let answered = TaskAnswer {
        agrees: None,
        ..samples::task_answer()
    };
    let record = TaskRecord {
        replicas: Some(vec![answered, out]),
        ..samples::task_record()
    };
    insta::assert_snapshot!(wire(&record));
}

#[test]
fn an_undecided_task_is_final_and_named() {
    let result = TaskResult {
        state: TaskState::Undecided,
        ..samples::task_result()
    };
    assert!(TaskState::Undecided.is_final());
    assert_eq!(json::to_json(&result, None)["state"], "undecided");
    assert_eq!(decode::<TaskResult>(&encode(&result)).unwrap(), result);
}

#[test]
fn binary_output_is_numbers_for_humans_and_bytes_on_the_wire() {
    let result = TaskResult {
        output: Payload(vec![0xff, 0x00, 0x41]),
        ..samples::task_result()
    };
    let json = json::to_json(&result, None);
    assert_eq!(json["output"], serde_json::json!([255, 0, 65]));
    let back: TaskResult = serde_json::from_value(json).unwrap();
    assert_eq!(back, result);
    let bytes = encode(&result);
    assert_eq!(decode::<TaskResult>(&bytes).unwrap(), result);
}

#[test]
fn every_power_source_by_name() {
    let names: Vec<&str> = PowerSource::ALL.iter().map(|s| s.as_str()).collect();
    insta::assert_snapshot!(names.join(" "));
}

#[test]
fn node_state_wire() {
    insta::assert_snapshot!(wire(&samples::node_state()));
}

#[test]
fn leader_info_wire() {
    insta::assert_snapshot!(wire(&LeaderInfo {
        node: id("pi-gw-02"),
        role: Role::Follower,
        term: 0,
        leader: None,
        since_ms: None,
        voters: None,
        heir: None,
    }));
}

/// A leader announcing itself to a large swarm: the voter count rides in the optional tail.
#[test]
fn leader_announcement_wire() {
    insta::assert_snapshot!(wire(&LeaderInfo {
        node: id("pi-gw-02"),
        role: Role::Leader,
        term: 7,
        leader: Some(id("pi-gw-02")),
        since_ms: Some(1_700_000_000_000),
        voters: Some(1000),
        heir: Some(id("pi-gw-07")),
    }));
}

#[test]
fn command_wire() {
    insta::assert_snapshot!(wire(&Command {
        op: CommandOp::SetInterval,
        arg: 2000,
    }));
}

/// The gateway's time for a board: the Unix second that starts as it is sent.
#[test]
fn time_command_wire() {
    insta::assert_snapshot!(wire(&Command {
        op: CommandOp::Time,
        arg: 1_780_000_000,
    }));
}

/// A board's state as its bridge serves it while the board deep-sleeps: the wake time and its
/// clock's skew against the gateway on the tail.
#[test]
fn asleep_board_state_wire() {
    insta::assert_snapshot!(wire(&NodeState {
        class: swarm_bus::DeviceClass::Minimal,
        role: Role::Observer,
        term: 0,
        leader: None,
        cadence_ms: 30_000,
        peers: Vec::new(),
        asleep_until_ms: Some(1_780_000_030_000),
        clock_skew_ms: Some(-12),
        ..samples::node_state()
    }));
}

/// What a board says on its retained status topic before a deep sleep: plain words.
#[test]
fn asleep_status_words() {
    let words = swarm_bus::Presence::Asleep { secs: 30 }.to_bytes();
    insta::assert_snapshot!(String::from_utf8(words).unwrap(), @"asleep 30");
}

/// An update offered to a board: a 640 KiB image in 2 KiB chunks.
#[test]
fn firmware_offer_wire() {
    insta::assert_snapshot!(wire(&FirmwareOffer {
        version: "0.2.0".into(),
        sha256: Digest((0..32).collect()),
        size: 655_360,
        chunk_bytes: 2048,
    }));
}

/// A piece of it (8 bytes here; 2048 in practice, 2,062 on the wire).
#[test]
fn firmware_chunk_wire() {
    let chunk = FirmwareChunk {
        image: FirmwareChunk::image_of(&(0..32).collect::<Vec<u8>>()),
        offset: 4096,
        data: Payload(vec![0xE9, 0x03, 0x02, 0x20, 0, 0, 0, 0]),
    };
    insta::assert_snapshot!(wire(&chunk));
    let full = FirmwareChunk {
        data: Payload(vec![0; 2048]),
        ..chunk
    };
    assert_eq!(encode(&full).len(), 2_062);
}

/// A board halfway through an update, running an image flashed by USB.
#[test]
fn firmware_report_wire() {
    insta::assert_snapshot!(wire(&FirmwareReport {
        version: "0.1.0".into(),
        image_sha256: Digest(Vec::new()),
        slot: 0,
        phase: FirmwarePhase::Receiving,
        update_sha256: Digest((0..32).collect()),
        next_offset: 327_680,
        size: 655_360,
        reason: None,
    }));
}

#[test]
fn leave_wire() {
    insta::assert_snapshot!(wire(&Leave { term: 42 }));
}

#[test]
fn heartbeat_fits_40_bytes_with_ids_up_to_23_characters() {
    let worst = Heartbeat {
        term: u64::from(u16::MAX),
        seq: u64::from(u32::MAX),
        cadence_ms: u32::from(u16::MAX),
        role: Role::Candidate,
        ..samples::heartbeat(23)
    };
    let size = encode(&worst).len();
    assert!(size <= 40, "heartbeat is {size} bytes");
    let leader = Heartbeat {
        role: Role::Leader,
        leader: None,
        voters: Some(u32::from(u16::MAX)),
        ..worst
    };
    let size = encode(&leader).len();
    assert!(size <= 40, "a leader's heartbeat is {size} bytes");
}

#[test]
fn energy_fits_64_bytes_with_every_field_at_its_largest() {
    let worst = Energy {
        ts_ms: u64::MAX,
        watts: f32::MAX,
        cpu_pct: 100,
        temp_c: Some(f32::MIN),
        battery_pct: Some(100),
        charging: Some(true),
        wh_total: f32::MAX,
        co2_g: f32::MAX,
        source: PowerSource::Ina226,
        eff_pct: Some(100),
    };
    let size = encode(&worst).len();
    assert!(size <= 64, "energy is {size} bytes");
}
