//! Observers that lose their own link: `watch` and `energy --watch` as zenoh clients of the
//! swarm's leader, given every node's endpoint, on a real three-node mesh. The leader is
//! killed with SIGKILL: each observer must say it lost contact, never report the two live
//! members as gone, and then show them again under a new leader. (The dashboard's own case is
//! in dashboard.rs, on a real terminal.)

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swarm_tests::{
    LeaderFirst, Mesh, Node, endpoint, isolate, poll, swarm_node_bin, tcp_peer_ports,
};

/// A `swarm-node` observer whose stdout lines are gathered as they come; killed when dropped.
struct Observer {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Observer {
    fn start(mesh: &Mesh, args: &[&str], ports: &[u16]) -> Observer {
        let mut cmd = Command::new(swarm_node_bin());
        isolate(&mut cmd, mesh.dir.path());
        cmd.args(args)
            .args(["--swarm", &mesh.swarm, "--no-multicast", "--mode", "client"])
            .env("SWARM_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for p in ports {
            cmd.args(["--connect", &endpoint(*p)]);
        }
        let mut child = cmd.spawn().expect("starting an observer");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let gathered = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                gathered.lock().expect("lines").push(line);
            }
        });
        Observer { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// The loopback ports it holds TCP links to, once it holds any.
    fn linked(&self) -> Vec<u16> {
        poll(Duration::from_secs(15), || {
            let ports = tcp_peer_ports(self.child.id());
            (!ports.is_empty()).then_some(ports)
        })
        .unwrap_or_default()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `watch`'s "<ms> term T: X leads" as (T, X).
fn new_leader(line: &str) -> Option<(u64, &str)> {
    let rest = line.split_once(" term ")?.1;
    let (term, leader) = rest.split_once(": ")?;
    Some((term.parse().ok()?, leader.strip_suffix(" leads")?))
}

/// The ids of an `energy` table's rows in one round of text (a row starts with its id).
fn energy_rows(round: &[String]) -> Vec<String> {
    round
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.len() == 2 && w.starts_with('n'))
        .map(String::from)
        .collect()
}

#[test]
fn watch_and_energy_watch_tell_their_own_lost_link_from_members_leaving() {
    let mut mesh = Mesh::start("lostwatch", 3);
    // Every node's endpoint, the leader's first: a client links to the first it reaches, and
    // fails over to the others when that link goes.
    let LeaderFirst {
        leader,
        term,
        index: victim,
        others: live,
        ports,
    } = mesh.leader_first();
    let watch = Observer::start(&mesh, &["watch"], &ports);
    let energy = Observer::start(&mesh, &["energy", "--watch", "--every-ms", "300"], &ports);
    let ready = poll(Duration::from_secs(30), || {
        let members = watch
            .lines()
            .iter()
            .any(|l| l.contains("in contact with the swarm: members n0, n1, n2"));
        let rows = energy.lines().iter().filter(|l| l.contains(" W ")).count() >= 3;
        (members && rows).then_some(())
    });
    assert!(
        ready.is_some(),
        "the observers never showed the swarm:\n--- watch\n{}\n--- energy\n{}\n{}",
        watch.text(),
        energy.text(),
        mesh.logs()
    );
    for (name, o) in [("watch", &watch), ("energy --watch", &energy)] {
        assert_eq!(
            o.linked(),
            [ports[0]],
            "{name} should be linked to {leader}, the first endpoint it was given"
        );
    }
    let (watch_before, energy_before) = (watch.lines().len(), energy.lines().len());

    mesh.nodes[victim].signal(nix::sys::signal::Signal::SIGKILL);
    let _ = mesh.nodes[victim].wait(Duration::from_secs(10));
    let settled = poll(Duration::from_secs(60), || {
        let after = watch.lines().split_off(watch_before);
        for line in &after {
            for id in &live {
                let word = line.split_whitespace().nth(1);
                assert!(
                    !(word == Some(id.as_str()) && line.contains(" gone")),
                    "{id} is alive but watch says: {line}\n{}",
                    watch.text()
                );
            }
        }
        let lost = after.iter().position(|l| {
            l.contains("lost contact with the swarm: this observer's own link closed")
        })?;
        let roll = format!(
            "still in the swarm: {}; gone while out of contact: {leader}",
            live.join(", ")
        );
        let back = after.iter().skip(lost).any(|l| l.contains(&roll));
        // The new leader's heartbeats may come over the new link before the look at the
        // links that tells the loss.
        let led = after.iter().any(|l| {
            new_leader(l).is_some_and(|(t, who)| t > term && live.iter().any(|id| id == who))
        });
        (back && led).then_some(())
    });
    assert!(
        settled.is_some(),
        "after {leader} was killed, watch never said it lost contact and then showed {live:?} \
         under a new leader:\n{}\n{}",
        watch.text(),
        mesh.logs()
    );

    let shown_again = poll(Duration::from_secs(30), || {
        let after = energy.lines().split_off(energy_before);
        for line in &after {
            assert!(
                !line.starts_with("no node of swarm"),
                "energy --watch took its lost link for an empty swarm: {line}\n{}",
                energy.text()
            );
        }
        let lost = after
            .iter()
            .position(|l| l.contains("lost contact with the swarm"))?;
        // Rounds are separated by an empty line; the last complete one after the loss.
        let rounds: Vec<&[String]> = after[lost..].split(|l| l.is_empty()).collect();
        let last = rounds.iter().rev().nth(1)?;
        let rows = energy_rows(last);
        let shown = live.iter().all(|id| rows.contains(id)) && !rows.contains(&leader);
        shown.then_some(())
    });
    assert!(
        shown_again.is_some(),
        "after {leader} was killed, energy --watch never said it lost contact and then showed \
         {live:?}:\n{}\n{}",
        energy.text(),
        mesh.logs()
    );
}

#[test]
fn watch_given_one_endpoint_stays_out_of_contact_until_its_node_returns() {
    let mut mesh = Mesh::start("onelink", 3);
    let LeaderFirst {
        leader,
        term,
        index: victim,
        ..
    } = mesh.leader_first();
    let port = mesh.nodes[victim].port;
    // As the README has it: one node's endpoint. A client learns no others (zenoh gossips
    // locators to peers only), so it can only wait for that node.
    let watch = Observer::start(&mesh, &["watch"], &[port]);
    let ready = poll(Duration::from_secs(30), || {
        watch
            .lines()
            .iter()
            .any(|l| l.contains("in contact with the swarm: members n0, n1, n2"))
            .then_some(())
    });
    assert!(
        ready.is_some(),
        "watch never listed the swarm:\n{}",
        watch.text()
    );
    let before = watch.lines().len();

    mesh.nodes[victim].signal(nix::sys::signal::Signal::SIGKILL);
    let _ = mesh.nodes[victim].wait(Duration::from_secs(10));
    let no_departures = |lines: &[String]| {
        if let Some(line) = lines.iter().find(|l| l.contains(" gone: ")) {
            panic!(
                "watch reported a departure it could not have seen: {line}\n{}",
                watch.text()
            );
        }
    };
    let lost = poll(Duration::from_secs(30), || {
        let after = watch.lines().split_off(before);
        no_departures(&after);
        after
            .iter()
            .any(|l| {
                l.contains("lost contact with the swarm") && l.ends_with("unconfirmed: n0, n1, n2")
            })
            .then_some(())
    });
    assert!(
        lost.is_some(),
        "watch never said it lost contact:\n{}",
        watch.text()
    );

    // The node comes back on its port; the others elected a leader meanwhile.
    let others: Vec<u16> = mesh.ports().into_iter().filter(|p| *p != port).collect();
    mesh.nodes[victim] = Node::spawn(mesh.dir.path(), &mesh.swarm, &leader, port, &others);
    let back = poll(Duration::from_secs(60), || {
        let after = watch.lines().split_off(before);
        no_departures(&after);
        let roll = after.iter().any(|l| {
            l.ends_with("still in the swarm: n0, n1, n2; gone while out of contact: none")
        });
        let led = after
            .iter()
            .any(|l| new_leader(l).is_some_and(|(t, _)| t > term));
        (roll && led).then_some(())
    });
    assert!(
        back.is_some(),
        "watch never showed the swarm again once {leader} was back:\n{}\n{}",
        watch.text(),
        mesh.logs()
    );
}
