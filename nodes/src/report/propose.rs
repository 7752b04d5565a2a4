//! `swarm-node propose`: asks the leader to put a swarm-wide change to the vote, and prints the
//! decision with every vote.

use crate::cli::ProposeArgs;
use crate::config::Config;
use std::process::ExitCode;
use std::time::Duration;
use swarm_bus::zenoh as bus;
use swarm_bus::{CommandOp, Decision, NodeId, Proposal, SwarmKeys, UNPIN_MODE};

/// The leader waits up to 2 s for ballots; this leaves room for that and the way back.
const LEAST_WAIT: Duration = Duration::from_secs(4);

pub async fn run(config: &Config, args: &ProposeArgs) -> anyhow::Result<ExitCode> {
    let mode =
        super::cadence::parse_mode(&args.cadence).map_err(|e| anyhow::anyhow!("--cadence: {e}"))?;
    let proposal = Proposal {
        op: CommandOp::SetMode,
        arg: mode.map_or(UNPIN_MODE, |m| m as u32),
    };
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let session = super::open_settled(config).await?;
    let timeout = Duration::from_millis(args.query.timeout_ms).max(LEAST_WAIT);
    let replies =
        bus::ask_with::<Proposal, Decision>(&session, &keys.proposal(), &proposal, timeout).await;
    let _ = session.close().await;
    let decision = replies?
        .into_iter()
        .find_map(|r| r.msg.ok())
        .ok_or_else(|| anyhow::anyhow!("no leader of swarm `{}` answered", config.node.swarm))?;
    if args.query.json {
        println!("{}", swarm_bus::json::to_json(&decision, None));
    } else {
        print!("{}", text(&decision, &args.cadence));
    }
    Ok(if decision.accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn text(d: &Decision, cadence: &str) -> String {
    let names = |ids: &[NodeId]| {
        if ids.is_empty() {
            "-".to_string()
        } else {
            ids.iter().map(NodeId::as_str).collect::<Vec<_>>().join(" ")
        }
    };
    let verdict = if d.accepted { "accepted" } else { "rejected" };
    format!(
        "{verdict} in term {}: cadence {cadence} on every node ({} voters, {} needed)\n  yes: {}\n  no: {}\n  ignored (not voters): {}\n",
        d.term,
        d.voters,
        d.voters / 2 + 1,
        names(&d.yes),
        names(&d.no),
        names(&d.ignored)
    )
}
