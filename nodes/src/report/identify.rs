//! `swarm-node identify NODE`: asks a node to show itself (it blinks its `[board]` LED), so
//! someone at the rack can tell which box it is.

use crate::config::Config;
use std::time::Duration;
use swarm_bus::zenoh as bus;
use swarm_bus::{Command, CommandOp, Leaf, NodeId, SwarmKeys};

/// Sends the request once the node has answered as a member; an unknown id is an error, not
/// a request into the void.
pub async fn run(config: &Config, node: &NodeId, seconds: u32) -> anyhow::Result<()> {
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let session = super::open_settled(config).await?;
    let view = super::gather(&session, &keys, Duration::from_millis(1500)).await?;
    if !view.states.contains_key(node) {
        let _ = session.close().await;
        let known: Vec<&str> = view.states.keys().map(NodeId::as_str).collect();
        anyhow::bail!(
            "no node `{node}` answered in swarm `{}` (members: {})",
            config.node.swarm,
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        );
    }
    let cmd = Command {
        op: CommandOp::Identify,
        arg: seconds,
    };
    bus::publish(&session, &keys.node_leaf(node, Leaf::Cmd), &cmd).await?;
    let _ = session.close().await;
    println!("asked {node} to identify itself for {seconds} s (its LED blinks; see its log)");
    Ok(())
}
