//! What the binaries print, as a user or a script sees it: short-lived commands say only their
//! own output, or one line when nothing answers; log lines carry colour only to a terminal; a
//! benchmark that receives nothing says where it listened.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use swarm_tests::{
    Node, PtyPair, endpoint, eventually, free_port, isolate, swarm_bridge_bin, swarm_node_bin,
};

const ESCAPE: &str = "\x1b[";

/// `bin args` with the test's own config and state, and none of the environment that decides
/// how logs look (a CI runner may set NO_COLOR, TERM=dumb, or run under systemd): each test sets
/// what it means.
fn command(bin: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    isolate(&mut cmd, dir);
    cmd.args(args)
        .env_remove("NO_COLOR")
        .env_remove("JOURNAL_STREAM")
        .env("TERM", "xterm")
        .stdin(Stdio::null());
    cmd
}

/// (exit code, stdout, stderr).
fn output(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().expect("running the command");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A loopback endpoint nothing listens on.
fn nowhere() -> String {
    endpoint(free_port())
}

/// `swarm-node ARGS` in the swarm `nobody`, connecting only to a port nothing listens on.
fn asking_nowhere(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = command(swarm_node_bin(), dir, args);
    cmd.args([
        "--swarm",
        "nobody",
        "--no-multicast",
        "--connect",
        &nowhere(),
    ]);
    cmd
}

#[test]
fn nothing_answering_is_one_line_on_stderr_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let fast = ["--timeout-ms", "300"];
    for (args, says) in [
        (&["status"][..], "no node of swarm `nobody` answered"),
        (&["energy"], "no node of swarm `nobody` answered"),
        (&["energy", "--json"], "no node of swarm `nobody` answered"),
        (&["cadence", "show"], "no node of swarm `nobody` answered"),
        (&["task", "list"], "no node of swarm `nobody` answered"),
        (
            &["task", "status", "t-1"],
            "no node of swarm `nobody` answered",
        ),
        (
            &["task", "cancel", "t-1"],
            "no leader of swarm `nobody` answered",
        ),
        (
            &["propose", "--cadence", "normal"],
            "no leader of swarm `nobody`",
        ),
    ] {
        let mut cmd = asking_nowhere(dir.path(), args);
        cmd.args(fast);
        let (code, stdout, stderr) = output(cmd);
        assert_ne!(code, 0, "{args:?}: {stdout}{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?} said:\n{stderr}");
        assert!(stderr.contains(says), "{args:?} said:\n{stderr}");
        if !args.contains(&"--json") {
            assert_eq!(stdout, "", "{args:?}");
        }
    }
    for args in [
        &["task", "submit", "--cap", "echo", "--wait-ms", "300"][..],
        &["cadence", "set", "--mode", "normal", "--timeout-ms", "300"],
        &["identify", "n0", "--seconds", "1"],
    ] {
        let (code, stdout, stderr) = output(asking_nowhere(dir.path(), args));
        assert_ne!(code, 0, "{args:?}: {stdout}{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?} said:\n{stderr}");
        assert_eq!(stdout, "", "{args:?}");
    }
}

#[test]
fn zenoh_speaks_with_v_or_swarm_log_only() {
    let dir = tempfile::tempdir().unwrap();
    // With nothing at the far end, zenoh always warns that scouting ended before it connected.
    let warning = "Scouting delay elapsed";
    let quiet = output(asking_nowhere(
        dir.path(),
        &["status", "--timeout-ms", "300"],
    ));
    assert!(!quiet.2.contains(warning), "{}", quiet.2);
    let verbose = output(asking_nowhere(
        dir.path(),
        &["status", "-v", "--timeout-ms", "300"],
    ));
    assert!(verbose.2.contains(warning), "{}", verbose.2);
    let mut cmd = asking_nowhere(dir.path(), &["status", "--timeout-ms", "300"]);
    cmd.env("SWARM_LOG", "warn");
    let logged = output(cmd);
    assert!(logged.2.contains(warning), "{}", logged.2);
    assert_eq!(quiet.0, 1);
    assert_eq!(verbose.0, 1);
}

