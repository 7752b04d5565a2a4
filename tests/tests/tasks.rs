//! Tasks on real nodes: the CLI contract, a hundred tasks through a leader killed mid-way, a
//! worker killed mid-task, cancellation and refusals. Handlers are `sh` commands from each
//! node's own config that log every run to a file, so runs are counted, not assumed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{self as bus, ZenohSettings};
use swarm_bus::{
    Leaf, NodeId, Payload, Priority, SwarmKey, SwarmKeys, TaskAck, TaskId, TaskLeaf, TaskRecord,
    TaskSpec, WorkerInfo,
};
use swarm_tests::{Mesh, Node, eventually};

/// A node's config: the `echo` built-in, `count` (logs `<task> <node>` to `runs`, waits
/// `secs`, prints its payload) and `slow` (10 s, never idempotent).
fn config(node: &str, runs: &Path, secs: f32) -> String {
    let runs = runs.display();
    format!(
        "[tasks]\nbuiltins = [\"echo\"]\n\
         [tasks.handlers.count]\n\
         command = [\"/bin/sh\", \"-c\", \"echo \\\"$SWARM_TASK_ID {node}\\\" >> {runs}; sleep {secs}; cat\"]\n\
         env = [\"PATH\"]\n\
         [tasks.handlers.slow]\n\
         command = [\"/bin/sh\", \"-c\", \"echo \\\"$SWARM_TASK_ID {node}\\\" >> {runs}; sleep 10; echo done\"]\n\
         env = [\"PATH\"]\n"
    )
}

/// `count` nodes, each with its own config file (so each logs its own name).
struct Swarm {
    mesh: Mesh,
    runs: PathBuf,
}

impl Swarm {
    fn start(swarm: &str, count: usize, secs: f32) -> Swarm {
        let mut mesh = Mesh::start(swarm, 0);
        let runs = mesh.dir.path().join("runs.log");
        for i in 0..count {
            let id = format!("n{i}");
            mesh.add_configured(&id, &config(&id, &runs, secs));
        }
        Swarm { mesh, runs }
    }

    /// Every run so far: (task, node), in the order they started.
    fn runs(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.runs)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(t, n)| (t.to_string(), n.to_string()))
            .collect()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let (code, out, err) = self.mesh.cli(args);
        assert_eq!(code, 0, "{args:?}: {err}\nlogs:\n{}", self.mesh.logs());
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// `task list --json`, by id.
    fn list(&self) -> BTreeMap<String, serde_json::Value> {
        let rows = self.json(&["task", "list", "--json"]);
        rows.as_array()
            .expect("an array")
            .iter()
            .map(|r| (r["id"].as_str().unwrap().to_string(), r.clone()))
            .collect()
    }
}

fn spec(cap: &str, after: Vec<TaskId>, payload: &str) -> TaskSpec {
    TaskSpec {
        cap: cap.into(),
        priority: Priority::Normal,
        after,
        timeout_ms: 60_000,
        retries: 0,
        payload: Payload(payload.as_bytes().to_vec()),
        replicas: None,
        pick: None,
    }
}

