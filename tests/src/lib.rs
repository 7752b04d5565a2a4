//! Helpers for multi-process tests: real `swarm-node` processes on loopback ports, real zenoh
//! sessions watching them, real signals.

pub mod boards;
pub mod netlab;
pub mod partition;
pub mod roles;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering::SeqCst};
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{SessionMode, ZenohSettings, query_cbor};
use swarm_bus::{LeaderInfo, Leaf, NodeId, NodeState, SwarmKey, SwarmKeys, SwarmName};
use swarm_node::election::agreed_leader;

/// The `swarm-node` binary next to the test executable (`target/<profile>/swarm-node`).
/// `cargo test --workspace` builds it, because the `swarm-node` package has integration tests
/// of its own; run `cargo build -p swarm-node` first when testing this package alone.
pub fn swarm_node_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> → target/<profile>/swarm-node; a bench binary of this
        // package sits in target/<profile> itself.
        let dir = exe.parent().expect("an executable lives in a directory");
        let dir = if dir.ends_with("deps") {
            dir.parent().unwrap_or(dir)
        } else {
            dir
        };
        let bin = dir.join("swarm-node");
        assert!(
            bin.exists(),
            "{} is missing: run `cargo test --workspace` or `cargo build -p swarm-node` first",
            bin.display()
        );
        bin
    })
}

/// The `swarm-bridge` binary, built by `cargo test --workspace` for the bridge's own tests.
pub fn swarm_bridge_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = swarm_node_bin().with_file_name("swarm-bridge");
        assert!(
            bin.exists(),
            "{} is missing: run `cargo test --workspace` or `cargo build -p swarm-bridge` first",
            bin.display()
        );
        bin
    })
}

/// A mosquitto broker on a loopback port, stopped when dropped.
pub struct Mosquitto {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n"),
        )
        .expect("writing mosquitto.conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto (Debian package mosquitto)");
        wait_for_listener("mosquitto", port, Duration::from_secs(5));
        Mosquitto {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `swarm-bridge run` alone in its own process: the embedded broker on a free loopback port,
/// the zenoh session listening on another; killed when dropped.
pub struct BridgeProcess {
    pub mqtt_port: u16,
    pub zenoh_port: u16,
    pub log: PathBuf,
    child: Child,
    swarm: String,
    flags: Vec<String>,
    /// A client of the broker at `mqtt_port` (`--mqtt-broker`) rather than its own broker.
    external: bool,
    _dir: tempfile::TempDir,
}

impl BridgeProcess {
    /// A bridge in external mode: a client of the broker on `broker_port` (say `Mosquitto`);
    /// returns once its zenoh port is open.
    pub fn start_external(swarm: &str, broker_port: u16, flags: &[&str]) -> BridgeProcess {
        Self::start_on(swarm, broker_port, true, flags)
    }

    /// A bridge of swarm `swarm` with more `run` flags; returns once its MQTT port is open.
    pub fn start(swarm: &str, flags: &[&str]) -> BridgeProcess {
        Self::start_on(swarm, free_port(), false, flags)
    }

    fn start_on(swarm: &str, mqtt_port: u16, external: bool, flags: &[&str]) -> BridgeProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let zenoh_port = free_port();
        let log = dir.path().join("bridge.log");
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let child = Self::spawn(
            dir.path(),
            &log,
            swarm,
            (mqtt_port, external),
            zenoh_port,
            &flags,
        );
        BridgeProcess {
            mqtt_port,
            zenoh_port,
            log,
            child,
            swarm: swarm.into(),
            flags,
            external,
            _dir: dir,
        }
    }

    fn spawn(
        dir: &Path,
        log: &Path,
        swarm: &str,
        (mqtt_port, external): (u16, bool),
        zenoh_port: u16,
        flags: &[String],
    ) -> Child {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("bridge log");
        let mut cmd = Command::new(swarm_bridge_bin());
        isolate(&mut cmd, dir);
        cmd.args(["run", "--no-multicast", "--swarm", swarm])
            .args(["--listen", &endpoint(zenoh_port)])
            .args([
                if external {
                    "--mqtt-broker"
                } else {
                    "--mqtt-listen"
                },
                &format!("127.0.0.1:{mqtt_port}"),
            ])
            .args(flags)
            .env(
                "SWARM_LOG",
                std::env::var("SWARM_TEST_LOG").unwrap_or_else(|_| "info,zenoh=error".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out);
        let child = cmd.spawn().expect("starting swarm-bridge run");
        let ready = if external { zenoh_port } else { mqtt_port };
        wait_for_listener("swarm-bridge", ready, Duration::from_secs(15));
        child
    }

    /// SIGKILL: the gateway gone without a word, its broker with it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The same bridge again, on the same ports, with the same flags.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(
            self._dir.path(),
            &self.log,
            &self.swarm,
            (self.mqtt_port, self.external),
            self.zenoh_port,
            &self.flags,
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The log dies with the temp dir; a failing test is the one place it is worth reading.
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- last lines of the bridge's log (mqtt port {}):",
                self.mqtt_port
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// The zenohd router (crates.io `zenohd`; `scripts/install-zenohd.sh`): `$SWARM_ZENOHD`, else
/// the copy that script installs, else `zenohd` on the PATH.
pub fn zenohd_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SWARM_ZENOHD") {
        return PathBuf::from(path);
    }
    let cached = dirs_home().join(".cache/swarm-mesh/tools/bin/zenohd");
    if cached.is_file() {
        return cached;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("zenohd"))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    on_path.unwrap_or_else(|| {
        panic!("zenohd not found: run scripts/install-zenohd.sh, or point SWARM_ZENOHD at one")
    })
}