/// Runs `cmd` until it succeeds (a node that has just started may not answer yet), checking
/// every success prints nothing on stderr; returns the last stdout.
fn until_it_answers(what: &str, mut cmd: impl FnMut() -> Command, node: &Node) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, stdout, stderr) = output(cmd());
        if code == 0 {
            assert_eq!(
                stderr, "",
                "`{what}` succeeded and said on stderr:\n{stderr}"
            );
            return stdout;
        }
        assert!(
            Instant::now() < deadline,
            "`{what}` never answered ({code}): {stdout}{stderr}\nnode log:\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn status_energy_and_task_list_print_only_their_answer() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let node = Node::spawn(dir.path(), "quiet", "n0", port, &[]);
    let at = endpoint(port);
    let ask = |args: &'static [&'static str]| {
        let dir = dir.path().to_path_buf();
        let at = at.clone();
        move || {
            let mut cmd = command(swarm_node_bin(), &dir, args);
            cmd.args(["--swarm", "quiet", "--no-multicast", "--connect", &at]);
            cmd
        }
    };
    let status = until_it_answers("status", ask(&["status"]), &node);
    assert!(status.contains("n0"), "{status}");
    let energy = until_it_answers("energy", ask(&["energy"]), &node);
    assert!(energy.contains("n0"), "{energy}");
    let json = until_it_answers("energy --json", ask(&["energy", "--json"]), &node);
    assert!(json.contains("\"n0\""), "{json}");
    // A swarm without tasks answers with an empty list, unlike a swarm out of reach.
    let tasks = until_it_answers("task list", ask(&["task", "list"]), &node);
    assert!(tasks.contains("TASK"), "{tasks}");
}

#[test]
fn log_lines_to_a_file_or_a_pipe_carry_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    // `run` with stderr to a file, as under nohup or a supervisor.
    let node = Node::spawn(dir.path(), "plain", "n0", free_port(), &[]);
    let logged = (0..300).find_map(|_| {
        let log = node.log_text();
        if log.contains("INFO") {
            return Some(log);
        }
        std::thread::sleep(Duration::from_millis(100));
        None
    });
    let log = logged.unwrap_or_else(|| panic!("no INFO line:\n{}", node.log_text()));
    assert!(!log.contains(ESCAPE), "{log:?}");
    // A command with stderr to a pipe, asked to log.
    let (_, _, stderr) = output(asking_nowhere(
        dir.path(),
        &["status", "-v", "--timeout-ms", "300"],
    ));
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(!stderr.contains(ESCAPE), "{stderr:?}");
}

/// What `cmd` writes to stderr when that is a terminal, up to its line `until`.
fn on_a_terminal(dir: &Path, mut cmd: Command, until: &str) -> String {
    let ptys = PtyPair::start(dir);
    // Opened before the command starts, so nothing it writes is lost.
    let mut screen = std::fs::File::open(&ptys.device).expect("the far end of the pty");
    let terminal = std::fs::OpenOptions::new()
        .write(true)
        .open(&ptys.bridge)
        .expect("the pty");
    let mut child: Child = cmd
        .stdout(Stdio::null())
        .stderr(terminal)
        .spawn()
        .expect("starting the command");
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads block; the thread ends when socat goes and the pty with it.
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = screen.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen).contains(until) && Instant::now() < deadline {
        if let Ok(bytes) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.extend(bytes);
        }
    }
    let _ = child.wait();
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn a_terminal_gets_colour_unless_no_color_says_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["status", "-v", "--timeout-ms", "300"];
    let until = "answered within";
    let coloured = on_a_terminal(dir.path(), asking_nowhere(dir.path(), &args), until);
    assert!(coloured.contains(until), "{coloured:?}");
    assert!(coloured.contains(ESCAPE), "{coloured:?}");
    let mut cmd = asking_nowhere(dir.path(), &args);
    cmd.env("NO_COLOR", "1");
    let plain = on_a_terminal(dir.path(), cmd, until);
    assert!(plain.contains("WARN") && plain.contains(until), "{plain:?}");
    assert!(!plain.contains(ESCAPE), "{plain:?}");
}

