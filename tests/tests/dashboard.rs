//! The dashboards as a user runs them: the real binary in a real terminal (a detached tmux
//! session of fixed size, on a tmux server of the test's own), against a real three-node
//! mesh; then `q`, and the process is gone with the terminal given back.
//!
//! A shell in the pane runs the dashboard and writes its exit status to a file: tmux itself
//! may show a pane dead for seconds before it reaps the process and knows the status.
//!
//! Skipped, with a message, where tmux is not installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use swarm_tests::{
    LeaderFirst, Mesh, child_pids, endpoint, isolate, poll, swarm_node_bin, tcp_peer_ports,
};

/// A tmux server of the test's own (`-L`), so a user's tmux is never touched; killed on drop
/// whatever happened.
struct Tmux {
    socket: String,
    session: String,
    conf: PathBuf,
    env: Vec<(String, String)>,
    dir: PathBuf,
    /// Where the pane's shell writes the dashboard's exit status.
    status: PathBuf,
    /// The server's socket file, which tmux leaves behind when it exits.
    socket_path: Option<PathBuf>,
}

impl Tmux {
    fn installed() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Starts `argv` in a detached `width` × `height` session, with the test's isolated
    /// config and state (the same as `isolate` gives a child process).
    fn start(dir: &Path, name: &str, argv: &[String]) -> Tmux {
        let conf = dir.join(format!("{name}.tmux.conf"));
        // A dead pane stays, so its last screen can be read; no user config.
        std::fs::write(&conf, "set -g remain-on-exit on\n").expect("writing tmux.conf");
        let status = dir.join(format!("{name}.status"));
        let mut probe = Command::new("true");
        isolate(&mut probe, dir);
        let env = probe
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
            .collect();
        let mut tmux = Tmux {
            socket: format!("swarm-{name}-{}", std::process::id()),
            session: name.to_string(),
            conf,
            env,
            dir: dir.to_path_buf(),
            status,
            socket_path: None,
        };
        let mut args: Vec<String> = ["new-session", "-d", "-s", name, "-x", "120", "-y", "40"]
            .map(String::from)
            .into();
        for (k, v) in &tmux.env {
            args.extend(["-e".to_string(), format!("{k}={v}")]);
        }
        // sh -c 'SCRIPT' $0 $1...: the status file is $0, the dashboard's argv the rest.
        args.extend(["sh", "-c", r#""$@"; echo $? > "$0""#].map(String::from));
        args.push(tmux.status.display().to_string());
        args.extend(argv.iter().cloned());
        let out = tmux.run(&args);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let socket = tmux.tmux(&["display-message", "-p", "#{socket_path}"]);
        tmux.socket_path = Some(PathBuf::from(socket.trim())).filter(|p| p.is_absolute());
        tmux
    }

    fn run(&self, args: &[String]) -> Output {
        let mut cmd = Command::new("tmux");
        isolate(&mut cmd, &self.dir);
        cmd.arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.conf)
            .args(args)
            .output()
            .expect("running tmux")
    }

    fn tmux(&self, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        String::from_utf8_lossy(&self.run(&args).stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &self.session])
    }

    /// Whether the pane shows the alternate screen.
    fn alternate_on(&self) -> bool {
        self.tmux(&[
            "display-message",
            "-p",
            "-t",
            &self.session,
            "#{alternate_on}",
        ])
        .trim()
            == "1"
    }

    /// The dashboard's exit status, once it has exited.
    fn exit_status(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.status).ok()?;
        text.ends_with('\n').then(|| text.trim().to_string())
    }

    fn press(&self, key: &str) {
        self.tmux(&["send-keys", "-t", &self.session, key]);
    }

    /// The dashboard's process: the child of the pane's shell.
    fn dashboard_pid(&self) -> Option<u32> {
        let shell = self
            .tmux(&["display-message", "-p", "-t", &self.session, "#{pane_pid}"])
            .trim()
            .parse::<u32>()
            .ok()?;
        child_pids(shell).first().copied()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server".to_string()]);
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn board_command(mesh: &Mesh, board: &str) -> Vec<String> {
    let mut argv = vec![
        swarm_node_bin().display().to_string(),
        board.to_string(),
        "--swarm".into(),
        mesh.swarm.clone(),
        "--no-multicast".into(),
    ];
    // One node is enough: the board is that node's client and sees the swarm through it.
    if let Some(p) = mesh.ports().last() {
        argv.extend(["--connect".to_string(), endpoint(*p)]);
    }
    argv
}

/// The row of `id` in a captured table: it starts with the border and the id.
fn row<'a>(screen: &'a str, id: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.starts_with(&format!("│{id} ")))
}

/// q quits: the process exits 0, and the terminal is out of the alternate screen.
fn quits_cleanly(tmux: &Tmux, mesh: &Mesh) {
    assert!(tmux.exit_status().is_none(), "exited before q");
    assert!(tmux.alternate_on(), "runs on the alternate screen");
    tmux.press("q");
    let status = poll(Duration::from_secs(10), || tmux.exit_status());
    assert_eq!(
        status.as_deref(),
        Some("0"),
        "exit status after q\n{}\n{}",
        tmux.screen(),
        mesh.logs()
    );
    let restored = poll(Duration::from_secs(5), || {
        (!tmux.alternate_on()).then_some(())
    });
    assert!(
        restored.is_some(),
        "still on the alternate screen after exit:\n{}",
        tmux.screen()
    );
}

