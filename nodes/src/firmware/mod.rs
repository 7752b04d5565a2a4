//! `swarm-node firmware push|status`: updates for MQTT boards over the mesh
//! (docs/protocol.md#firmware-updates). The pusher talks to the boards' `ota` and `firmware`
//! keys through zenoh; their bridge carries both to MQTT.

pub mod image;
pub mod push;

use crate::cli::{FirmwarePushArgs, QueryArgs};
use crate::config::Config;
use crate::report::{no_answer, open_settled, or_dash, table};
use anyhow::Context;
use push::{Out, Outcome, Push};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{self as bus};
use swarm_bus::{DeviceClass, FirmwareReport, Leaf, NodeId, NodeState, SwarmKey, SwarmKeys};

/// Every board's firmware report, by id.
async fn reports(
    session: &zenoh::Session,
    keys: &SwarmKeys,
    timeout: Duration,
) -> anyhow::Result<BTreeMap<NodeId, FirmwareReport>> {
    let replies =
        bus::query_cbor::<FirmwareReport>(session, &keys.all(Leaf::Firmware), timeout).await?;
    let mut out = BTreeMap::new();
    for r in replies {
        if let (Ok(SwarmKey::NodeLeaf { id, .. }), Ok(msg)) = (r.key.parse(), r.msg) {
            out.insert(id, msg);
        }
    }
    Ok(out)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How far the update has come; a report from the wire may name an offset past its size.
fn progress_pct(r: &FirmwareReport) -> f64 {
    if r.size == 0 {
        return 0.0;
    }
    (f64::from(r.next_offset) * 100.0 / f64::from(r.size)).min(100.0)
}

fn report_json(id: &NodeId, r: &FirmwareReport) -> serde_json::Value {
    let update = (!r.update_sha256.as_bytes().is_empty()).then(|| {
        serde_json::json!({
            "sha256": hex(r.update_sha256.as_bytes()),
            "next_offset": r.next_offset,
            "size": r.size,
            "progress_pct": progress_pct(r),
        })
    });
    serde_json::json!({
        "id": id.as_str(),
        "version": r.version,
        "image_sha256": (!r.image_sha256.as_bytes().is_empty()).then(|| hex(r.image_sha256.as_bytes())),
        "slot": r.slot,
        "phase": r.phase.as_str(),
        "update": update,
        "reason": r.reason,
    })
}

pub async fn status(config: &Config, args: &QueryArgs) -> anyhow::Result<std::process::ExitCode> {
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let session = open_settled(config).await?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let states = keys.all(Leaf::State);
    let (boards, members) = tokio::join!(
        reports(&session, &keys, timeout),
        bus::query_cbor::<NodeState>(&session, &states, timeout)
    );
    let _ = session.close().await;
    let boards = boards?;
    if boards.is_empty() && members?.is_empty() {
        eprintln!("{}", no_answer(config, args.timeout_ms));
        return Ok(std::process::ExitCode::FAILURE);
    }
    if args.json {
        let list: Vec<_> = boards.iter().map(|(id, r)| report_json(id, r)).collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let mut t = table(&["ID", "VERSION", "IMAGE", "SLOT", "PHASE", "UPDATE"]);
    for (id, r) in &boards {
        let image = r.image_sha256.as_bytes();
        let update = (r.size > 0).then(|| {
            format!(
                "{} of {} bytes ({:.0} %)",
                r.next_offset,
                r.size,
                f64::from(r.next_offset) * 100.0 / f64::from(r.size)
            )
        });
        let phase = match &r.reason {
            Some(why) => format!("{}: {why}", r.phase),
            None => r.phase.to_string(),
        };
        t.add_row(vec![
            id.to_string(),
            r.version.clone(),
            if image.is_empty() {
                "unknown".into()
            } else {
                hex(&image[..6])
            },
            r.slot.to_string(),
            phase,
            or_dash(update),
        ]);
    }
    println!("{t}\n{} board(s) report their firmware", boards.len());
    Ok(std::process::ExitCode::SUCCESS)
}

/// One board's push, as it ended.
#[derive(Debug, serde::Serialize)]
pub struct Pushed {
    pub id: NodeId,
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub bytes: u32,
    /// From the offer to the board's confirmation (or other outcome).
    pub seconds: f64,
    /// From the offer to the last chunk taken.
    pub transfer_seconds: f64,
    pub resent_chunks: u32,
}

fn outcome_word(o: &Outcome) -> (&'static str, Option<String>) {
    match o {
        Outcome::Updated => ("updated", None),
        Outcome::AlreadyRunning => ("already_running", None),
        Outcome::Refused(w) => ("refused", Some(w.clone())),
        Outcome::RolledBack(w) => ("rolled_back", Some(w.clone())),
        Outcome::TimedOut(w) => ("timed_out", Some(w.clone())),
    }
}

/// Pushes one image to one board through `session`; ends with the board's outcome.
pub async fn push_one(
    session: &zenoh::Session,
    keys: &SwarmKeys,
    id: &NodeId,
    image: &image::Image,
    chunk_bytes: u32,
    timeout: Duration,
) -> anyhow::Result<Pushed> {
    let started = Instant::now();
    let now = || started.elapsed().as_millis() as u64;
    let reports = bus::subscribe::<FirmwareReport>(
        session,
        keys.node_leaf(id, Leaf::Firmware),
        bus::DropCounters::default(),
    )
    .await?;
    let ota = keys.node_leaf(id, Leaf::Ota);
    let mut push = Push::new(
        image.bytes.clone(),
        image.sha256,
        image.version.clone(),
        chunk_bytes,
        now(),
        u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    );
    if let Some(left) = sleep_left_ms(session, keys, id).await {
        push.asleep_for(left);
    }
    let mut outbox = push.start(now());
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while push.outcome().is_none() {
        for out in outbox.drain(..) {
            match out {
                Out::Offer(o) => bus::publish(session, &ota, &o).await?,
                Out::Chunk(c) => bus::publish(session, &ota, &c).await?,
            }
        }
        tokio::select! {
            r = reports.recv() => match r {
                Some(r) => outbox = push.on_report(&r.msg, now()),
                None => anyhow::bail!("the zenoh session closed"),
            },
            _ = tick.tick() => outbox = push.on_tick(now()),
        }
    }
    let (outcome, reason) = outcome_word(push.outcome().context("an outcome")?);
    Ok(Pushed {
        id: id.clone(),
        outcome,
        reason,
        bytes: push.acked(),
        seconds: started.elapsed().as_secs_f64(),
        transfer_seconds: push
            .switched_ms()
            .map_or(started.elapsed().as_secs_f64(), |ms| ms as f64 / 1000.0),
        resent_chunks: push.resent,
    })
}

/// How long `id` still sleeps by its bridge's word, if it is asleep: its offer waits for the
/// wake. No answer (a node, a board awake, a slow bridge) is not asleep.
async fn sleep_left_ms(session: &zenoh::Session, keys: &SwarmKeys, id: &NodeId) -> Option<u64> {
    let replies = bus::query_cbor::<NodeState>(session, &keys.state(id), Duration::from_secs(1))
        .await
        .ok()?;
    let until = replies
        .into_iter()
        .filter_map(|r| r.msg.ok()?.asleep_until_ms)
        .max()?;
    Some(until.saturating_sub(swarm_bus::clock::unix_ms())).filter(|left| *left > 0)
}

/// The boards to update, in order: those named, or every board of the class that reports its
/// firmware.
async fn targets(
    session: &zenoh::Session,
    keys: &SwarmKeys,
    args: &FirmwarePushArgs,
) -> anyhow::Result<Vec<NodeId>> {
    if !args.node.is_empty() {
        return Ok(args.node.clone());
    }
    let class: DeviceClass = args.class.context("--node or --class")?;
    let timeout = Duration::from_millis(args.query.timeout_ms);
    let state_keys = keys.all(Leaf::State);
    let (boards, states) = tokio::join!(
        reports(session, keys, timeout),
        bus::query_cbor::<NodeState>(session, &state_keys, timeout)
    );
    let boards = boards?;
    let mut ids: Vec<NodeId> = states?
        .into_iter()
        .filter_map(|r| {
            let SwarmKey::NodeLeaf { id, .. } = r.key.parse().ok()? else {
                return None;
            };
            (r.msg.ok()?.class == class && boards.contains_key(&id)).then_some(id)
        })
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

pub async fn push(
    config: &Config,
    args: &FirmwarePushArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let image = image::Image::read(&args.image, args.version.clone())?;
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let session = open_settled(config).await?;
    let ids = targets(&session, &keys, args).await?;
    if ids.is_empty() {
        let _ = session.close().await;
        eprintln!(
            "no board of class {} reports its firmware in swarm `{}`",
            or_dash(args.class),
            config.node.swarm
        );
        return Ok(std::process::ExitCode::FAILURE);
    }
    if !args.query.json {
        println!(
            "pushing {} ({} bytes, sha256 {}) to {} board(s), one at a time",
            image.version,
            image.bytes.len(),
            &hex(&image.sha256)[..12],
            ids.len()
        );
    }
    let timeout = Duration::from_secs(args.timeout_s);
    let mut done = Vec::new();
    let mut failed = false;
    for id in &ids {
        let pushed = push_one(&session, &keys, id, &image, args.chunk_bytes, timeout).await?;
        failed = !matches!(pushed.outcome, "updated" | "already_running");
        if !args.query.json {
            let rate = f64::from(pushed.bytes) / 1024.0 / pushed.seconds.max(0.001);
            match &pushed.reason {
                None => println!(
                    "{id}: {} in {:.1} s ({rate:.0} KiB/s)",
                    pushed.outcome.replace('_', " "),
                    pushed.seconds
                ),
                Some(why) => println!("{id}: {}: {why}", pushed.outcome.replace('_', " ")),
            }
        }
        done.push(pushed);
        if failed {
            break;
        }
    }
    let _ = session.close().await;
    let untried: Vec<&NodeId> = ids.iter().skip(done.len()).collect();
    if args.query.json {
        println!(
            "{}",
            serde_json::json!({
                "version": image.version,
                "sha256": hex(&image.sha256),
                "boards": done,
                "not_tried": untried,
            })
        );
    } else if failed {
        println!(
            "stopped at {}: {} of {} updated; not tried: {}",
            done.last().map(|p| p.id.to_string()).unwrap_or_default(),
            done.iter().filter(|p| p.outcome == "updated").count(),
            ids.len(),
            if untried.is_empty() {
                "none".to_string()
            } else {
                untried
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    }
    Ok(if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::{Digest, FirmwarePhase};

    fn receiving(next_offset: u32, size: u32) -> FirmwareReport {
        FirmwareReport {
            version: "0.1.0".into(),
            image_sha256: Digest(vec![0xab; 32]),
            slot: 1,
            phase: FirmwarePhase::Receiving,
            update_sha256: Digest(vec![0xcd; 32]),
            next_offset,
            size,
            reason: None,
        }
    }

    #[test]
    fn status_json_shows_an_update_under_way() {
        let id = NodeId::new("esp-0").unwrap();
        let j = report_json(&id, &receiving(150_000, 600_000));
        assert_eq!(j["id"], "esp-0");
        assert_eq!(j["version"], "0.1.0");
        assert_eq!(j["image_sha256"], "ab".repeat(32));
        assert_eq!(j["slot"], 1);
        assert_eq!(j["phase"], "receiving");
        assert_eq!(j["update"]["sha256"], "cd".repeat(32));
        assert_eq!(j["update"]["next_offset"], 150_000);
        assert_eq!(j["update"]["size"], 600_000);
        assert_eq!(j["update"]["progress_pct"], 25.0);
        let mut idle = receiving(0, 0);
        idle.phase = FirmwarePhase::Idle;
        idle.update_sha256 = Digest(Vec::new());
        assert!(
            report_json(&id, &idle)["update"].is_null(),
            "none under way"
        );
        // From the wire: no size, or an offset past it.
        assert_eq!(
            report_json(&id, &receiving(10, 0))["update"]["progress_pct"],
            0.0
        );
        assert_eq!(
            report_json(&id, &receiving(u32::MAX, 10))["update"]["progress_pct"],
            100.0
        );
    }
}
