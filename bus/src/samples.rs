//! Representative messages, shared by the size benchmark and the wire snapshots so both
//! measure the same thing.

use crate::messages::*;
use crate::names::NodeId;

/// A follower's heartbeat naming a leader with an id of `leader_id_len` characters.
pub fn heartbeat(leader_id_len: usize) -> Heartbeat {
    let leader = "pi-gw-01-abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrst";
    Heartbeat {
        term: 42,
        role: Role::Follower,
        leader: NodeId::new(&leader[..leader_id_len.clamp(1, 63)]).ok(),
        seq: 1_000_000,
        cadence_ms: 500,
        class: DeviceClass::Full,
        voters: None,
        at_ms: None,
    }
}

/// A leader's heartbeat at `term`, numbered `seq`.
pub fn leader_heartbeat(term: u64, seq: u64) -> Heartbeat {
    Heartbeat {
        term,
        role: Role::Leader,
        leader: None,
        seq,
        cadence_ms: 500,
        class: DeviceClass::Full,
        voters: None,
        at_ms: None,
    }
}

/// The heartbeat a board sends: an observer of class minimal advertising its interval.
pub fn board_heartbeat(seq: u64, interval: core::time::Duration) -> Heartbeat {
    Heartbeat {
        term: 0,
        role: Role::Observer,
        leader: None,
        seq,
        cadence_ms: interval.as_millis().min(u128::from(u32::MAX)) as u32,
        class: DeviceClass::Minimal,
        voters: None,
        at_ms: None,
    }
}

/// An energy sample with every optional field present.
pub fn energy() -> Energy {
    Energy {
        ts_ms: 1_790_000_000_000,
        watts: 3.25,
        source: PowerSource::Model,
        cpu_pct: 12,
        temp_c: Some(48.5),
        battery_pct: Some(87),
        charging: Some(false),
        wh_total: 1234.5,
        co2_g: 592.5,
        eff_pct: Some(41),
    }
}

/// A swarm total of three nodes and a bridged device.
pub fn swarm_energy() -> SwarmEnergy {
    SwarmEnergy {
        ts_ms: 1_790_000_000_000,
        leader: NodeId::new("pi-gw-01").expect("a valid id"),
        term: 7,
        nodes: 4,
        watts: 14.75,
        wh_total: 2469.5,
        co2_g: 1185.25,
        by_class: alloc::vec![
            Share {
                kind: DeviceClass::Full,
                nodes: 2,
                watts: 11.5
            },
            Share {
                kind: DeviceClass::Standard,
                nodes: 1,
                watts: 3.0
            },
            Share {
                kind: DeviceClass::Minimal,
                nodes: 1,
                watts: 0.25
            },
        ],
        by_source: alloc::vec![
            Share {
                kind: PowerSource::Model,
                nodes: 2,
                watts: 6.25
            },
            Share {
                kind: PowerSource::Rapl,
                nodes: 1,
                watts: 8.25
            },
            Share {
                kind: PowerSource::Device,
                nodes: 1,
                watts: 0.25
            },
        ],
        eff_pct: Some(23),
    }
}

/// A task asking a camera for a picture after another task.
pub fn task_spec() -> TaskSpec {
    TaskSpec {
        cap: alloc::string::String::from("camera.capture"),
        priority: Priority::High,
        after: alloc::vec![crate::names::TaskId::new("t-0001").expect("a valid id")],
        timeout_ms: 30_000,
        retries: 2,
        payload: crate::payload::Payload::from(&b"{\"res\":\"720p\"}"[..]),
        replicas: None,
        pick: None,
    }
}

/// The echo handler's result.
pub fn task_result() -> TaskResult {
    TaskResult {
        state: TaskState::Succeeded,
        worker: NodeId::new("pi-gw-02").ok(),
        attempts: 1,
        exit_code: Some(0),
        output: crate::payload::Payload::from(&b"hello"[..]),
        duration_ms: 3,
        joules: Some(0.02),
        reason: None,
        score: None,
        answers: None,
        value: None,
    }
}

/// The leader's yes to a submission.
pub fn task_ack() -> TaskAck {
    TaskAck {
        accepted: true,
        by: NodeId::new("pi-gw-01").expect("a valid id"),
        reason: None,
    }
}

/// The camera task's first attempt, handed to a worker.
pub fn task_assign() -> TaskAssign {
    let spec = task_spec();
    TaskAssign {
        term: 3,
        worker: NodeId::new("pi-gw-02").expect("a valid id"),
        attempt: 1,
        cap: spec.cap,
        timeout_ms: spec.timeout_ms,
        payload: spec.payload,
    }
}

/// A node offering the default built-in and a camera.
pub fn worker_info() -> WorkerInfo {
    WorkerInfo {
        caps: alloc::vec!["camera.capture".into(), "echo".into()],
        idempotent: alloc::vec!["echo".into()],
        slots: 4,
    }
}

/// The camera task in a voter's table once its worker reported.
pub fn task_record() -> TaskRecord {
    TaskRecord {
        id: crate::names::TaskId::new("t-0002").expect("a valid id"),
        spec: task_spec(),
        state: TaskState::Running,
        worker: NodeId::new("pi-gw-02").ok(),
        attempt: 1,
        result: Some(task_result()),
        replicas: None,
    }
}

/// One replica's answer to a reading taken on three boards, agreeing with the decision.
pub fn task_answer() -> TaskAnswer {
    TaskAnswer {
        worker: NodeId::new("esp-04").expect("a valid id"),
        attempt: 2,
        state: TaskState::Succeeded,
        output: crate::payload::Payload::from(&b"21.5"[..]),
        score: None,
        joules: Some(0.004),
        agrees: Some(true),
    }
}

/// A proposal to pin the whole swarm to the conservative cadence.
pub fn proposal() -> Proposal {
    Proposal {
        op: CommandOp::SetMode,
        arg: CadenceMode::Conservative as u32,
    }
}

/// A voter on battery saying no.
pub fn ballot() -> Ballot {
    Ballot {
        yes: false,
        reason: Some("on battery at 12%".into()),
    }
}

/// Two yes of three voters, and one outsider ignored.
pub fn decision() -> Decision {
    let id = |s: &str| NodeId::new(s).expect("a valid id");
    Decision {
        term: 3,
        op: CommandOp::SetMode,
        arg: CadenceMode::Conservative as u32,
        accepted: true,
        voters: 3,
        yes: alloc::vec![id("pi-gw-01"), id("pi-gw-02")],
        no: alloc::vec![id("pi-gw-03")],
        ignored: alloc::vec![id("intruder")],
    }
}

/// A leader's state as its `state` queryable answers it.
pub fn node_state() -> NodeState {
    let id = |s: &str| NodeId::new(s).expect("a valid id");
    NodeState {
        class: DeviceClass::Full,
        role: Role::Leader,
        term: 3,
        leader: Some(id("pi-gw-01")),
        seq: 77,
        cadence_ms: 500,
        uptime_s: 3600,
        last_heartbeat_ms: 1_790_000_000_000,
        version: alloc::string::String::from("0.1.0"),
        peers: alloc::vec![id("pi-gw-02"), id("esp32-c3-1")],
        dropped: 2,
        cadence_mode: CadenceMode::Conservative,
        cadence_pinned: true,
        agreed: None,
        decided: None,
        asleep_until_ms: None,
        clock_skew_ms: None,
    }
}
