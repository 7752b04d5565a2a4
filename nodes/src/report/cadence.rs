//! `swarm-node cadence show | set`: each node's pace, and the operator's pin.

use super::{SwarmView, table};
use crate::config::Config;
use serde::Serialize;
use std::time::{Duration, Instant};
use swarm_bus::zenoh as bus;
use swarm_bus::{CadenceMode, Command, CommandOp, DeviceClass, Leaf, NodeId, SwarmKeys};

#[derive(Debug, Serialize, PartialEq)]
pub struct CadenceRow {
    pub id: NodeId,
    pub class: DeviceClass,
    pub mode: CadenceMode,
    pub pinned: bool,
    pub heartbeat_ms: u32,
}

pub fn rows(view: &SwarmView) -> Vec<CadenceRow> {
    view.states
        .iter()
        .map(|(id, s)| CadenceRow {
            id: id.clone(),
            class: s.class,
            mode: s.cadence_mode,
            pinned: s.cadence_pinned,
            heartbeat_ms: s.cadence_ms,
        })
        .collect()
}

pub fn render(rows: &[CadenceRow]) -> String {
    let mut t = table(&["ID", "CLASS", "MODE", "PINNED", "HEARTBEAT"]);
    for r in rows {
        t.add_row(vec![
            r.id.to_string(),
            r.class.to_string(),
            r.mode.to_string(),
            if r.pinned { "yes" } else { "no" }.to_string(),
            format!("{} ms", r.heartbeat_ms),
        ]);
    }
    format!("{t}\n")
}

/// `auto` or a mode name.
pub fn parse_mode(text: &str) -> Result<Option<CadenceMode>, String> {
    if text == "auto" {
        return Ok(None);
    }
    text.parse::<CadenceMode>()
        .map(Some)
        .map_err(|e| format!("{e}, or auto to unpin"))
}

/// Which nodes a `set` goes to: the one named, or every node that runs the swarm's own
/// cadence (boards behind a bridge keep theirs and do not report a mode).
pub fn targets(view: &SwarmView, node: Option<&NodeId>) -> Vec<NodeId> {
    match node {
        Some(id) => vec![id.clone()],
        None => view
            .states
            .iter()
            .filter(|(_, s)| s.class != DeviceClass::Minimal)
            .map(|(id, _)| id.clone())
            .collect(),
    }
}

/// Whether `row` shows the result of setting `mode`.
pub fn applied(row: &CadenceRow, mode: Option<CadenceMode>) -> bool {
    match mode {
        Some(m) => row.pinned && row.mode == m,
        None => !row.pinned,
    }
}

/// Sends the pin to each target, then asks until every one reports it or `timeout` passes.
/// Returns the rows of the targets as last seen, and those that did not confirm.
pub async fn set(
    config: &Config,
    targets: &[NodeId],
    mode: Option<CadenceMode>,
    timeout: Duration,
) -> anyhow::Result<(Vec<CadenceRow>, Vec<NodeId>)> {
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let session = bus::open_observer(&config.zenoh).await?;
    tokio::time::sleep(super::SETTLE).await;
    let cmd = Command {
        op: CommandOp::SetMode,
        arg: mode.map_or(swarm_bus::UNPIN_MODE, |m| u32::from(m as u8)),
    };
    for id in targets {
        bus::publish(&session, &keys.node_leaf(id, Leaf::Cmd), &cmd).await?;
    }
    let _ = session.close().await;
    let deadline = Instant::now() + timeout;
    loop {
        let view = super::ask(config, Duration::from_millis(800)).await?;
        let seen: Vec<CadenceRow> = rows(&view)
            .into_iter()
            .filter(|r| targets.contains(&r.id))
            .collect();
        let missing: Vec<NodeId> = targets
            .iter()
            .filter(|id| !seen.iter().any(|r| &r.id == *id && applied(r, mode)))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() >= deadline {
            return Ok((seen, missing));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::{NodeState, Role};

    fn state(class: DeviceClass, mode: CadenceMode, pinned: bool) -> NodeState {
        NodeState {
            class,
            role: Role::Follower,
            cadence_ms: 2000,
            cadence_mode: mode,
            cadence_pinned: pinned,
            ..swarm_bus::samples::node_state()
        }
    }

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn modes_parse_and_auto_unpins() {
        assert_eq!(parse_mode("emergency"), Ok(Some(CadenceMode::Emergency)));
        assert_eq!(parse_mode("auto"), Ok(None));
        assert!(parse_mode("turbo").unwrap_err().contains("auto"));
    }

    #[test]
    fn set_goes_to_the_named_node_or_every_full_member() {
        let mut view = SwarmView::default();
        view.states.insert(
            id("pi-a"),
            state(DeviceClass::Full, CadenceMode::Normal, false),
        );
        view.states.insert(
            id("esp-0"),
            state(DeviceClass::Minimal, CadenceMode::Normal, false),
        );
        assert_eq!(targets(&view, None), vec![id("pi-a")]);
        assert_eq!(targets(&view, Some(&id("esp-0"))), vec![id("esp-0")]);
        let rows = rows(&view);
        assert!(applied(&rows[1], None));
        assert!(
            !applied(&rows[1], Some(CadenceMode::Normal)),
            "not pinned yet"
        );
        let pinned = CadenceRow {
            pinned: true,
            mode: CadenceMode::Emergency,
            ..rows.into_iter().next().unwrap()
        };
        assert!(applied(&pinned, Some(CadenceMode::Emergency)));
        assert!(!applied(&pinned, None));
    }
}
