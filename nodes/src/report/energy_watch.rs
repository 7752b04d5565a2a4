//! `swarm-node energy --watch`: one observer session asks again and again until Ctrl-C.
//!
//! While the session's own link is down it says it lost contact with the swarm and shows the
//! last figures it had, marked unconfirmed, instead of an empty swarm; `dashboard::contact`
//! tells a lost link from a quiet swarm.

use super::{SwarmView, energy, gather, open_settled};
use crate::cli::EnergyArgs;
use crate::config::Config;
use crate::dashboard::contact::{Contact, Seen, Standing};
use crate::dashboard::link;
use std::io::{IsTerminal, Write};
use std::time::Duration;
use swarm_bus::SwarmKeys;
use swarm_bus::clock::unix_ms;

pub async fn run(config: &Config, args: &EnergyArgs) -> anyhow::Result<()> {
    let mut stop = Box::pin(crate::signals::shutdown_signal()?);
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let session = open_settled(config).await?;
    let timeout = Duration::from_millis(args.query.timeout_ms);
    let every = Duration::from_millis(args.every_ms);
    // Clearing the screen only makes sense on a terminal; piped output keeps every round.
    let clear = std::io::stdout().is_terminal() && !args.query.json;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Only the links are judged here: the rounds are queries, not tokens.
    let mut contact = Contact::new(0);
    let mut last: Option<(u64, SwarmView)> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => break,
        }
        let mut news = look(&mut contact, &session, args.query.json).await;
        let fresh = if matches!(contact.standing(), Standing::Lost { .. }) {
            None
        } else {
            let view = tokio::select! {
                view = gather(&session, &keys, timeout) => view?,
                _ = &mut stop => break,
            };
            // A link that closed during the round may have cut its answers short: that round
            // is no news of the swarm.
            let after = look(&mut contact, &session, args.query.json).await;
            let cut = after.iter().any(|s| matches!(s, Seen::Lost { .. }));
            news.extend(after);
            (!cut).then_some(view)
        };
        let now = unix_ms();
        let lost = match contact.standing() {
            Standing::Lost { since_ms } => Some(since_ms),
            Standing::InContact | Standing::Waiting => None,
        };
        let text = match (fresh, lost) {
            (Some(view), _) => {
                let text = if args.query.json {
                    format!("{}\n", document(&view, args, false))
                } else {
                    let news: String = news.iter().filter_map(said).collect();
                    news + &shown(&view, config, args)
                };
                last = Some((now, view));
                text
            }
            (None, Some(since)) => match &last {
                Some((_, view)) if args.query.json => {
                    format!("{}\n", document(view, args, true))
                }
                // Nothing known to show: the log says it (`look`).
                None if args.query.json => String::new(),
                Some((at, view)) => format!(
                    "lost contact with the swarm {} ago: this observer's own link closed; \
                     reconnecting. Last known figures, from {} ago, unconfirmed:\n{}",
                    super::age(Some(now.saturating_sub(since))),
                    super::age(Some(now.saturating_sub(*at))),
                    shown(view, config, args),
                ),
                None => format!(
                    "lost contact with the swarm {} ago: this observer's own link closed; \
                     reconnecting\n",
                    super::age(Some(now.saturating_sub(since))),
                ),
            },
            // In contact again after a round cut short: the next round has the figures.
            (None, None) if args.query.json => String::new(),
            (None, None) => news.iter().filter_map(said).collect(),
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

/// What the session says about its links now, judged; logged for a JSON reader, whose stdout
/// carries documents only.
async fn look(contact: &mut Contact, session: &zenoh::Session, json: bool) -> Vec<Seen> {
    let seen = contact.links(unix_ms(), link::links(session).await);
    if json {
        for s in &seen {
            if let Some(line) = said(s) {
                tracing::warn!("{}", line.trim_end());
            }
        }
    }
    seen
}

/// The line a change of contact is told with.
fn said(seen: &Seen) -> Option<String> {
    match seen {
        Seen::Lost { .. } => Some("lost contact with the swarm\n".into()),
        Seen::InContact { again: true, .. } => Some("back in contact with the swarm\n".into()),
        _ => None,
    }
}

fn shown(view: &SwarmView, config: &Config, args: &EnergyArgs) -> String {
    if view.energy.is_empty() {
        format!(
            "no node of swarm `{}` answered within {} ms\n",
            config.node.swarm, args.query.timeout_ms
        )
    } else {
        energy::render(view)
    }
}

/// One round's JSON: every row (or the total) marked `"unconfirmed": true` when it is the
/// last known rather than an answer.
fn document(view: &SwarmView, args: &EnergyArgs, unconfirmed: bool) -> serde_json::Value {
    let mut doc = if args.total {
        energy::total_json(view)
    } else {
        energy::json(view)
    };
    if unconfirmed {
        let mark = |v: &mut serde_json::Value| {
            if let serde_json::Value::Object(map) = v {
                map.insert("unconfirmed".into(), serde_json::Value::Bool(true));
            }
        };
        match &mut doc {
            serde_json::Value::Array(rows) => rows.iter_mut().for_each(mark),
            other => mark(other),
        }
    }
    doc
}
