//! `swarm-node task submit|status|list|cancel`: a short-lived observer session asks the
//! swarm's leader (submit, cancel) or every copy of the task table (status, list).

use crate::cli::{SubmitArgs, TaskIdArgs, TaskListArgs};
use crate::config::Config;
use anyhow::Context;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{self as bus, QueryReply};
use swarm_bus::{
    Leaf, NodeState, Payload, SwarmKeys, TaskAck, TaskId, TaskLeaf, TaskResult, TaskSpec, TaskState,
};

/// How long one attempt to reach the leader waits for its answer: a majority must store the
/// task first.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// Between attempts, while the swarm elects a leader or a new one takes over the table.
const RETRY_AFTER: Duration = Duration::from_millis(300);

/// A fresh id: 64 random bits from the standard library's per-process random keys.
pub fn new_task_id() -> TaskId {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    TaskId::new(format!("t-{:016x}", h.finish())).expect("a hex id is a valid task id")
}

/// The payload flag: text as it is, `@FILE` for a file's bytes.
pub fn read_payload(arg: Option<&str>) -> anyhow::Result<Payload> {
    match arg {
        None => Ok(Payload::default()),
        Some(p) => match p.strip_prefix('@') {
            Some(path) => std::fs::read(path)
                .map(Payload)
                .with_context(|| format!("reading the payload file {path}")),
            None => Ok(Payload(p.as_bytes().to_vec())),
        },
    }
}

/// Submits; returns the id once a leader accepted, or the leader's reason for refusing.
pub async fn submit(config: &Config, args: &SubmitArgs) -> anyhow::Result<TaskId> {
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let id = args.id.clone().unwrap_or_else(new_task_id);
    let spec = TaskSpec {
        cap: args.cap.clone(),
        priority: args.priority.into(),
        after: args.after.clone(),
        timeout_ms: args.timeout,
        retries: args.retries,
        payload: read_payload(args.payload.as_deref())?,
        replicas: args.replicas,
        pick: args.pick,
    };
    let session = super::open_settled(config).await?;
    let outcome = submit_on(&session, &keys, &id, &spec, args.wait_ms).await;
    let _ = session.close().await;
    outcome.map(|()| id)
}

