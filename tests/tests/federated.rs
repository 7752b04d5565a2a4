//! One task on several workers, on five real nodes through the CLI (docs/tasks.md#federated).
//! n4's handlers answer wrong (fast), the others right (after a pause), so n4's answer is in
//! every vote it takes part in: `median` names it as the outlier, `majority` as the dissenter
//! until its reputation keeps it out; `first-valid` kills the slow replicas' process groups;
//! `best-of` takes the answer its handler scored highest; more replicas than workers is
//! refused; forged final words count no vote; and a vote outlives its leader, decided once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use swarm_bus::zenoh::{self as bus, ZenohSettings};
use swarm_bus::{NodeId, TaskAnswer, TaskId, TaskLeaf, TaskResult, TaskState};
use swarm_tests::{Mesh, eventually};

/// n4 is the bad board: its `classify` answers `wrong` at once and its `read` is 85.0; the
/// others answer `right` and 20.x after `pause` seconds. `render` writes its process group
/// to `<dir>/render-<node>.pgid`; n0 renders in 0.2 s, everyone else in 60 s.
fn config(node: &str, i: usize, dir: &Path, pause: &str) -> String {
    let bad = node == "n4";
    let runs = dir.join("runs.log");
    let runs = runs.display();
    let (answer, reading, wait) = if bad {
        ("wrong".to_string(), "85.0".to_string(), "0")
    } else {
        ("right".to_string(), format!("20.{i}"), pause)
    };
    let render_wait = if node == "n0" { "0.2" } else { "60" };
    let pgid = dir.join(format!("render-{node}.pgid"));
    format!(
        "[tasks]\nbuiltins = [\"echo\"]\n\
         [tasks.handlers.classify]\n\
         command = [\"/bin/sh\", \"-c\", \"echo \\\"$SWARM_TASK_ID {node}\\\" >> {runs}; sleep {wait}; echo {answer}\"]\n\
         env = [\"PATH\"]\n\
         [tasks.handlers.read]\n\
         command = [\"/bin/sh\", \"-c\", \"sleep {wait}; echo {reading}\"]\n\
         env = [\"PATH\"]\n\
         [tasks.handlers.guess]\n\
         command = [\"/bin/sh\", \"-c\", \"echo {i}.5 > \\\"$SWARM_SCORE_FILE\\\"; echo {node}\"]\n\
         env = [\"PATH\"]\n\
         [tasks.handlers.render]\n\
         command = [\"/bin/sh\", \"-c\", \"echo $$ > {pgid}; sleep {render_wait}; echo frame\"]\n\
         env = [\"PATH\"]\n",
        pgid = pgid.display(),
    )
}

struct Swarm {
    mesh: Mesh,
    runs: PathBuf,
}

impl Swarm {
    fn start(swarm: &str, pause: &str) -> Swarm {
        let mut mesh = Mesh::start(swarm, 0);
        let runs = mesh.dir.path().join("runs.log");
        for i in 0..5 {
            let id = format!("n{i}");
            let text = config(&id, i, mesh.dir.path(), pause);
            mesh.add_configured(&id, &text);
        }
        Swarm { mesh, runs }
    }

    fn settings(&self) -> ZenohSettings {
        ZenohSettings {
            listen: Vec::new(),
            ..self.mesh.settings()
        }
    }

    /// `task submit ... --json`: the id, or the CLI's error.
    fn submit(&self, cap: &str, replicas: &str, pick: &str) -> Result<String, String> {
        let args = [
            "task",
            "submit",
            "--cap",
            cap,
            "--replicas",
            replicas,
            "--pick",
            pick,
            "--timeout",
            "30",
            "--wait-ms",
            "10000",
            "--json",
        ];
        let (code, out, err) = self.mesh.cli(&args);
        if code != 0 {
            return Err(err);
        }
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        Ok(v["id"].as_str().expect("an id").to_string())
    }