/// Submits until a leader accepts (the same id each time, as the CLI does); panics on a
/// refusal that is not "try again".
async fn submit(session: &zenoh::Session, keys: &SwarmKeys, id: &TaskId, spec: &TaskSpec) {
    let key = keys.task(id, TaskLeaf::Submit);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let replies: Vec<bus::QueryReply<TaskAck>> =
            bus::ask_with(session, &key, spec, Duration::from_secs(5))
                .await
                .unwrap();
        for r in replies {
            let ack = r.msg.unwrap();
            if ack.accepted {
                return;
            }
            let reason = ack.reason.unwrap_or_default();
            assert!(reason.contains("try again"), "{id} refused: {reason}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{id} never accepted");
}

fn session_settings(swarm: &Swarm) -> ZenohSettings {
    ZenohSettings {
        listen: Vec::new(),
        ..swarm.mesh.settings()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_tasks_survive_the_leader_killed_midway_and_none_runs_twice_on_a_live_node() {
    let mut swarm = Swarm::start("hundred", 5, 0.3);
    let session = bus::open_observer(&session_settings(&swarm)).await.unwrap();
    let keys = swarm.mesh.keys();
    let (leader, _) = swarm.mesh.leader(&session).await;

    // Ten chains of ten: task c<k>-<i> waits for c<k>-<i-1>.
    let mut all = Vec::new();
    let mut killed = false;
    for i in 0..10 {
        for k in 0..10 {
            let id = TaskId::new(format!("c{k}-{i}")).unwrap();
            let after = if i == 0 {
                Vec::new()
            } else {
                vec![TaskId::new(format!("c{k}-{}", i - 1)).unwrap()]
            };
            submit(&session, &keys, &id, &spec("count", after, id.as_str())).await;
            all.push(id);
        }
        // Mid-way: SIGKILL, no goodbye, with tasks queued, running and done.
        if i == 4 {
            let l = swarm
                .mesh
                .nodes
                .iter()
                .position(|n| n.id == leader.as_str())
                .unwrap();
            swarm.mesh.nodes[l].signal(nix::sys::signal::Signal::SIGKILL);
            swarm.mesh.nodes[l].wait(Duration::from_secs(5));
            killed = true;
        }
    }
    assert!(killed);

    let done = eventually(Duration::from_secs(90), || async {
        let list = swarm.list();
        let finished = all
            .iter()
            .filter(|id| {
                list.get(id.as_str())
                    .is_some_and(|r| r["state"] == "succeeded")
            })
            .count();
        (finished == all.len()).then_some(list)
    })
    .await;
    let list = done.unwrap_or_else(|| {
        panic!(
            "not every task succeeded: {:?}\nlogs:\n{}",
            swarm.list(),
            swarm.mesh.logs()
        )
    });
    for id in &all {
        assert_eq!(
            list[id.as_str()]["output"],
            id.as_str(),
            "{}",
            list[id.as_str()]
        );
    }

    let runs = swarm.runs();
    for id in &all {
        let on: Vec<&String> = runs
            .iter()
            .filter(|(t, _)| t == id.as_str())
            .map(|(_, n)| n)
            .collect();
        let live = on.iter().filter(|n| n.as_str() != leader.as_str()).count();
        assert!(live <= 1, "{id} ran on live nodes {on:?}");
        assert!(!on.is_empty(), "{id} succeeded without running");
        assert!(
            on.len() == 1 || on.contains(&&leader.to_string()),
            "{id} ran {on:?}: twice, and not because its node was killed"
        );
    }
    // Dependency order: each link of a chain started after the one before it.
    let first_run = |t: &str| runs.iter().position(|(r, _)| r == t).unwrap();
    for k in 0..10 {
        for i in 1..10 {
            let (before, after) = (format!("c{k}-{}", i - 1), format!("c{k}-{i}"));
            let (b, a) = (first_run(&before), first_run(&after));
            assert!(b < a, "{after} started before {before}: {runs:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_submits_shows_lists_refuses_and_cancels() {
    let swarm = Swarm::start("taskcli", 3, 0.0);
    let session = bus::open_observer(&session_settings(&swarm)).await.unwrap();
    let keys = swarm.mesh.keys();
    swarm.mesh.leader(&session).await;

    let submitted = swarm.json(&[
        "task",
        "submit",
        "--cap",
        "echo",
        "--priority",
        "high",
        "--payload",
        "hello",
        "--json",
    ]);
    let id = submitted["id"].as_str().expect("an id").to_string();
    // "Accepted" means a majority of the voters hold the task in their copies of the table.
    let copies =
        bus::query_cbor::<TaskRecord>(&session, &keys.all(Leaf::Tasks), Duration::from_secs(3))
            .await
            .unwrap();
    let holders: BTreeSet<String> = copies
        .iter()
        .filter(|r| r.msg.as_ref().is_ok_and(|rec| rec.id.as_str() == id))
        .filter_map(|r| SwarmKey::node_of(&r.key).map(|n| n.to_string()))
        .collect();
    assert!(holders.len() >= 2, "{id} is held by {holders:?} only");
    let status = eventually(Duration::from_secs(10), || async {
        let s = swarm.json(&["task", "status", &id, "--json"]);
        (s["state"] == "succeeded").then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("{id} never succeeded; logs:\n{}", swarm.mesh.logs()));
    assert_eq!(status["id"], id.as_str());
    assert_eq!(status["output"], "hello");
    assert_eq!(status["attempts"], 1);
    assert!(
        ["n0", "n1", "n2"].contains(&status["worker"].as_str().unwrap()),
        "{status}"
    );
    assert!(swarm.list().contains_key(&id));

    // A file's bytes as the payload, and a dependency on the first task.
    let file = swarm.mesh.dir.path().join("payload.txt");
    std::fs::write(&file, "from a file").unwrap();
    let at_file = format!("@{}", file.display());
    let second = swarm.json(&[
        "task",
        "submit",
        "--cap",
        "echo",
        "--after",
        &id,
        "--payload",
        &at_file,
        "--json",
    ]);
    let second = second["id"].as_str().unwrap().to_string();
    let s = eventually(Duration::from_secs(10), || async {
        let s = swarm.json(&["task", "status", &second, "--json"]);
        (s["state"] == "succeeded").then_some(s)
    })
    .await
    .expect("the dependent task ran");
    assert_eq!(s["output"], "from a file");

    // Refusals say why, and exit non-zero.
    for (args, why) in [
        (vec!["--cap", "camera.capture"], "no worker has capability"),
        (
            vec!["--cap", "echo", "--after", "t-nobody"],
            "unknown dependency",
        ),
        (vec!["--cap", "rm -rf /"], "not a capability name"),
    ] {
        let mut argv = vec!["task", "submit", "--wait-ms", "3000"];
        argv.extend(args);
        let (code, _, err) = swarm.mesh.cli(&argv);
        assert_ne!(code, 0, "{argv:?} was accepted");
        assert!(err.contains(why), "{argv:?}: {err}");
    }
    let (code, _, err) = swarm
        .mesh
        .cli(&["task", "submit", "--cap", "echo", "--timeout", "0"]);
    assert_ne!(code, 0);
    assert!(err.contains("timeout"), "{err}");

    // A malformed spec on the bus: an error reply, and the node goes on.
    let replies = session
        .get(format!(
            "{}?format=cbor",
            keys.task(&TaskId::new("junk").unwrap(), TaskLeaf::Submit)
        ))
        .payload(vec![0xffu8, 0x00, 0x13])
        .timeout(Duration::from_secs(3))
        .await
        .unwrap();
    let mut errors = 0;
    while let Ok(reply) = replies.recv_async().await {
        assert!(
            reply.result().is_err(),
            "junk was answered as if it were a spec"
        );
        errors += 1;
    }
    assert!(errors >= 1, "nobody said the spec was unreadable");

    // Cancel a running slow task: cancelled, and its handler stopped before "done".
    let slow = swarm.json(&["task", "submit", "--cap", "slow", "--json"]);
    let slow = slow["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(10), || async {
        swarm.runs().iter().any(|(t, _)| *t == slow).then_some(())
    })
    .await
    .expect("the slow task started");
    let (code, out, err) = swarm.mesh.cli(&["task", "cancel", &slow]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cancelled"), "{out}");
    let s = swarm.json(&["task", "status", &slow, "--json"]);
    assert_eq!(s["state"], "cancelled", "{s}");
    let (code, _, err) = swarm.mesh.cli(&["task", "cancel", &slow]);
    assert_ne!(code, 0, "cancelling twice");
    assert!(err.contains("cancelled"), "{err}");
    // The handler was stopped: it never got to print "done", and its shell is gone.
    let left = std::process::Command::new("pgrep")
        .args(["-f", &format!("SWARM_TASK_ID.*{}", swarm.runs.display())])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "the handler still runs after cancel: {left}"
    );
    assert_eq!(s["output"], "", "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_task_is_replaced_and_the_task_completes() {
    let mut swarm = Swarm::start("workerkill", 3, 4.0);
    let session = bus::open_observer(&session_settings(&swarm)).await.unwrap();
    let keys = swarm.mesh.keys();
    let (leader, _) = swarm.mesh.leader(&session).await;

    // Several tasks, so at least one lands on a node that is not the leader.
    let ids: Vec<TaskId> = (0..6)
        .map(|i| TaskId::new(format!("w{i}")).unwrap())
        .collect();
    for id in &ids {
        submit(&session, &keys, id, &spec("count", Vec::new(), id.as_str())).await;
    }
    let victim = eventually(Duration::from_secs(10), || async {
        swarm
            .runs()
            .into_iter()
            .find(|(_, n)| n.as_str() != leader.as_str())
    })
    .await
    .expect("a follower started a task");
    let (task, node) = victim;
    let n = swarm.mesh.nodes.iter().position(|x| x.id == node).unwrap();
    swarm.mesh.nodes[n].signal(nix::sys::signal::Signal::SIGKILL);
    swarm.mesh.nodes[n].wait(Duration::from_secs(5));

    let list = eventually(Duration::from_secs(60), || async {
        let list = swarm.list();
        ids.iter()
            .all(|id| {
                list.get(id.as_str())
                    .is_some_and(|r| r["state"] == "succeeded")
            })
            .then_some(list)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "not all done: {:?}\nlogs:\n{}",
            swarm.list(),
            swarm.mesh.logs()
        )
    });
    let r = &list[task.as_str()];
    assert_ne!(r["worker"], node.as_str(), "{r}");
    assert_eq!(
        r["attempts"], 2,
        "one attempt on the killed node, one after: {r}"
    );
    assert_eq!(r["output"], task.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn restarting_every_node_in_turn_loses_no_accepted_task() {
    // `count` runs two minutes: the first task holds the fifty behind it while every node, the
    // leader among them, stops and starts again with its state directory, one at a time.
    let mut swarm = Swarm::start("rolling", 5, 120.0);
    let session = bus::open_observer(&session_settings(&swarm)).await.unwrap();
    let keys = swarm.mesh.keys();
    let (leader, _) = swarm.mesh.leader(&session).await;
    let blocker = TaskId::new("block").unwrap();
    submit(
        &session,
        &keys,
        &blocker,
        &spec("count", Vec::new(), "block"),
    )
    .await;
    let mut accepted = vec![blocker.clone()];
    for i in 0..50 {
        let id = TaskId::new(format!("r{i}")).unwrap();
        let after = vec![blocker.clone()];
        submit(&session, &keys, &id, &spec("echo", after, id.as_str())).await;
        accepted.push(id);
    }
    // The followers first, the leader last: were a restarted copy taken for a whole one, the
    // last new leader would gather nothing but emptied copies.
    let mut order: Vec<usize> = (0..swarm.mesh.nodes.len()).collect();
    order.sort_by_key(|i| swarm.mesh.nodes[*i].id == leader.as_str());
    for i in order {
        let (id, port) = (swarm.mesh.nodes[i].id.clone(), swarm.mesh.nodes[i].port);
        swarm.mesh.nodes[i].signal(nix::sys::signal::Signal::SIGTERM);
        assert!(
            swarm.mesh.nodes[i].wait(Duration::from_secs(10)).is_some(),
            "{id} did not stop"
        );
        let others: Vec<u16> = swarm
            .mesh
            .ports()
            .into_iter()
            .filter(|p| *p != port)
            .collect();
        let config = swarm.mesh.dir.path().join(format!("{id}.toml"));
        swarm.mesh.nodes[i] = Node::spawn_configured(
            swarm.mesh.dir.path(),
            &swarm.mesh.swarm,
            &id,
            port,
            &others,
            Some(&config),
        );
        // A node offers work once it has caught up on the table.
        let offer = keys.node_leaf(&NodeId::new(id.as_str()).unwrap(), Leaf::Worker);
        let caught_up = eventually(Duration::from_secs(30), || async {
            let replies =
                bus::query_cbor::<WorkerInfo>(&session, &offer, Duration::from_secs(1)).await;
            replies.ok().filter(|r| !r.is_empty()).map(|_| ())
        })
        .await;
        assert!(
            caught_up.is_some(),
            "{id} never caught up; logs:\n{}",
            swarm.mesh.logs()
        );
        swarm.mesh.leader(&session).await;
    }
    let list = swarm.list();
    let lost: Vec<&TaskId> = accepted
        .iter()
        .filter(|id| !list.contains_key(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "lost {} of {} accepted tasks: {lost:?}\nlogs:\n{}",
        lost.len(),
        accepted.len(),
        swarm.mesh.logs()
    );
}