/// Where zenohd finds its REST plugin (`libzenoh_plugin_rest.so`): `$SWARM_ZENOH_PLUGINS`, else
/// where `scripts/install-zenohd.sh` puts it.
pub fn zenoh_plugin_dir() -> PathBuf {
    let dir = std::env::var_os("SWARM_ZENOH_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs_home().join(".cache/swarm-mesh/tools/lib"));
    assert!(
        dir.join("libzenoh_plugin_rest.so").is_file(),
        "no libzenoh_plugin_rest.so in {}: run scripts/install-zenohd.sh, or set SWARM_ZENOH_PLUGINS",
        dir.display()
    );
    dir
}

fn dirs_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A zenohd router on loopback: listening on `port`, linked to the routers on `peers`, its REST
/// API on `rest_port`; killed when dropped.
pub struct Zenohd {
    pub port: u16,
    pub rest_port: u16,
    pub log: PathBuf,
    child: Child,
}

impl Zenohd {
    pub fn start(dir: &Path, name: &str, peers: &[u16]) -> Zenohd {
        let (port, rest_port) = (free_port(), free_port());
        let log = dir.join(format!("{name}.log"));
        let mut cmd = Command::new(zenohd_bin());
        cmd.args(["--listen", &endpoint(port), "--no-multicast-scouting"])
            .args(["--rest-http-port", &format!("127.0.0.1:{rest_port}")])
            .arg("--plugin-search-dir")
            .arg(zenoh_plugin_dir());
        let out = std::fs::File::create(&log).expect("router log");
        let err = out.try_clone().expect("router log");
        cmd.env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for p in peers {
            cmd.args(["--connect", &endpoint(*p)]);
        }
        let child = cmd.spawn().expect("starting zenohd");
        for p in [port, rest_port] {
            wait_for_listener(&format!("zenohd {name}"), p, Duration::from_secs(15));
        }
        Zenohd {
            port,
            rest_port,
            log,
            child,
        }
    }
}

impl Zenohd {
    /// A router with mutual TLS over `quic/`, its certificate `name` from `tls_dir` (issued
    /// with `--role router`), and the access control `certs acl` prints for that roster.
    /// crates.io's zenohd has zenoh's unpatched `tls/` link, which crashes (docs/gateway.md),
    /// so its nodes reach it over QUIC.
    pub fn start_tls(dir: &Path, name: &str, tls_dir: &Path) -> Zenohd {
        let (port, rest_port) = (free_port(), free_port());
        let (code, acl, err) = run_cli(
            dir,
            &["certs", "acl", "--dir", tls_dir.to_str().expect("utf-8")],
        );
        assert_eq!(code, 0, "certs acl: {err}");
        let mut config: serde_json::Value = serde_json::from_str(&acl).expect("certs acl: JSON");
        let file = |f: String| tls_dir.join(f).display().to_string();
        let own = |ext: &str| file(format!("{name}.{ext}"));
        config["mode"] = "router".into();
        config["listen"] = serde_json::json!({ "endpoints": [quic_endpoint(port)] });
        config["scouting"] = serde_json::json!({ "multicast": { "enabled": false } });
        config["transport"] = serde_json::json!({ "link": { "tls": {
            "root_ca_certificate": file("ca.pem".into()),
            "listen_certificate": own("pem"),
            "listen_private_key": own("key"),
            "connect_certificate": own("pem"),
            "connect_private_key": own("key"),
            "enable_mtls": true,
            "verify_name_on_connect": false,
        }}});
        let config_file = dir.join(format!("{name}.json5"));
        std::fs::write(&config_file, config.to_string()).expect("router config");
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("router log");
        let err = out.try_clone().expect("router log");
        let child = Command::new(zenohd_bin())
            .arg("-c")
            .arg(&config_file)
            .args(["--rest-http-port", &format!("127.0.0.1:{rest_port}")])
            .arg("--plugin-search-dir")
            .arg(zenoh_plugin_dir())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting zenohd");
        // QUIC is UDP: the REST plugin's TCP port says the router is up.
        wait_for_listener(
            &format!("zenohd {name}"),
            rest_port,
            Duration::from_secs(15),
        );
        Zenohd {
            port,
            rest_port,
            log,
            child,
        }
    }
}

impl Drop for Zenohd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until a server started by a test accepts TCP on loopback `port`; panics naming it.
fn wait_for_listener(what: &str, port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two linked pseudo-terminals from socat (`bridge` and `device` in `dir`), gone when dropped:
/// a serial cable with nothing attached.
pub struct PtyPair {
    pub bridge: PathBuf,
    pub device: PathBuf,
    child: Child,
}

impl PtyPair {
    pub fn start(dir: &Path) -> PtyPair {
        let bridge = dir.join("tty-bridge");
        let device = dir.join("tty-device");
        let _ = std::fs::remove_file(&bridge);
        let _ = std::fs::remove_file(&device);
        let end = |p: &Path| format!("pty,raw,echo=0,link={}", p.display());
        let child = Command::new("socat")
            .arg(end(&bridge))
            .arg(end(&device))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting socat (Debian package socat)");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(bridge.exists() && device.exists()) {
            assert!(Instant::now() < deadline, "socat made no pty pair");
            std::thread::sleep(Duration::from_millis(20));
        }
        PtyPair {
            bridge,
            device,
            child,
        }
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        // SIGTERM, so socat removes its links: a stale link could later name someone else's pty.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// The liveliness keys of a swarm's members as `session` sees them, sorted.
pub async fn member_keys(session: &zenoh::Session, keys: &SwarmKeys) -> Vec<String> {
    let replies = session
        .liveliness()
        .get(keys.all_nodes())
        .timeout(Duration::from_millis(500))
        .await
        .expect("liveliness query");
    let mut out = Vec::new();
    while let Ok(r) = replies.recv_async().await {
        if let Ok(s) = r.result() {
            out.push(s.key_expr().as_str().to_string());
        }
    }
    out.sort();
    out
}

/// A peer session on loopback, listening on and connecting to the given ports only.
pub async fn loopback_session(listen: Option<u16>, connect: Option<u16>) -> zenoh::Session {
    swarm_bus::zenoh::open(&swarm_bus::zenoh::ZenohSettings {
        mode: swarm_bus::zenoh::SessionMode::Peer,
        listen: listen.into_iter().map(endpoint).collect(),
        connect: connect.into_iter().map(endpoint).collect(),
        multicast_scouting: false,
        ..swarm_bus::zenoh::ZenohSettings::default()
    })
    .await
    .expect("zenoh session on loopback")
}

fn empty_config(dir: &Path) -> PathBuf {
    let path = dir.join("empty-swarm.toml");
    if !path.exists() {
        std::fs::write(&path, "").expect("writing an empty config file");
    }
    path
}

/// A loopback TCP port that was free a moment ago. Taken below the kernel's ephemeral range
/// (32768 and up), so the outgoing connections of other nodes cannot grab it in between.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20_000 + (std::process::id() % 1_000) as u16 * 12,
        SeqCst,
        SeqCst,
    );
    loop {
        let port = NEXT.fetch_add(1, SeqCst);
        assert!(
            port < 32_768,
            "no free loopback port left below the ephemeral range"
        );
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn endpoint(port: u16) -> String {
    format!("tcp/127.0.0.1:{port}")
}

pub fn tls_endpoint(port: u16) -> String {
    format!("tls/127.0.0.1:{port}")
}

pub fn quic_endpoint(port: u16) -> String {
    format!("quic/127.0.0.1:{port}")
}

/// `swarm-node <args>` with no swarm flags added: (exit code, stdout, stderr).
pub fn run_cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(swarm_node_bin());
    isolate(&mut cmd, dir);
    cmd.args(args).env("SWARM_LOG", "error");
    outcome(cmd.output().expect("running swarm-node"))
}

/// One `swarm-node run` process; killed when dropped.
pub struct Node {
    pub id: String,
    pub port: u16,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Node {
    pub fn spawn(dir: &Path, swarm: &str, id: &str, port: u16, connect: &[u16]) -> Node {
        Node::spawn_configured(dir, swarm, id, port, connect, None)
    }

    /// As `spawn`, reading `config` as its config file instead of an empty one.
    pub fn spawn_configured(
        dir: &Path,
        swarm: &str,
        id: &str,
        port: u16,
        connect: &[u16],
        config: Option<&Path>,
    ) -> Node {
        Node::spawn_with_flags(dir, swarm, id, port, connect, config, &[])
    }

    /// As `spawn_configured`, with more `run` flags.
    pub fn spawn_with_flags(
        dir: &Path,
        swarm: &str,
        id: &str,
        port: u16,
        connect: &[u16],
        config: Option<&Path>,
        flags: &[String],
    ) -> Node {
        let mut cmd = node_command(Command::new(swarm_node_bin()), dir, swarm, id);
        if let Some(config) = config {
            cmd.env("SWARM_CONFIG", config);
        }
        cmd.args(["--no-multicast", "--listen", &endpoint(port)]);
        for p in connect {
            cmd.args(["--connect", &endpoint(*p)]);
        }
        cmd.args(flags);
        Node::start(dir, id, port, cmd)
    }

    /// A gateway: a node that also runs the MQTT bridge, its embedded broker on `mqtt_port`.
    pub fn spawn_gateway(dir: &Path, swarm: &str, id: &str, port: u16, mqtt_port: u16) -> Node {
        let mut cmd = node_command(Command::new(swarm_node_bin()), dir, swarm, id);
        cmd.args(["--no-multicast", "--listen", &endpoint(port), "--bridge"])
            .args(["--mqtt-listen", &format!("127.0.0.1:{mqtt_port}")]);
        Node::start(dir, id, port, cmd)
    }

    /// A node in client mode that reaches the swarm only through the peer on `via`.
    pub fn spawn_client(dir: &Path, swarm: &str, id: &str, via: u16) -> Node {
        let mut cmd = node_command(Command::new(swarm_node_bin()), dir, swarm, id);
        cmd.args([
            "--no-multicast",
            "--mode",
            "client",
            "--connect",
            &endpoint(via),
        ]);
        Node::start(dir, id, 0, cmd)
    }

    /// A node in client mode with mutual TLS, reaching the swarm through a router's `quic/`
    /// endpoint on `via`.
    pub fn spawn_tls_client(dir: &Path, swarm: &str, id: &str, via: u16, tls_dir: &Path) -> Node {
        let mut cmd = node_command(Command::new(swarm_node_bin()), dir, swarm, id);
        cmd.args(["--no-multicast", "--mode", "client"])
            .args(["--connect", &quic_endpoint(via)])
            .arg("--tls-dir")
            .arg(tls_dir)
            .env("SWARM_LOG", "info,zenoh=info");
        Node::start(dir, id, 0, cmd)
    }

    /// A node with mutual TLS: the certificates in `tls_dir`, `tls/` endpoints on loopback.
    pub fn spawn_tls(
        dir: &Path,
        swarm: &str,
        id: &str,
        port: u16,
        connect: &[u16],
        tls_dir: &Path,
    ) -> Node {
        let mut cmd = node_command(Command::new(swarm_node_bin()), dir, swarm, id);
        cmd.args(["--no-multicast", "--listen", &tls_endpoint(port)])
            .arg("--tls-dir")
            .arg(tls_dir)
            // zenoh's own TLS messages too: a failing handshake says why, and the secrets
            // check covers what zenoh logs.
            .env("SWARM_LOG", "info,zenoh=info");
        for p in connect {
            cmd.args(["--connect", &tls_endpoint(*p)]);
        }
        Node::start(dir, id, port, cmd)
    }

    /// A node with zenoh's defaults (multicast scouting, no endpoints) inside a network namespace.
    pub fn spawn_in_netns(dir: &Path, netns: &NetNs, swarm: &str, id: &str) -> Node {
        Node::spawn_in_netns_with(dir, netns, swarm, id, &[])
    }

    /// As `spawn_in_netns`, with more `run` flags (e.g. endpoints).
    pub fn spawn_in_netns_with(
        dir: &Path,
        netns: &NetNs,
        swarm: &str,
        id: &str,
        flags: &[String],
    ) -> Node {
        let mut wrapper = Command::new("ip");
        wrapper
            .args(["netns", "exec", &netns.name])
            .arg(swarm_node_bin());
        let mut cmd = node_command(wrapper, dir, swarm, id);
        cmd.args(flags);
        Node::start(dir, id, 0, cmd)
    }

    fn start(dir: &Path, id: &str, port: u16, mut cmd: Command) -> Node {
        let log = dir.join(format!("{id}.log"));
        let log_file = std::fs::File::create(&log).expect("creating node log");
        let child = cmd
            .stderr(log_file)
            .spawn()
            .expect("starting swarm-node run");
        Node {
            id: id.into(),
            port,
            log,
            child: Some(child),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), signal)
            .expect("sending a signal");
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `swarm-node run --id ID --swarm S` with test-local config and state, after `cmd`'s own args.
fn node_command(mut cmd: Command, dir: &Path, swarm: &str, id: &str) -> Command {
    isolate(&mut cmd, dir);
    cmd.args(["run", "--id", id, "--swarm", swarm])
        .arg("--state-dir")
        .arg(dir.join(id))
        // SWARM_TEST_LOG (e.g. `info,swarm_node=debug`) to look closer at a failing run.
        .env(
            "SWARM_LOG",
            std::env::var("SWARM_TEST_LOG").unwrap_or_else(|_| "info,zenoh=error".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// A network namespace of the test's own, with a multicast-capable loopback; deleted on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    /// A namespace of this test's own (`prefix` plus the process id), or `None` when
    /// SWARM_SKIP_NETNS is set; panics, naming that switch, when one cannot be made.
    pub fn for_test(prefix: &str) -> Option<NetNs> {
        if std::env::var_os("SWARM_SKIP_NETNS").is_some() {
            eprintln!("skipped: SWARM_SKIP_NETNS is set");
            return None;
        }
        let name = format!("{prefix}-{}", std::process::id());
        Some(NetNs::create(&name).unwrap_or_else(|e| {
            panic!("cannot create a network namespace ({e}); set SWARM_SKIP_NETNS=1 to skip")
        }))
    }

    pub fn create(name: &str) -> Result<NetNs, String> {
        let ns = NetNs { name: name.into() };
        let _ = ns.ip(&["netns", "del", name]);
        ns.ip(&["netns", "add", name])?;
        for args in [
            &["link", "set", "lo", "up"][..],
            &["link", "set", "lo", "multicast", "on"],
            &["route", "add", "224.0.0.0/4", "dev", "lo"],
        ] {
            let mut full = vec!["netns", "exec", name, "ip"];
            full.extend_from_slice(args);
            ns.ip(&full)?;
        }
        Ok(ns)
    }

    fn ip(&self, args: &[&str]) -> Result<(), String> {
        netlab::ip(args)
    }

    /// Drops `pct` % of the `proto` (tcp, udp) packets arriving in the namespace, at random,
    /// until `heal` (nftables; Debian package nftables).
    pub fn drop_share(&self, proto: &str, pct: u8) -> Result<(), String> {
        self.nft(&["add", "table", "inet", "lossy"])?;
        self.nft(&["add chain inet lossy in { type filter hook input priority 0; }"])?;
        let rule = format!(
            "add rule inet lossy in meta l4proto {proto} numgen random mod 100 < {pct} drop"
        );
        self.nft(&[&rule])
    }

    /// Undoes `drop_share`.
    pub fn heal(&self) -> Result<(), String> {
        self.nft(&["delete", "table", "inet", "lossy"])
    }

    fn nft(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["netns", "exec", &self.name, "nft"];
        all.extend_from_slice(args);
        self.ip(&all)
    }

    /// Runs `swarm-node <args>` inside the namespace: (exit code, stdout, stderr).
    pub fn cli(&self, dir: &Path, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new("ip");
        isolate(&mut cmd, dir);
        cmd.args(["netns", "exec", &self.name])
            .arg(swarm_node_bin())
            .args(args)
            .env("SWARM_LOG", "error");
        outcome(cmd.output().expect("running swarm-node in the namespace"))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = self.ip(&["netns", "del", &self.name]);
    }
}

/// Several nodes of one swarm, each connected to every node started before it.
pub struct Mesh {
    pub swarm: String,
    pub nodes: Vec<Node>,
    pub dir: tempfile::TempDir,
}

impl Mesh {
    pub fn start(swarm: &str, count: usize) -> Mesh {
        Mesh::start_configured(swarm, count, None)
    }

    /// `count` nodes that all read `config` (TOML) as their config file.
    pub fn start_configured(swarm: &str, count: usize, config: Option<&str>) -> Mesh {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config.map(|text| {
            let path = dir.path().join("swarm.toml");
            std::fs::write(&path, text).expect("writing the mesh's config file");
            path
        });
        let mut nodes: Vec<Node> = Vec::new();
        for i in 0..count {
            let earlier: Vec<u16> = nodes.iter().map(|n| n.port).collect();
            nodes.push(Node::spawn_configured(
                dir.path(),
                swarm,
                &format!("n{i}"),
                free_port(),
                &earlier,
                config.as_deref(),
            ));
        }
        Mesh {
            swarm: swarm.into(),
            nodes,
            dir,
        }
    }

    /// One more node, `id`, with a config file of its own (`<dir>/<id>.toml`), linked to every
    /// node started before it.
    pub fn add_configured(&mut self, id: &str, config: &str) {
        let path = self.dir.path().join(format!("{id}.toml"));
        std::fs::write(&path, config).expect("writing a node's config file");
        let earlier = self.ports();
        let node = Node::spawn_configured(
            self.dir.path(),
            &self.swarm,
            id,
            free_port(),
            &earlier,
            Some(&path),
        );
        self.nodes.push(node);
    }

    pub fn keys(&self) -> SwarmKeys {
        SwarmKeys::new(SwarmName::new(self.swarm.as_str()).expect("valid swarm name in a test"))
    }

    /// Waits until `count` nodes answer and each lists the `count - 1` others as live peers it
    /// has heard; panics with every node's log otherwise.
    pub async fn wait_for_full_mesh(
        &self,
        session: &zenoh::Session,
        count: usize,
    ) -> BTreeMap<NodeId, NodeState> {
        let keys = self.keys();
        let full = eventually(Duration::from_secs(15), || async {
            let states = states(session, &keys).await;
            let full = states.len() == count
                && states
                    .values()
                    .all(|s| s.peers.len() == count - 1 && s.seq > 0);
            full.then_some(states)
        })
        .await;
        full.unwrap_or_else(|| panic!("no full mesh of {count} nodes; logs:\n{}", self.logs()))
    }

    /// The leader every node of the mesh agrees on, and its term; panics with every node's
    /// log when they do not agree within 15 s.
    /// The leader the mesh agrees on, seen from a session of the caller's own that is closed
    /// again, and what a test of losing that leader needs: its index, the other members' ids,
    /// and every node's port with the leader's first (a client links to the first it reaches).
    pub fn leader_first(&self) -> LeaderFirst {
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let (leader, term) = runtime.block_on(async {
            let session = swarm_bus::zenoh::open(&self.settings())
                .await
                .expect("a session on loopback");
            let (leader, term) = self.leader(&session).await;
            let _ = session.close().await;
            (leader.to_string(), term)
        });
        let index = self
            .nodes
            .iter()
            .position(|n| n.id == leader)
            .expect("the leader is a node of the mesh");
        let others = self
            .nodes
            .iter()
            .map(|n| n.id.clone())
            .filter(|id| *id != leader)
            .collect();
        let mut ports = self.ports();
        ports.swap(0, index);
        LeaderFirst {
            leader,
            term,
            index,
            others,
            ports,
        }
    }

    pub async fn leader(&self, session: &zenoh::Session) -> (NodeId, u64) {
        let ids: Vec<&str> = self.nodes.iter().map(|n| n.id.as_str()).collect();
        wait_for_leader(session, &self.keys(), &ids, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("no leader of {ids:?}; logs:\n{}", self.logs()))
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {}\n{}", n.id, n.log_text()))
            .collect()
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// Bus settings that reach every node of the mesh over loopback only. Nobody dials this
    /// session, so the kernel picks its port: no window for another process to take it.
    pub fn settings(&self) -> ZenohSettings {
        ZenohSettings {
            mode: SessionMode::Peer,
            listen: vec![endpoint(0)],
            connect: self.ports().into_iter().map(endpoint).collect(),
            multicast_scouting: false,
            ..swarm_bus::zenoh::ZenohSettings::default()
        }
    }

    /// Runs `swarm-node <args>` against this mesh and returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(swarm_node_bin());
        isolate(&mut cmd, self.dir.path());
        cmd.args(args)
            .args(["--swarm", &self.swarm, "--no-multicast"])
            .env("SWARM_LOG", "error");
        for p in self.ports() {
            cmd.args(["--connect", &endpoint(p)]);
        }
        outcome(cmd.output().expect("running swarm-node"))
    }
}

/// Raw zenoh get as zenoh-cli does it (no format parameter, zenoh's default target), but every
/// reply kept (no consolidation): every reply as (key, encoding, JSON).
pub async fn get_json(
    session: &zenoh::Session,
    selector: &str,
) -> Vec<(String, String, serde_json::Value)> {
    let replies = session
        .get(selector)
        .consolidation(zenoh::query::ConsolidationMode::None)
        .timeout(Duration::from_secs(2))
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Ok(reply) = replies.recv_async().await {
        let sample = reply.result().expect("an Ok reply");
        let json = serde_json::from_slice(&sample.payload().to_bytes()).expect("reply is JSON");
        out.push((
            sample.key_expr().to_string(),
            sample.encoding().to_string(),
            json,
        ));
    }
    out
}

/// The `NodeState` of every node that answers on `swarm/<s>/node/*/state`, by node id.
pub async fn states(session: &zenoh::Session, keys: &SwarmKeys) -> BTreeMap<NodeId, NodeState> {
    let replies = query_cbor::<NodeState>(session, &keys.all(Leaf::State), Duration::from_secs(1))
        .await
        .unwrap_or_default();
    replies
        .into_iter()
        .filter_map(|r| {
            let id = SwarmKey::node_of(&r.key)?;
            Some((id, r.msg.ok()?))
        })
        .collect()
}

/// Every answer to "who leads?" on `swarm/<s>/leader`, by answering node.
pub async fn who_leads(session: &zenoh::Session, keys: &SwarmKeys) -> BTreeMap<NodeId, LeaderInfo> {
    query_cbor::<LeaderInfo>(session, &keys.leader(), Duration::from_millis(500))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.msg.ok())
        .map(|info| (info.node.clone(), info))
        .collect()
}

/// Waits until exactly the nodes `members` answer and agree on one leader; returns it and
/// its term.
pub async fn wait_for_leader(
    session: &zenoh::Session,
    keys: &SwarmKeys,
    members: &[&str],
    timeout: Duration,
) -> Option<(NodeId, u64)> {
    eventually(timeout, || async {
        let answers = who_leads(session, keys).await;
        let names: Vec<&str> = answers.keys().map(NodeId::as_str).collect();
        if names != members {
            return None;
        }
        agreed_leader(answers.values())
    })
    .await
}

/// Keeps a developer's own `SWARM_*` settings, config and state out of a child process.
pub fn isolate(cmd: &mut Command, dir: &Path) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SWARM_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("SWARM_CONFIG", empty_config(dir))
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .env("XDG_STATE_HOME", dir.join("xdg-state"));
}

/// (exit code, stdout, stderr) of a finished command.
fn outcome(out: std::process::Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// See `Mesh::leader_first`.
pub struct LeaderFirst {
    pub leader: String,
    pub term: u64,
    pub index: usize,
    pub others: Vec<String>,
    pub ports: Vec<u16>,
}

/// Polls `check` every 100 ms until it returns `Some`, or gives up after `timeout`; for tests
/// that watch processes from a plain thread.
pub fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `check` until it returns `Some`, or gives up after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `mosquitto_pub` of one message, QoS 1, to the broker on loopback `port`; `version` is
/// `mqttv311` or `mqttv5`, `extra` more flags (a login, `-r`).
pub fn mosquitto_pub(
    port: u16,
    version: &str,
    topic: &str,
    payload: &[u8],
    extra: &[&str],
) -> std::process::Output {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), payload).expect("writing the payload");
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version])
        .args(["-q", "1", "-t", topic])
        .arg("-f")
        .arg(file.path())
        .args(extra)
        .output()
        .expect("mosquitto_pub (Debian package mosquitto-clients)")
}

/// A process's resident set in KiB, from /proc; 0 once it is gone.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A process's anonymous resident memory (its heap, stacks and buffers) in KiB; 0 once it is
/// gone.
pub fn anon_kib(pid: u32) -> u64 {
    status_kib(pid, "RssAnon:")
}

/// The peak resident set of a process, in KiB (0 when it is gone).
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// One GET over plain HTTP/1.1 to loopback `port`: the whole response, head and body.
pub fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    http_get_with(port, path, &[])
}

/// As `http_get`, with more request headers, e.g. `("Accept", "text/plain")`.
pub fn http_get_with(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// The processes whose parent is `pid`, from /proc.
pub fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            // `pid (comm) state ppid …`; comm may hold spaces, so read after its last ')'.
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// The remote ports of the established loopback TCP connections process `pid` holds: which
/// node an observer is linked to.
pub fn tcp_peer_ports(pid: u32) -> Vec<u16> {
    let sockets: std::collections::BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| {
                    let target = std::fs::read_link(e.path()).ok()?;
                    let inode = target
                        .to_str()?
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?;
                    Some(inode.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ports = Vec::new();
    for table in [
        format!("/proc/{pid}/net/tcp"),
        format!("/proc/{pid}/net/tcp6"),
    ] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        for cols in text
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
        {
            let established = cols.get(3) == Some(&"01");
            if !established || !cols.get(9).is_some_and(|i| sockets.contains(*i)) {
                continue;
            }
            if let Some(port) = cols
                .get(2)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.push(port);
            }
        }
    }
    ports.sort_unstable();
    ports
}