    /// The task's final word, waiting for it.
    async fn decided(&self, id: &str) -> serde_json::Value {
        eventually(Duration::from_secs(40), || async {
            let (code, out, _) = self.mesh.cli(&["task", "status", id, "--json"]);
            let s: serde_json::Value = serde_json::from_str(&out).ok()?;
            (code == 0 && s["state"] != "queued" && s["state"] != "running").then_some(s)
        })
        .await
        .unwrap_or_else(|| panic!("{id} was never decided; logs:\n{}", self.mesh.logs()))
    }

    /// Runs of `classify` so far: task → nodes that started it.
    fn runs(&self) -> BTreeMap<String, Vec<String>> {
        let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in std::fs::read_to_string(&self.runs)
            .unwrap_or_default()
            .lines()
        {
            if let Some((t, n)) = line.split_once(' ') {
                runs.entry(t.to_string()).or_default().push(n.to_string());
            }
        }
        runs
    }
}

/// A forged final word on `id` from a stray session: n0 dissenting from a decision, named
/// five times over, and a worker that does not exist.
async fn forge_dissent(session: &zenoh::Session, swarm: &Swarm, id: &str) {
    let answer = |worker: &str| TaskAnswer {
        worker: NodeId::new(worker).unwrap(),
        attempt: 1,
        state: TaskState::Succeeded,
        output: Default::default(),
        score: None,
        joules: None,
        agrees: Some(false),
    };
    let mut answers = vec![answer("n0"); 5];
    answers.push(answer("ghost"));
    let word = TaskResult {
        answers: Some(answers),
        ..swarm_bus::samples::task_result()
    };
    let key = swarm
        .mesh
        .keys()
        .task(&TaskId::new(id).unwrap(), TaskLeaf::State);
    bus::publish(session, &key, &word).await.unwrap();
}

