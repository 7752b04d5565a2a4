//! The threads a running node starts (`nodes/src/threads.rs`), read from the kernel's list of
//! the process's threads: a node without the bridge hands zenoh's app, acceptor and network
//! work to the receiving runtime; a gateway keeps zenoh's own set, and so does a node whose
//! user set `ZENOH_RUNTIME`.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, extra: &[String], zenoh_runtime: Option<&str>) -> Node {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm-node"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("SWARM_") || key == "ZENOH_RUNTIME" {
            cmd.env_remove(key);
        }
    }
    if let Some(rt) = zenoh_runtime {
        cmd.env("ZENOH_RUNTIME", rt);
    }
    cmd.env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .args([
            "run",
            "--id",
            "threads",
            "--swarm",
            "threads",
            "--no-multicast",
        ])
        .args(["--listen", &format!("tcp/127.0.0.1:{}", free_port())])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    Node(cmd.spawn().expect("swarm-node starts"))
}

/// The names of the process's threads, once one of zenoh's runtimes has started.
fn threads_once_running(node: &Node) -> Vec<String> {
    let pid = node.0.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|dir| {
                dir.filter_map(|t| {
                    let path = t.ok()?.path().join("comm");
                    Some(std::fs::read_to_string(path).ok()?.trim().to_string())
                })
                .collect()
            })
            .unwrap_or_default();
        let running = ["app-", "acc-", "net-", "rx-", "tx-"]
            .iter()
            .any(|p| count(&names, p) > 0);
        if running {
            // The session opens its runtimes within moments of each other.
            std::thread::sleep(Duration::from_secs(2));
            return std::fs::read_dir(format!("/proc/{pid}/task"))
                .expect("the node is still running")
                .filter_map(|t| {
                    let path = t.ok()?.path().join("comm");
                    Some(std::fs::read_to_string(path).ok()?.trim().to_string())
                })
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "no zenoh runtime thread after 30 s: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(names: &[String], prefix: &str) -> usize {
    names.iter().filter(|n| n.starts_with(prefix)).count()
}

#[test]
fn a_node_without_the_bridge_runs_zenohs_app_work_on_its_receiving_worker() {
    let dir = tempfile::tempdir().unwrap();
    let names = threads_once_running(&start(dir.path(), &[], None));
    assert_eq!(count(&names, "app-"), 0, "{names:?}");
    assert_eq!(count(&names, "net-"), 0, "{names:?}");
    assert_eq!(count(&names, "acc-"), 0, "{names:?}");
    assert!(count(&names, "rx-") <= 1, "{names:?}");
}

#[test]
fn a_gateway_and_a_users_zenoh_runtime_keep_zenohs_own_runtimes() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt = vec![
        "--mqtt-listen".to_string(),
        format!("127.0.0.1:{}", free_port()),
    ];
    let gateway = threads_once_running(&start(dir.path(), &mqtt, None));
    assert_eq!(count(&gateway, "net-"), 1, "{gateway:?}");
    assert_eq!(count(&gateway, "acc-"), 1, "{gateway:?}");

    let dir = tempfile::tempdir().unwrap();
    let own = threads_once_running(&start(dir.path(), &[], Some("(net: (worker_threads: 2))")));
    assert_eq!(count(&own, "net-"), 2, "{own:?}");
    assert_eq!(count(&own, "acc-"), 1, "{own:?}");
}
