//! Simulated boards (`swarm-bridge devices`) in a process of their own, for tests that run a
//! bridge against them.

use crate::swarm_bridge_bin;
use std::process::{Child, Command, Stdio};

/// The swarm every test bridge serves.
pub const SWARM: &str = "br";

/// `swarm-bridge devices` in its own process.
pub struct Boards {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Boards {
    pub fn spawn(port: u16, count: usize, prefix: &str, keep_alive_s: u64) -> Boards {
        Self::spawn_with(port, count, prefix, keep_alive_s, &["--interval-ms", "500"])
    }

    pub fn spawn_with(
        port: u16,
        count: usize,
        prefix: &str,
        keep_alive_s: u64,
        extra: &[&str],
    ) -> Boards {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(swarm_bridge_bin())
            .args([
                "devices",
                "--count",
                &count.to_string(),
                "--mqtt",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--swarm", SWARM, "--prefix", prefix])
            .args(extra)
            .args(["--keep-alive-s", &keep_alive_s.to_string()])
            .env_remove("SWARM_CONFIG")
            .env("SWARM_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("starting swarm-bridge devices");
        Boards { child, log }
    }

    pub fn signal(&mut self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, signal);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Boards {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