/// Each answer's worker and vote.
fn votes(status: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    status["answers"]
        .as_array()
        .unwrap_or_else(|| panic!("no answers: {status}"))
        .iter()
        .map(|a| {
            (
                a["worker"].as_str().unwrap().to_string(),
                a["agrees"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn five_workers_vote_a_wrong_board_is_named_and_then_left_out() {
    let swarm = Swarm::start("federated", "1");
    let session = bus::open_observer(&swarm.settings()).await.unwrap();
    swarm.mesh.leader(&session).await;

    // More replicas than workers offering the capability: refused, with the reason.
    let refused = swarm.submit("classify", "6", "majority").unwrap_err();
    assert!(
        refused.contains("6 replicas asked for, but only 5"),
        "{refused}"
    );

    // Hostile: a final word on a task nobody submitted, naming n0 as a dissenter, counts
    // nothing anywhere (checked at the end: n0 agreed with every decision).
    forge_dissent(&session, &swarm, "t-forged").await;

    // The median of five readings; n4's 85.0 is the outlier it names.
    let id = swarm.submit("read", "5", "median").unwrap();
    let s = swarm.decided(&id).await;
    assert_eq!(s["state"], "succeeded", "{s}");
    assert_eq!(s["value"], 20.2, "{s}");
    let v = votes(&s);
    assert_eq!(v.len(), 5, "{s}");
    assert_eq!(v["n4"], false, "the outlier: {s}");
    assert!(
        ["n0", "n1", "n2", "n3"].iter().all(|n| v[*n] == true),
        "{s}"
    );
    // Nor does a second, forged word on a task already decided.
    forge_dissent(&session, &swarm, &id).await;

    // First valid: n0's frame comes in 0.2 s and the four slow replicas are killed, their
    // handlers' whole process groups with them.
    let id = swarm.submit("render", "5", "first-valid").unwrap();
    let s = swarm.decided(&id).await;
    assert_eq!(
        (&s["state"], &s["worker"], &s["output"]),
        (&"succeeded".into(), &"n0".into(), &"frame\n".into()),
        "{s}"
    );
    for node in ["n1", "n2", "n3", "n4"] {
        let file = swarm.mesh.dir.path().join(format!("render-{node}.pgid"));
        let pgid: i32 = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{node} never started render: {e}"))
            .trim()
            .parse()
            .unwrap();
        let gone = eventually(Duration::from_secs(5), || async {
            let alive = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok();
            (!alive).then_some(())
        })
        .await;
        assert!(
            gone.is_some(),
            "{node}'s render (group {pgid}) still runs 5 s after the decision"
        );
    }

    // Majority of five: n4 answers first and wrong, three right answers decide, and n4 is
    // named each time, until its agreement falls below the floor (0.5) and five replicas
    // can no longer be found.
    let mut named = 0;
    loop {
        match swarm.submit("classify", "5", "majority") {
            Ok(id) => {
                let s = swarm.decided(&id).await;
                assert_eq!(s["state"], "succeeded", "{s}");
                assert_eq!(s["output"], "right\n", "{s}");
                assert_eq!(votes(&s)["n4"], false, "{s}");
                named += 1;
                assert!(named <= 3, "n4 still chosen after {named} dissents: {s}");
            }
            Err(why) => {
                assert!(why.contains("only 4"), "{why}");
                break;
            }
        }
    }
    assert!(
        named >= 2,
        "one dissent keeps a newcomer in; n4 was named {named} time(s)"
    );
    // Four replicas run without it.
    let id = swarm.submit("classify", "4", "majority").unwrap();
    let s = swarm.decided(&id).await;
    assert_eq!(s["output"], "right\n", "{s}");
    assert!(!votes(&s).contains_key("n4"), "{s}");
    assert!(!swarm.runs()[&id].contains(&"n4".to_string()));
    // Every node heard the decisions: status shows n4's agreement.
    let (code, out, err) = swarm.mesh.cli(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = |id: &str| {
        status
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {status}"))
            .clone()
    };
    let n4 = row("n4");
    assert_eq!(n4["agreement"]["agreed"], 0, "{n4}");
    assert_eq!(
        n4["agreement"]["decided"],
        named + 1,
        "the median and each majority: {n4}"
    );
    let n0 = row("n0");
    assert_eq!(
        n0["agreement"]["agreed"], n0["agreement"]["decided"],
        "{n0}"
    );
    // At least the median and first-valid (n0's frame); in a majority its answer may come
    // after the decision and carry no vote. A forged dissent would show as agreed < decided.
    assert!(
        n0["agreement"]["decided"].as_u64() >= Some(2),
        "no forged vote counted: {n0}"
    );

    // Best of four by the handlers' own scores (n<i> scores i.5; n4 is left out by now).
    let id = swarm.submit("guess", "4", "best-of").unwrap();
    let s = swarm.decided(&id).await;
    assert_eq!(
        (&s["worker"], &s["score"]),
        (&"n3".into(), &3.5.into()),
        "{s}"
    );
    let scores: Vec<f64> = s["answers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["score"].as_f64())
        .collect();
    assert_eq!(scores.len(), 4, "every answer carries its score: {s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vote_outlives_its_leader_and_is_decided_once() {
    let mut swarm = Swarm::start("fedfail", "4");
    let session = bus::open_observer(&swarm.settings()).await.unwrap();
    let (leader, _) = swarm.mesh.leader(&session).await;
    let id = swarm.submit("classify", "3", "majority").unwrap();
    // The replicas run (4 s each); the leader dies before any of the good ones answers.
    let started = eventually(Duration::from_secs(10), || async {
        swarm.runs().get(&id).filter(|r| r.len() >= 3).cloned()
    })
    .await
    .expect("three replicas started");
    let n = swarm
        .mesh
        .nodes
        .iter()
        .position(|x| x.id == leader.as_str())
        .unwrap();
    swarm.mesh.nodes[n].signal(nix::sys::signal::Signal::SIGKILL);
    swarm.mesh.nodes[n].wait(Duration::from_secs(5));
    let s = swarm.decided(&id).await;
    assert_eq!(s["state"], "succeeded", "{s}\nstarted on {started:?}");
    assert_eq!(s["output"], "right\n", "{s}");
    // Decided once: no live worker ran it twice, and no answer counts twice.
    let runs = swarm.runs()[&id].clone();
    let mut distinct = runs.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        runs.len(),
        "a worker ran it twice: {runs:?}"
    );
    assert!(votes(&s).len() <= 3, "{s}");
}
