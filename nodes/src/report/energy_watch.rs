//! `swarm-node energy --watch`: one observer session asks again and again until Ctrl-C.

use super::{energy, gather, open_settled};
use crate::cli::EnergyArgs;
use crate::config::Config;
use std::io::{IsTerminal, Write};
use std::time::Duration;
use swarm_bus::SwarmKeys;

pub async fn run(config: &Config, args: &EnergyArgs) -> anyhow::Result<()> {
    let mut stop = Box::pin(crate::runtime::shutdown_signal()?);
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let session = open_settled(config).await?;
    let timeout = Duration::from_millis(args.query.timeout_ms);
    let every = Duration::from_millis(args.every_ms);
    // Clearing the screen only makes sense on a terminal; piped output keeps every round.
    let clear = std::io::stdout().is_terminal() && !args.query.json;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => break,
        }
        let view = tokio::select! {
            view = gather(&session, &keys, timeout) => view?,
            _ = &mut stop => break,
        };
        let text = if args.query.json {
            let doc = if args.total {
                energy::total_json(&view)
            } else {
                energy::json(&view)
            };
            format!("{}\n", serde_json::to_string(&doc)?)
        } else if view.energy.is_empty() {
            format!(
                "no node of swarm `{}` answered within {} ms\n",
                config.node.swarm, args.query.timeout_ms
            )
        } else {
            energy::render(&view)
        };
        let mut out = std::io::stdout().lock();
        if clear {
            write!(out, "\x1b[2J\x1b[H")?;
        } else if !args.query.json {
            writeln!(out)?;
        }
        // A closed pipe (`| head`) ends the watch rather than failing it.
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            break;
        }
    }
    let _ = session.close().await;
    Ok(())
}
