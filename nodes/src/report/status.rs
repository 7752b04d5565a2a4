//! `swarm-node status [--json]`.

use super::{SwarmView, age, or_dash, table};
use serde::Serialize;
use swarm_bus::{DeviceClass, NodeId, Role};

#[derive(Debug, Serialize)]
pub struct StatusRow {
    pub id: NodeId,
    pub class: DeviceClass,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub heartbeat_age_ms: Option<u64>,
    pub cadence_ms: u32,
    pub watts: Option<f32>,
    pub battery_pct: Option<u8>,
    pub temp_c: Option<f32>,
    pub uptime_s: u64,
    pub peers: usize,
    pub dropped: u64,
    pub version: String,
}

pub fn rows(view: &SwarmView, now_ms: u64) -> Vec<StatusRow> {
    view.states
        .iter()
        .map(|(id, s)| {
            let energy = view.energy.get(id);
            StatusRow {
                id: id.clone(),
                class: s.class,
                role: s.role,
                term: s.term,
                leader: s.leader.clone(),
                // Clocks of different hosts may differ; a negative age reads as 0.
                heartbeat_age_ms: (s.last_heartbeat_ms > 0)
                    .then(|| now_ms.saturating_sub(s.last_heartbeat_ms)),
                cadence_ms: s.cadence_ms,
                watts: energy.map(|e| e.watts),
                battery_pct: energy.and_then(|e| e.battery_pct),
                temp_c: energy.and_then(|e| e.temp_c),
                uptime_s: s.uptime_s,
                peers: s.peers.len(),
                dropped: s.dropped,
                version: s.version.clone(),
            }
        })
        .collect()
}

pub fn render(rows: &[StatusRow]) -> String {
    let mut t = table(&[
        "ID",
        "CLASS",
        "ROLE",
        "TERM",
        "LEADER",
        "HEARTBEAT",
        "WATTS",
        "BATTERY",
        "TEMP",
        "PEERS",
    ]);
    for r in rows {
        t.add_row(vec![
            r.id.to_string(),
            r.class.to_string(),
            r.role.to_string(),
            r.term.to_string(),
            or_dash(r.leader.as_ref()),
            age(r.heartbeat_age_ms),
            or_dash(r.watts.map(|w| format!("{w:.1} W"))),
            or_dash(r.battery_pct.map(|b| format!("{b}%"))),
            or_dash(r.temp_c.map(|c| format!("{c:.0} °C"))),
            r.peers.to_string(),
        ]);
    }
    let leader = rows.iter().find_map(|r| r.leader.as_ref());
    format!(
        "{t}\n{} node(s); leader: {}\n",
        rows.len(),
        leader
            .map(|l| l.to_string())
            .unwrap_or_else(|| "none elected".into())
    )
}