#[test]
fn the_journal_gets_plain_lines_without_timestamps() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let lines = |journal_stream: &dyn Fn(&std::fs::Metadata) -> String| {
        let path = dir.path().join("stderr.log");
        let file = std::fs::File::create(&path).unwrap();
        let meta = file.metadata().unwrap();
        let mut cmd = asking_nowhere(dir.path(), &["status", "-v", "--timeout-ms", "300"]);
        cmd.env("JOURNAL_STREAM", journal_stream(&meta))
            .stdout(Stdio::null())
            .stderr(file);
        cmd.status().unwrap();
        std::fs::read_to_string(&path).unwrap()
    };
    // What systemd sets when the journal is stderr: its device and inode.
    let journal = lines(&|m| format!("{}:{}", m.dev(), m.ino()));
    let warning = journal.lines().find(|l| l.contains("WARN"));
    let warning = warning.unwrap_or_else(|| panic!("{journal:?}"));
    assert!(
        warning.starts_with("WARN") || warning.starts_with(" WARN"),
        "{journal:?}"
    );
    assert!(!journal.contains(ESCAPE), "{journal:?}");
    // Inherited from a service, but stderr is somewhere else: timestamps stay.
    let elsewhere = lines(&|m| format!("{}:{}", m.dev(), m.ino() + 1));
    let warning = elsewhere.lines().find(|l| l.contains("WARN"));
    let warning = warning.unwrap_or_else(|| panic!("{elsewhere:?}"));
    assert!(
        warning.starts_with(|c: char| c.is_ascii_digit()),
        "{elsewhere:?}"
    );
}

/// `swarm-bridge run` in the swarm `default`, killed when dropped.
struct Bridge {
    child: Child,
    log: std::path::PathBuf,
}

impl Bridge {
    fn start(dir: &Path, mqtt: u16, zenoh: u16) -> Bridge {
        let log = dir.join("bridge.log");
        let mut cmd = command(swarm_bridge_bin(), dir, &["run", "--no-multicast"]);
        cmd.args(["--mqtt-listen", &format!("127.0.0.1:{mqtt}")])
            .args(["--listen", &endpoint(zenoh)])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().expect("starting swarm-bridge run");
        Bridge { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bench_that_receives_nothing_says_where_it_listened() {
    let dir = tempfile::tempdir().unwrap();
    let (mqtt, zenoh) = (free_port(), free_port());
    let bridge = Bridge::start(dir.path(), mqtt, zenoh);
    let listening = eventually(Duration::from_secs(20), || async {
        let up = |p| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
        (up(mqtt) && up(zenoh)).then_some(())
    })
    .await;
    assert!(
        listening.is_some(),
        "the bridge never listened:\n{}",
        bridge.log()
    );
    let bench = |swarm: Option<&str>| {
        let mut cmd = command(swarm_bridge_bin(), dir.path(), &["bench"]);
        cmd.args([
            "--mqtt",
            &format!("127.0.0.1:{mqtt}"),
            "--zenoh",
            &endpoint(zenoh),
        ])
        .args([
            "--clients",
            "1",
            "--flood-s",
            "1",
            "--rate",
            "100",
            "--rate-s",
            "1",
        ])
        .args(["--connections", "0"]);
        if let Some(swarm) = swarm {
            cmd.args(["--swarm", swarm]);
        }
        output(cmd)
    };
    // The bench's own swarm is `bench`; the bridge's is `default`.
    let (code, stdout, stderr) = bench(None);
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for says in ["swarm `bench`", "`swarm/bench/node/**`", "--swarm"] {
        assert!(stderr.contains(says), "no `{says}` in: {stderr}");
    }
    // Named, the same bench gets through and reports, with nothing on stderr.
    let (code, stdout, stderr) = bench(Some("default"));
    assert_eq!(code, 0, "{stdout}{stderr}\nbridge log:\n{}", bridge.log());
    assert_eq!(stderr, "");
    assert!(
        stdout.contains("flood qos0") && stdout.contains("100/s qos1"),
        "{stdout}"
    );
}
