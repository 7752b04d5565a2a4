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
    }
}
