//! Real `swarm-node run` processes for the benchmarks, and what /proc says about them.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use swarm_bus::SwarmName;

pub fn endpoint(port: u16) -> String {
    format!("tcp/127.0.0.1:{port}")
}

/// Starts this same binary as a node on loopback, connected to the given ports.
pub fn spawn_node(
    id: &str,
    swarm: &SwarmName,
    port: u16,
    connect: &[u16],
    state: &Path,
) -> anyhow::Result<Child> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args([
        "run",
        "--id",
        id,
        "--swarm",
        swarm.as_str(),
        "--no-multicast",
    ])
    .args(["--listen", &endpoint(port)])
    .arg("--state-dir")
    .arg(state.join(id))
    .env("SWARM_LOG", "warn")
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    for p in connect {
        cmd.args(["--connect", &endpoint(*p)]);
    }
    die_with_parent(&mut cmd);
    cmd.spawn().context("starting swarm-node run")
}

/// A bench stopped by a signal runs no destructors: its nodes must not outlive it, or they
/// join (and skew) the next run on the same ports.
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only prctl(2) runs, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
}

/// The measuring session: a plain peer listening on `port`, which the nodes connect to.
pub async fn open_observer(port: u16) -> anyhow::Result<zenoh::Session> {
    Ok(swarm_bus::zenoh::open(&swarm_bus::zenoh::ZenohSettings {
        mode: swarm_bus::zenoh::SessionMode::Peer,
        listen: vec![endpoint(port)],
        connect: Vec::new(),
        multicast_scouting: false,
        ..swarm_bus::zenoh::ZenohSettings::default()
    })
    .await?)
}

/// A fresh directory for the nodes' state, under the system temp dir.
pub fn state_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("swarm-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

pub struct Nodes(pub Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS in /proc status")
}

pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("bad /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .context("bad /proc stat")
    };
    Ok(field(11)? + field(12)?)
}

pub fn clock_ticks() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map(|t| t as f64)
        .unwrap_or(100.0)
}
