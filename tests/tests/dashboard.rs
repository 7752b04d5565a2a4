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
use std::time::{Duration, Instant};
use swarm_tests::{Mesh, endpoint, isolate, swarm_node_bin};

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
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server".to_string()]);
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Polls `check` every 200 ms until it returns `Some`, or gives up after `timeout`.
fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
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
