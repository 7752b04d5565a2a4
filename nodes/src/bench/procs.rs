//! Real `swarm-node run` processes for the benchmarks, and what /proc says about them.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use swarm_bus::SwarmName;

/// How the bench's processes link: plain TCP, or mutual TLS with certificates in a directory.
#[derive(Debug, Clone, Default)]
pub enum Link {
    #[default]
    Tcp,
    Tls(PathBuf),
}

impl Link {
    /// TLS with a fresh CA and a certificate for each of `names` and for the observer, in
    /// `state/tls`.
    pub fn tls_for<'a>(
        state: &Path,
        names: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<Link> {
        let dir = state.join("tls");
        crate::certs::init(&dir, true)?;
        use swarm_bus::zenoh::Access;
        for name in names {
            crate::certs::issue(&dir, &swarm_bus::NodeId::new(name)?, Access::Node, true)?;
        }
        let observer = swarm_bus::NodeId::new(OBSERVER)?;
        crate::certs::issue(&dir, &observer, Access::Observer, true)?;
        Ok(Link::Tls(dir))
    }

    pub fn endpoint(&self, port: u16) -> String {
        match self {
            Link::Tcp => format!("tcp/127.0.0.1:{port}"),
            Link::Tls(_) => format!("tls/127.0.0.1:{port}"),
        }
    }

    fn tls_dir(&self) -> Option<&Path> {
        match self {
            Link::Tcp => None,
            Link::Tls(dir) => Some(dir),
        }
    }
}

/// The certificate name of the measuring session.
const OBSERVER: &str = "bench-observer";

/// Starts this same binary as a node on loopback, connected to the given ports.
pub fn spawn_node(
    id: &str,
    swarm: &SwarmName,
    port: u16,
    connect: &[u16],
    state: &Path,
    link: &Link,
) -> anyhow::Result<Child> {
    spawn_node_with(id, swarm, port, connect, state, link, &[], true)
}

/// [`spawn_node`] with more `run` flags (a gateway's `--mqtt-listen`, say); `warnings` false
/// leaves its warnings out of the bench's output (a flood makes many, by design).
#[allow(clippy::too_many_arguments)]
pub fn spawn_node_with(
    id: &str,
    swarm: &SwarmName,
    port: u16,
    connect: &[u16],
    state: &Path,
    link: &Link,
    extra: &[String],
    warnings: bool,
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
    .args(["--listen", &link.endpoint(port)])
    .arg("--state-dir")
    .arg(state.join(id))
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    node_logs(&mut cmd, id)?;
    if !warnings && std::env::var_os("SWARM_BENCH_LOGS").is_none() {
        cmd.stderr(Stdio::null());
    }
    for p in connect {
        cmd.args(["--connect", &link.endpoint(*p)]);
    }
    if let Some(dir) = link.tls_dir() {
        cmd.arg("--tls-dir").arg(dir);
    }
    cmd.args(extra);
    die_with_parent(&mut cmd);
    cmd.spawn().context("starting swarm-node run")
}

/// Nodes log warnings to the bench's stderr; with `SWARM_BENCH_LOGS=DIR` each logs at info
/// (votes at debug) to `DIR/<id>.log` instead (appended across restarts), to see where a trial's time went.
fn node_logs(cmd: &mut Command, id: &str) -> anyhow::Result<()> {
    let Some(dir) = std::env::var_os("SWARM_BENCH_LOGS") else {
        cmd.env("SWARM_LOG", "warn");
        return Ok(());
    };
    let path = Path::new(&dir).join(format!("{id}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {} (SWARM_BENCH_LOGS)", path.display()))?;
    cmd.env(
        "SWARM_LOG",
        "info,swarm_node::runtime::shell::effects=debug,zenoh=warn",
    )
    .stderr(file);
    Ok(())
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
pub async fn open_observer(port: u16, link: &Link) -> anyhow::Result<zenoh::Session> {
    Ok(swarm_bus::zenoh::open(&swarm_bus::zenoh::ZenohSettings {
        mode: swarm_bus::zenoh::SessionMode::Peer,
        listen: vec![link.endpoint(port)],
        connect: Vec::new(),
        multicast_scouting: false,
        tls_dir: link.tls_dir().map(Path::to_path_buf),
        tls_name: Some(OBSERVER.into()),
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
    let rss = memory(pid)?.rss;
    anyhow::ensure!(rss > 0, "no VmRSS in /proc/{pid}/status");
    Ok(rss)
}

/// What the scheduler counted for every thread of a process: time on a CPU, in nanoseconds,
/// and how many times a thread was put on one. Exact, where /proc/PID/stat's utime and stime
/// are sampled at the 100 Hz tick that an idle node's brief wakeups mostly fall between.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sched {
    pub cpu_ns: u64,
    pub runs: u64,
}

impl Sched {
    pub fn since(self, earlier: Sched) -> Sched {
        Sched {
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            runs: self.runs.saturating_sub(earlier.runs),
        }
    }
}

/// Threads that ended between two readings take their counts with them; a node's threads
/// live as long as it does.
pub fn sched(pid: u32) -> anyhow::Result<Sched> {
    let mut total = Sched::default();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let Ok(text) = std::fs::read_to_string(task?.path().join("schedstat")) else {
            continue;
        };
        let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
        let (Some(Some(cpu_ns)), _, Some(Some(runs))) =
            (fields.next(), fields.next(), fields.next())
        else {
            anyhow::bail!("bad /proc/{pid}/task/*/schedstat: {text:?}");
        };
        total.cpu_ns = total.cpu_ns.saturating_add(cpu_ns);
        total.runs = total.runs.saturating_add(runs);
    }
    Ok(total)
}

pub use crate::process_memory::Memory;

pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    Ok(Memory::of(Some(pid))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduler_counts_this_process_and_only_forward() {
        let before = sched(std::process::id()).expect("this process's schedstat");
        // Work that takes a measurable moment on a CPU.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let after = sched(std::process::id()).expect("this process's schedstat");
        let spent = after.since(before);
        assert!(
            spent.cpu_ns > 0 && after.runs >= before.runs,
            "{before:?} {after:?}"
        );
        assert_eq!(before.since(after).cpu_ns, 0, "never below zero");
    }
}