/// Asks until a leader says yes or no, or `wait_ms` passes: while there is no leader, or a new
/// one is taking the table over, nobody answers or the answer is "try again". The same id each
/// time, so a yes that got lost on the way is not a second task.
pub async fn submit_on(
    session: &zenoh::Session,
    keys: &SwarmKeys,
    id: &TaskId,
    spec: &TaskSpec,
    wait_ms: u64,
) -> anyhow::Result<()> {
    let key = keys.task(id, TaskLeaf::Submit);
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let mut last = String::from("no leader answered");
    loop {
        let replies: Vec<QueryReply<TaskAck>> =
            bus::ask_with(session, &key, spec, ASK_TIMEOUT).await?;
        for reply in replies {
            match reply.msg {
                Ok(ack) if ack.accepted => return Ok(()),
                Ok(ack) => {
                    let reason = ack.reason.unwrap_or_else(|| "refused".into());
                    if !reason.contains("try again") {
                        anyhow::bail!("task refused by leader {}: {reason}", ack.by);
                    }
                    last = format!("leader {}: {reason}", ack.by);
                }
                Err(fault) => anyhow::bail!("task refused: {fault}"),
            }
        }
        if Instant::now() >= deadline {
            anyhow::bail!("task {id} not accepted within {wait_ms} ms ({last})");
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// How far along a copy's word on a task is: a final state, then more attempts, then a report.
fn progress(r: &TaskResult) -> (bool, u32, bool, usize) {
    let answered = r
        .answers
        .iter()
        .flatten()
        .filter(|a| a.state.is_final())
        .count();
    (r.state.is_final(), r.attempts, r.worker.is_some(), answered)
}

/// What the task tables answered.
pub struct Held {
    /// Every task any copy holds, each at the furthest state a copy knows.
    pub tasks: BTreeMap<TaskId, TaskResult>,
    /// Whether any node answered at all: a swarm without tasks and a swarm out of reach both
    /// hold none, and only one of them is an answer.
    pub reached: bool,
}

pub async fn statuses(config: &Config, key_expr: &str, timeout: Duration) -> anyhow::Result<Held> {
    let session = super::open_settled(config).await?;
    let states = SwarmKeys::new(config.node.swarm.clone()).all(Leaf::State);
    let (replies, nodes) = tokio::join!(
        bus::query_cbor::<TaskResult>(&session, key_expr, timeout),
        bus::query_cbor::<NodeState>(&session, &states, timeout),
    );
    let _ = session.close().await;
    let mut best: BTreeMap<TaskId, TaskResult> = BTreeMap::new();
    for reply in replies? {
        let (Some((id, _)), Ok(result)) = (bus::task_of(&reply.key), reply.msg) else {
            continue;
        };
        match best.get(&id) {
            Some(held) if progress(held) >= progress(&result) => {}
            _ => {
                best.insert(id, result);
            }
        }
    }
    Ok(Held {
        reached: !best.is_empty() || !nodes?.is_empty(),
        tasks: best,
    })
}

pub fn json(id: &TaskId, r: &TaskResult) -> serde_json::Value {
    let mut v = swarm_bus::json::to_json(r, None);
    if let serde_json::Value::Object(map) = &mut v {
        map.insert("id".into(), serde_json::Value::String(id.to_string()));
    }
    v
}

fn output_text(p: &Payload) -> String {
    String::from_utf8_lossy(p.as_bytes()).into_owned()
}

pub async fn status(config: &Config, args: &TaskIdArgs) -> anyhow::Result<std::process::ExitCode> {
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let key = keys.task(&args.id, TaskLeaf::Result);
    let timeout = Duration::from_millis(args.query.timeout_ms);
    let held = statuses(config, &key, timeout).await?;
    if !held.reached {
        eprintln!("{}", super::no_answer(config, args.query.timeout_ms));
        return Ok(std::process::ExitCode::FAILURE);
    }
    let Some(r) = held.tasks.get(&args.id) else {
        eprintln!(
            "no node of swarm `{}` holds task {} (unknown, or its result was evicted)",
            config.node.swarm, args.id
        );
        return Ok(std::process::ExitCode::FAILURE);
    };
    if args.query.json {
        println!("{}", json(&args.id, r));
    } else {
        println!("{}", line(&args.id, r));
        if let Some(answers) = &r.answers {
            println!("{}", answers_table(answers));
        }
        if !r.output.as_bytes().is_empty() {
            println!("{}", output_text(&r.output));
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Every replica's answer and its vote.
fn answers_table(answers: &[swarm_bus::TaskAnswer]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(["worker", "attempt", "state", "vote", "joules", "output"]);
    for a in answers {
        let vote = match a.agrees {
            Some(true) => "agrees",
            Some(false) => "dissents",
            None => "-",
        };
        let mut out = output_text(&a.output);
        if out.chars().count() > 40 {
            out = out.chars().take(39).chain(['…']).collect();
        }
        t.add_row([
            a.worker.to_string(),
            a.attempt.to_string(),
            a.state.to_string(),
            vote.to_string(),
            a.joules.map_or("-".into(), |j| format!("{j:.3}")),
            out.replace('\n', " "),
        ]);
    }
    t
}

fn line(id: &TaskId, r: &TaskResult) -> String {
    let mut s = format!("{id}: {}", r.state);
    if let Some(w) = &r.worker {
        s.push_str(&format!(" on {w}"));
    }
    s.push_str(&format!(", {} attempt(s)", r.attempts));
    if let Some(code) = r.exit_code {
        s.push_str(&format!(", exit {code}"));
    }
    if r.state.is_final() && r.duration_ms > 0 {
        s.push_str(&format!(", {} ms", r.duration_ms));
    }
    if let Some(v) = r.value {
        s.push_str(&format!(", value {v}"));
    }
    if let (Some(answers), Some(j)) = (&r.answers, r.joules) {
        s.push_str(&format!(", {} answers costing {j:.3} J", answers.len()));
    }
    if let Some(reason) = &r.reason {
        s.push_str(&format!(" ({reason})"));
    }
    s
}

pub async fn list(config: &Config, args: &TaskListArgs) -> anyhow::Result<std::process::ExitCode> {
    let wanted = args
        .state
        .iter()
        .map(|s| {
            s.parse::<TaskState>().map_err(|_| {
                anyhow::anyhow!(
                    "--state {s:?}: use queued, running, succeeded, failed or cancelled"
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let timeout = Duration::from_millis(args.query.timeout_ms);
    let held = statuses(config, &keys.all_tasks(TaskLeaf::Result), timeout).await?;
    let shown = held
        .tasks
        .iter()
        .filter(|(_, r)| wanted.is_empty() || wanted.contains(&r.state));
    if args.query.json {
        let rows: Vec<serde_json::Value> = shown.map(|(id, r)| json(id, r)).collect();
        println!("{}", serde_json::Value::Array(rows));
    } else if held.reached {
        println!("{}", list_table(shown));
    }
    if !held.reached {
        eprintln!("{}", super::no_answer(config, args.query.timeout_ms));
        return Ok(std::process::ExitCode::FAILURE);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn list_table<'a>(shown: impl Iterator<Item = (&'a TaskId, &'a TaskResult)>) -> comfy_table::Table {
    let mut t = super::table(&["TASK", "STATE", "WORKER", "ATTEMPTS", "OUTPUT"]);
    for (id, r) in shown {
        let mut out = output_text(&r.output).replace('\n', " ");
        if out.chars().count() > 40 {
            out = out.chars().take(39).chain(['…']).collect();
        }
        t.add_row([
            id.to_string(),
            r.state.to_string(),
            super::or_dash(r.worker.as_ref()),
            r.attempts.to_string(),
            out,
        ]);
    }
    t
}

pub async fn cancel(config: &Config, args: &TaskIdArgs) -> anyhow::Result<()> {
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let key = keys.task(&args.id, TaskLeaf::Cancel);
    let session = super::open_settled(config).await?;
    let timeout = Duration::from_millis(args.query.timeout_ms);
    let replies = bus::query_cbor::<TaskAck>(&session, &key, timeout).await;
    let _ = session.close().await;
    let Some(reply) = replies?.into_iter().next() else {
        anyhow::bail!("no leader of swarm `{}` answered", config.node.swarm)
    };
    match reply.msg {
        Ok(ack) if ack.accepted => {
            if args.query.json {
                println!(
                    "{}",
                    serde_json::json!({"id": args.id.as_str(), "cancelled": true})
                );
            } else {
                println!("cancelled {}", args.id);
            }
            Ok(())
        }
        Ok(ack) => anyhow::bail!(
            "not cancelled by leader {}: {}",
            ack.by,
            ack.reason.unwrap_or_default()
        ),
        Err(fault) => anyhow::bail!("not cancelled: {fault}"),
    }
}
