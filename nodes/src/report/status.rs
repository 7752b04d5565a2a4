//! `swarm-node status [--json]`.

use super::{SwarmView, age, or_dash, table, time_of_day};
use serde::Serialize;
use swarm_bus::{DeviceClass, NodeId, Role};
use swarm_node::cadence::is_suspect;

#[derive(Debug, Serialize)]
pub struct StatusRow {
    pub id: NodeId,
    pub class: DeviceClass,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub heartbeat_age_ms: Option<u64>,
    pub cadence_ms: u32,
    /// No heartbeat for `suspect_after` of the node's own advertised intervals: a node that
    /// slowed down to save energy is not suspect while it keeps to its word.
    pub suspect: bool,
    pub watts: Option<f32>,
    pub battery_pct: Option<u8>,
    pub temp_c: Option<f32>,
    pub uptime_s: u64,
    pub peers: usize,
    pub dropped: u64,
    pub version: String,
    /// Of the recent decisions on replicated tasks it answered in, how many its answer
    /// agreed with; absent for a node that answered in none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Agreement>,
    /// A board in deep sleep: the Unix ms it wakes at. Present but silent until then, so not
    /// suspect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asleep_until_ms: Option<u64>,
    /// A board's clock against its gateway's (ms, positive: ahead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_skew_ms: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Agreement {
    pub agreed: u32,
    pub decided: u32,
}

/// `limits`: `(suspect_after, min_interval_ms)` from `[adaptive_gossip]`.
pub fn rows(view: &SwarmView, now_ms: u64, limits: (u32, u32)) -> Vec<StatusRow> {
    let (suspect_after, floor_ms) = limits;
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
                suspect: s.asleep_until_ms.is_none()
                    && s.last_heartbeat_ms > 0
                    && is_suspect(
                        s.last_heartbeat_ms,
                        s.cadence_ms,
                        suspect_after,
                        floor_ms,
                        now_ms,
                    ),
                watts: energy.map(|e| e.watts),
                battery_pct: energy.and_then(|e| e.battery_pct),
                temp_c: energy.and_then(|e| e.temp_c),
                uptime_s: s.uptime_s,
                peers: s.peers.len(),
                dropped: s.dropped,
                version: s.version.clone(),
                agreement: match (s.agreed, s.decided) {
                    (Some(agreed), Some(decided)) if decided > 0 => Some(Agreement {
                        agreed: agreed.min(decided),
                        decided,
                    }),
                    _ => None,
                },
                asleep_until_ms: s.asleep_until_ms,
                clock_skew_ms: s.clock_skew_ms,
            }
        })
        .collect()
}

pub fn render(rows: &[StatusRow]) -> String {
    // The column appears once any node has answered in a vote.
    let votes = rows.iter().any(|r| r.agreement.is_some());
    let mut header = vec![
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
    ];
    if votes {
        header.push("AGREED");
    }
    let mut t = table(&header);
    for r in rows {
        let mut row = vec![
            r.id.to_string(),
            r.class.to_string(),
            r.role.to_string(),
            r.term.to_string(),
            or_dash(r.leader.as_ref()),
            match r.asleep_until_ms {
                Some(until) => format!("asleep until {}", time_of_day(until)),
                None if r.suspect => format!("{} suspect", age(r.heartbeat_age_ms)),
                None => age(r.heartbeat_age_ms),
            },
            or_dash(r.watts.map(|w| format!("{w:.1} W"))),
            or_dash(r.battery_pct.map(|b| format!("{b}%"))),
            or_dash(r.temp_c.map(|c| format!("{c:.0} °C"))),
            r.peers.to_string(),
        ];
        if votes {
            row.push(or_dash(
                r.agreement.map(|a| format!("{}/{}", a.agreed, a.decided)),
            ));
        }
        t.add_row(row);
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

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::{CadenceMode, NodeState};

    fn state(cadence_ms: u32, last_heartbeat_ms: u64) -> NodeState {
        NodeState {
            class: DeviceClass::Full,
            role: Role::Follower,
            term: 1,
            leader: None,
            seq: 3,
            cadence_ms,
            uptime_s: 60,
            last_heartbeat_ms,
            version: "0".into(),
            peers: Vec::new(),
            dropped: 0,
            cadence_mode: CadenceMode::Normal,
            cadence_pinned: false,
            agreed: None,
            decided: None,
            asleep_until_ms: None,
            clock_skew_ms: None,
        }
    }

    #[test]
    fn a_node_is_suspect_by_its_own_advertised_interval() {
        let mut view = SwarmView::default();
        let now = 100_000;
        // Slowed to 2 s and last heard 5 s ago: within 3 intervals.
        view.states
            .insert(NodeId::new("slow").unwrap(), state(2000, now - 5000));
        // Keeps 500 ms but silent for 2 s: past 3 intervals.
        view.states
            .insert(NodeId::new("quiet").unwrap(), state(500, now - 2000));
        // Never sent a heartbeat yet: not judged.
        view.states
            .insert(NodeId::new("new").unwrap(), state(500, 0));
        let rows = rows(&view, now, (3, 250));
        let suspect: Vec<(&str, bool)> = rows.iter().map(|r| (r.id.as_str(), r.suspect)).collect();
        assert_eq!(suspect, [("new", false), ("quiet", true), ("slow", false)]);
        assert!(render(&rows).contains("2.0 s suspect"));
    }

    #[test]
    fn a_board_asleep_is_not_suspect_and_says_until_when() {
        let mut view = SwarmView::default();
        let now = 100_000_000;
        let mut board = state(10_000, now - 60_000);
        board.asleep_until_ms = Some(now + 3_723_000);
        view.states.insert(NodeId::new("esp").unwrap(), board);
        let rows = rows(&view, now, (3, 250));
        assert!(!rows[0].suspect, "silent as promised");
        // 100,000 s + 3,723 s past the epoch: 28:48:43, so 04:48:43 the next day.
        assert!(
            render(&rows).contains("asleep until 04:48:43 UTC"),
            "{}",
            render(&rows)
        );
    }
}