#[test]
fn dashboard_shows_the_members_and_the_leader_and_quits_on_q() {
    if !Tmux::installed() {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let mesh = Mesh::start("dashboard", 3);
    let tmux = Tmux::start(
        mesh.dir.path(),
        "dashboard",
        &board_command(&mesh, "dashboard"),
    );
    let seen = poll(Duration::from_secs(30), || {
        let screen = tmux.screen();
        let all = ["n0", "n1", "n2"]
            .iter()
            .all(|id| row(&screen, id).is_some());
        let led = screen.contains("│ leader n") && screen.contains("leader  ");
        (all && led).then_some(screen)
    });
    let screen = seen.unwrap_or_else(|| {
        panic!(
            "three members and a leader never showed:\n{}\n{}",
            tmux.screen(),
            mesh.logs()
        )
    });
    assert!(screen.contains("members (3)"), "{screen}");
    quits_cleanly(&tmux, &mesh);
}

#[test]
fn green_shows_every_nodes_watts_and_quits_on_q() {
    if !Tmux::installed() {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let mesh = Mesh::start("green", 3);
    let tmux = Tmux::start(mesh.dir.path(), "green", &board_command(&mesh, "green"));
    let watts = |line: &str| {
        line.split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w[1] == "W" && w[0].parse::<f64>().is_ok_and(|x| x > 0.0))
    };
    let seen = poll(Duration::from_secs(30), || {
        let screen = tmux.screen();
        let all = ["n0", "n1", "n2"]
            .iter()
            .all(|id| row(&screen, id).is_some_and(watts));
        (all && screen.contains("3 of 3 node(s) reporting")).then_some(screen)
    });
    assert!(
        seen.is_some(),
        "every node's watts never showed:\n{}\n{}",
        tmux.screen(),
        mesh.logs()
    );
    quits_cleanly(&tmux, &mesh);
}

/// The leader and term the header names when the board is in contact and sure of every member
/// (no "lost contact" or "checking" before it).
fn header_leader(screen: &str) -> Option<(String, u64)> {
    let rest = screen.lines().find_map(|l| l.strip_prefix("│ leader "))?;
    let mut words = rest.split_whitespace();
    let leader = words.next()?.to_string();
    let term = words.nth(2)?.parse().ok()?;
    Some((leader, term))
}

/// A line of the screen saying `id` left or went.
fn says_gone<'a>(screen: &'a str, id: &str) -> Option<&'a str> {
    let said = [
        format!(" {id} gone"),
        format!(" {id} (the leader) gone"),
        format!(" {id} left"),
        format!(" {id} (the leader) left"),
    ];
    screen
        .lines()
        .find(|l| said.iter().any(|s| l.contains(s.as_str())))
}

#[test]
fn dashboard_that_loses_its_node_says_so_then_shows_the_swarm_with_its_new_leader() {
    if !Tmux::installed() {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let mut mesh = Mesh::start("lostboard", 3);
    // Every node's endpoint, the leader's first: a client links to the first it reaches, and
    // fails over to the others when that link goes.
    let LeaderFirst {
        leader,
        term,
        index: victim,
        others: live,
        ports,
    } = mesh.leader_first();
    let mut argv = vec![
        swarm_node_bin().display().to_string(),
        "dashboard".into(),
        "--swarm".into(),
        mesh.swarm.clone(),
        "--no-multicast".into(),
    ];
    for p in &ports {
        argv.extend(["--connect".to_string(), endpoint(*p)]);
    }
    let tmux = Tmux::start(mesh.dir.path(), "lostboard", &argv);
    let seen = poll(Duration::from_secs(30), || {
        let screen = tmux.screen();
        let all = ["n0", "n1", "n2"]
            .iter()
            .all(|id| row(&screen, id).is_some());
        (all && header_leader(&screen).is_some()).then_some(())
    });
    assert!(
        seen.is_some(),
        "three members and a leader never showed:\n{}\n{}",
        tmux.screen(),
        mesh.logs()
    );
    let pid = tmux.dashboard_pid().expect("the dashboard's process");
    assert_eq!(
        tcp_peer_ports(pid),
        [ports[0]],
        "the board should be linked to {leader}, the first endpoint it was given"
    );

    mesh.nodes[victim].signal(nix::sys::signal::Signal::SIGKILL);
    let _ = mesh.nodes[victim].wait(Duration::from_secs(10));
    let mut said_lost = false;
    let back = poll(Duration::from_secs(60), || {
        let screen = tmux.screen();
        for id in &live {
            if let Some(line) = says_gone(&screen, id) {
                panic!("{id} is alive but the board says:\n{line}\n\n{screen}");
            }
        }
        said_lost |= screen.contains("lost contact with the swarm");
        let rows_back = live
            .iter()
            .all(|id| row(&screen, id).is_some_and(|r| !r.contains("unconfirmed")));
        let new_leader = header_leader(&screen).is_some_and(|(l, t)| live.contains(&l) && t > term);
        let victim_gone = row(&screen, &leader).is_none();
        (said_lost && rows_back && new_leader && victim_gone).then_some(screen)
    });
    let screen = back.unwrap_or_else(|| {
        panic!(
            "after {leader} was killed the board never said it lost contact ({said_lost}) and \
             then showed {live:?} under a new leader:\n{}\n{}",
            tmux.screen(),
            mesh.logs()
        )
    });
    assert!(screen.contains("members (2)"), "{screen}");
    // Usually "not in the swarm when contact came back"; "token withdrawn" when the node the
    // board failed over to had not yet seen the leader's link close.
    assert!(
        says_gone(&screen, &leader).is_some(),
        "{leader}'s end is told once the board sees the swarm again:\n{screen}"
    );
    quits_cleanly(&tmux, &mesh);
}
