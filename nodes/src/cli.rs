//! The command line. Every flag also reads a `SWARM_*` environment variable and has a config key.

use crate::config::Overrides;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use swarm_bus::zenoh::SessionMode;
use swarm_bus::{DeviceClass, NodeId, SwarmName};

/// The longest wait or timeout a flag may ask for, in ms: a day. Clap refuses more, with the
/// flag and the range, instead of the deadline overflowing later.
const MAX_WAIT_MS: u64 = 86_400_000;

#[derive(Debug, Parser)]
#[command(
    name = "swarm-node",
    version,
    about = "A node of a swarm mesh on Zenoh"
)]
pub struct Cli {
    /// Config file (default: $XDG_CONFIG_HOME/swarm-mesh/swarm.toml).
    #[arg(long, global = true, env = "SWARM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log more on stderr, a step per -v: a command logs only its own warnings, `run` also
    /// info and zenoh's warnings; then debug, then trace. SWARM_LOG (`info,zenoh=debug`) wins.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Join the swarm and run until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Print the swarm's members: id, class, role, term, heartbeat age, watts, battery, temperature.
    Status(QueryArgs),
    /// Print every member's power, energy, CO2 and rating, and the swarm's total.
    Energy(EnergyArgs),
    /// Read or write the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Measure real nodes on loopback and print figures: `bench` (sizes, start-up, idle
    /// RSS/CPU) or `bench failover`.
    Bench(BenchArgs),
    /// Watch the swarm's heartbeats and report any term with two leaders; runs until Ctrl-C.
    Watch(WatchArgs),
    /// Each node's gossip cadence, or pin one.
    #[command(subcommand)]
    Cadence(CadenceCommand),
    /// Simulate N nodes' election and cadence on simulated time, in this process, and print
    /// what they did: first leader, failovers, split brain, messages per node per second.
    Sim(SimCommand),
    /// Propose a swarm-wide change: every voter votes, and once a majority says yes every node
    /// applies it. Prints each vote; exits 1 when rejected.
    Propose(ProposeArgs),
    /// Submit tasks to the swarm, see where they stand, cancel them.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Update MQTT boards over the mesh, and see what each one runs.
    #[command(subcommand)]
    Firmware(FirmwareCommand),
    /// Live view of the members, the leader and recent events (joins, leaves, elections);
    /// q, Esc or Ctrl-C quits. A zenoh client of the first node it reaches unless --mode peer;
    /// give several --connect endpoints to fail over when that node goes.
    Dashboard(WatchArgs),
    /// Live view of each node's power with its recent history, energy, CO2 and the swarm's
    /// total; q, Esc or Ctrl-C quits. A zenoh client of the first node it reaches unless
    /// --mode peer; give several --connect endpoints to fail over when that node goes.
    Green(WatchArgs),
    /// Ask a node to show itself: it blinks the LED of its `[board] led_pin` (on a node without
    /// one, it logs the request).
    Identify(IdentifyArgs),
    /// Create the swarm's certificate authority and node certificates for mutual TLS
    /// (`run --tls-dir DIR`).
    #[command(subcommand)]
    Certs(CertsCommand),
}

#[derive(Debug, Args)]
pub struct IdentifyArgs {
    pub node: NodeId,
    /// How long to blink, in seconds (at most 600).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub seconds: u32,
    #[command(flatten)]
    pub bus: BusArgs,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create the swarm's CA: DIR/ca.pem and DIR/roster (every node gets a copy) and DIR/ca.key
    /// (keep it on this machine only).
    Init(CertsInitArgs),
    /// Create NAME's certificate and key, DIR/NAME.pem and DIR/NAME.key, signed by the CA in
    /// DIR, and record its role in DIR/roster. NAME is a node's id, or any name for a CLI user.
    Issue(CertsIssueArgs),
    /// Print the zenoh `access_control` section DIR/roster stands for, for a zenohd router's
    /// config (nodes derive it themselves from the roster in their --tls-dir).
    Acl(CertsAclArgs),
}

#[derive(Debug, Args)]
pub struct CertsAclArgs {
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Node,
    Gateway,
    Observer,
    Router,
}

impl From<RoleArg> for swarm_bus::zenoh::Access {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Node => Self::Node,
            RoleArg::Gateway => Self::Gateway,
            RoleArg::Observer => Self::Observer,
            RoleArg::Router => Self::Router,
        }
    }
}

#[derive(Debug, Args)]
pub struct CertsInitArgs {
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Replace an existing CA (every certificate it signed stops being accepted).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CertsIssueArgs {
    pub name: NodeId,
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// What the name may do on the bus, recorded in DIR/roster: node (write its own keys),
    /// gateway (also its MQTT devices' keys), observer (read, query, send commands) or router
    /// (a zenohd relaying everyone's messages).
    #[arg(long, value_enum, default_value = "node")]
    pub role: RoleArg,
    /// Replace an existing certificate and key of that name.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SimCommand {
    #[command(subcommand)]
    pub sweep: Option<SimSweep>,
    #[command(flatten)]
    pub run: SimArgs,
}

#[derive(Debug, Subcommand)]
pub enum SimSweep {
    /// Run each size with adaptive and with fixed cadence; print the figures and plot receive
    /// rate against size (SVG).
    Sweep(SweepArgs),
}

/// The network and faults of a simulated run.
#[derive(Debug, Args, Clone)]
pub struct SimNetArgs {
    /// Random seed: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Messages lost, per receiver, e.g. 5 or 5%.
    #[arg(long, default_value = "0", value_parser = parse_pct, value_name = "PCT")]
    pub loss: f64,
    /// Mean one-way latency, e.g. 20ms (each message takes ½× to 1½× of it).
    #[arg(long, default_value = "5ms", value_parser = parse_latency, value_name = "DELAY")]
    pub latency: std::time::Duration,
    /// Crash whichever node leads this often (it comes back 5 s later), e.g. 60 or 60s.
    #[arg(long, value_parser = parse_secs, value_name = "SECONDS")]
    pub crash_leader_every: Option<std::time::Duration>,
    /// Cut off the leader and others, e.g. 60:30 (at 60 s, for 30 s, 30 % of the nodes) or
    /// 60s:30s:45%; repeat for more, in time order.
    #[arg(long, value_parser = parse_partition, value_name = "AT:FOR[:PCT]")]
    pub partition: Vec<swarm_node::sim::Partition>,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Nodes in the swarm.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub nodes: u32,
    /// Simulated time, e.g. 600, 600s or 10m.
    #[arg(long, default_value = "60", value_parser = parse_secs, value_name = "SECONDS")]
    pub duration: std::time::Duration,
    #[command(flatten)]
    pub net: SimNetArgs,
    /// The configured intervals, not the adaptive ones (as adaptive_gossip.enabled = false).
    #[arg(long)]
    pub fixed: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also write the per-second series (sent, received, leader's receipts, leaders, term).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Swarm sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000,10000", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub nodes: Vec<u32>,
    /// Simulated time per run, e.g. 120 or 2m.
    #[arg(long, default_value = "120", value_parser = parse_secs, value_name = "SECONDS")]
    pub duration: std::time::Duration,
    #[command(flatten)]
    pub net: SimNetArgs,
    /// Where to write the plot.
    #[arg(long, default_value = "sim-sweep.svg", value_name = "FILE.svg")]
    pub out: PathBuf,
    /// Print the runs as one JSON array.
    #[arg(long)]
    pub json: bool,
}

/// A number with an optional unit (`ms`, `s`, `m`, `h`); `default_unit` applies without one.
fn parse_duration(s: &str, default_unit: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with an optional unit (ms, s, m, h)"))?;
    let unit = if unit.is_empty() { default_unit } else { unit };
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("{s:?}: unknown unit {other:?}; use ms, s, m or h")),
    };
    if !secs.is_finite() || !(0.0..=1e7).contains(&secs) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    parse_duration(s, "s")
}

fn parse_latency(s: &str) -> Result<std::time::Duration, String> {
    parse_duration(s, "ms")
}

/// The share of nodes a partition cuts off unless told.
const PARTITION_SHARE: f64 = 0.3;

/// `AT:FOR[:PCT]`: when, for how long, and what share of the nodes (with the leader) is cut off.
fn parse_partition(s: &str) -> Result<swarm_node::sim::Partition, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (at, length, pct) = match parts.as_slice() {
        [at, length] => (at, length, None),
        [at, length, pct] => (at, length, Some(pct)),
        _ => {
            return Err(format!(
                "{s:?}: expected AT:FOR[:PCT], e.g. 60:30 or 60s:30s:40%"
            ));
        }
    };
    let length = parse_secs(length)?;
    if length.is_zero() {
        return Err(format!("{s:?}: a partition lasts longer than 0 s"));
    }
    let cut_off = match pct {
        None => PARTITION_SHARE,
        Some(p) => parse_pct(p)?,
    };
    if cut_off <= 0.0 || cut_off >= 1.0 {
        return Err(format!(
            "{s:?}: the share cut off is between 0 and 100 %, both excluded"
        ));
    }
    Ok(swarm_node::sim::Partition {
        at: parse_secs(at)?,
        length,
        cut_off,
    })
}

/// A percentage, `5` or `5%`, returned as a fraction.
fn parse_pct(s: &str) -> Result<f64, String> {
    let n: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?}: expected a percentage such as 5 or 5%"))?;
    if !(0.0..=100.0).contains(&n) {
        return Err(format!("{s:?}: a percentage is between 0 and 100"));
    }
    Ok(n / 100.0)
}

#[derive(Debug, Args)]
pub struct ProposeArgs {
    /// Pin every node's cadence: aggressive, normal, conservative, emergency, or auto (unpin).
    #[arg(long, value_name = "MODE")]
    pub cadence: String,
    #[command(flatten)]
    pub query: QueryArgs,
}

#[derive(Debug, Subcommand)]
pub enum FirmwareCommand {
    /// Send an image to boards through their bridge: one board at a time, stopping at the
    /// first that refuses it, fails to come back with it (and rolls back) or does not answer.
    /// A sleeping board gets it when it wakes.
    Push(FirmwarePushArgs),
    /// Each board's firmware: version, image SHA-256, slot, and any update under way.
    Status(QueryArgs),
}

#[derive(Debug, Args)]
pub struct FirmwarePushArgs {
    /// The image, as `espflash save-image --chip esp32c3` writes it.
    pub image: PathBuf,
    /// A board to update (repeatable: in the order given).
    #[arg(long, value_name = "ID", required_unless_present = "class")]
    pub node: Vec<NodeId>,
    /// Every board of this class that reports its firmware, in id order (a rolling push).
    #[arg(long, conflicts_with = "node", value_parser = parse_class)]
    pub class: Option<DeviceClass>,
    /// The version to announce; by default the one in the image's app descriptor.
    #[arg(long)]
    pub version: Option<String>,
    /// Bytes per chunk (1 to 2048).
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..=2048))]
    pub chunk_bytes: u32,
    /// How long each board may take, from the offer to its confirmation, in seconds; for a
    /// board asleep when its turn comes, from its wake.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout_s: u64,
    #[command(flatten)]
    pub query: QueryArgs,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Submit a task; prints its id once the swarm has accepted it (stored by a majority).
    Submit(SubmitArgs),
    /// Where a task stands: state, worker, attempts and output.
    Status(TaskIdArgs),
    /// The tasks the swarm holds, newest results kept within the result store's bounds.
    List(TaskListArgs),
    /// Cancel a queued or running task (a running handler is stopped).
    Cancel(TaskIdArgs),
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The capability to run, from the workers' own `[tasks]` config (e.g. echo).
    #[arg(long, value_name = "NAME")]
    pub cap: String,
    /// low, normal, high or critical.
    #[arg(long, value_enum, default_value = "normal")]
    pub priority: PriorityArg,
    /// A task that must succeed first; repeat for several.
    #[arg(long = "after", value_name = "ID")]
    pub after: Vec<swarm_bus::TaskId>,
    /// Longest one attempt may run, in seconds (fractions allowed).
    #[arg(long, default_value = "60", value_name = "SECONDS", value_parser = parse_task_timeout)]
    pub timeout: u32,
    /// Further attempts after a failure.
    #[arg(long, default_value_t = 0)]
    pub retries: u8,
    /// The task's input: text, or @FILE for a file's bytes.
    #[arg(long, value_name = "TEXT|@FILE")]
    pub payload: Option<String>,
    /// Run it on this many distinct workers and decide by their answers (2 to 255); at most
    /// the number of workers offering the capability.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..))]
    pub replicas: Option<u8>,
    /// How the replicas' answers become one: first-valid, majority (default), weighted,
    /// median, mean or best-of.
    #[arg(long, value_name = "PICK", requires = "replicas")]
    pub pick: Option<swarm_bus::TaskPick>,
    /// The task's id; by default a new random one. Submitting an id again is safe: it is the
    /// same task, accepted once.
    #[arg(long, value_name = "ID")]
    pub id: Option<swarm_bus::TaskId>,
    /// Print {"id": ...}.
    #[arg(long)]
    pub json: bool,
    /// How long to keep trying to reach a leader that accepts, in ms (at most a day,
    /// 86400000).
    #[arg(long, default_value_t = 15_000, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=MAX_WAIT_MS))]
    pub wait_ms: u64,
    #[command(flatten)]
    pub bus: BusArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PriorityArg {
    Low,
    Normal,
    High,
    Critical,
}

impl From<PriorityArg> for swarm_bus::Priority {
    fn from(p: PriorityArg) -> Self {
        match p {
            PriorityArg::Low => swarm_bus::Priority::Low,
            PriorityArg::Normal => swarm_bus::Priority::Normal,
            PriorityArg::High => swarm_bus::Priority::High,
            PriorityArg::Critical => swarm_bus::Priority::Critical,
        }
    }
}

/// Seconds (fractions allowed) to whole milliseconds, at least 1 ms, at most a day.
fn parse_task_timeout(s: &str) -> Result<u32, String> {
    let secs: f64 = s
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{s:?}: expected seconds such as 30 or 0.5"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "{s:?}: a timeout is more than 0 and at most 86400 seconds"
        ));
    }
    Ok(((secs * 1000.0).round() as u32).max(1))
}

#[derive(Debug, Args)]
pub struct TaskIdArgs {
    pub id: swarm_bus::TaskId,
    #[command(flatten)]
    pub query: QueryArgs,
}

#[derive(Debug, Args)]
pub struct TaskListArgs {
    /// Only tasks in these states: queued, running, succeeded, failed, cancelled.
    #[arg(long, value_delimiter = ',', value_name = "STATE")]
    pub state: Vec<String>,
    #[command(flatten)]
    pub query: QueryArgs,
}

#[derive(Debug, Subcommand)]
pub enum CadenceCommand {
    /// Each node's cadence mode, whether it is pinned, and its heartbeat interval.
    Show(QueryArgs),
    /// Pin a cadence mode on one node (--node) or every node; kept across restarts until
    /// `--mode auto` unpins it. Waits until the nodes report it.
    Set(CadenceSetArgs),
}

/// `--mode` is the cadence here, so the zenoh session mode is `--zenoh-mode`.
#[derive(Debug, Args)]
pub struct CadenceSetArgs {
    /// aggressive, normal, conservative, emergency, or auto (unpin).
    #[arg(long, value_name = "MODE")]
    pub mode: String,
    #[arg(long, value_name = "ID")]
    pub node: Option<swarm_bus::NodeId>,
    #[arg(long)]
    pub json: bool,
    /// How long to wait for replies, in ms (twice that for the nodes to confirm); at most a
    /// day, 86400000.
    #[arg(
        long,
        env = "SWARM_TIMEOUT_MS",
        default_value_t = 1500,
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(0..=MAX_WAIT_MS)
    )]
    pub timeout_ms: u64,
    #[command(flatten)]
    pub at: SwarmAt,
    /// peer or client [config: zenoh.mode].
    #[arg(long = "zenoh-mode", env = "SWARM_MODE", value_enum)]
    pub zenoh_mode: Option<ModeArg>,
}

impl CadenceSetArgs {
    pub fn query(&self) -> QueryArgs {
        QueryArgs {
            json: self.json,
            timeout_ms: self.timeout_ms,
            bus: BusArgs {
                at: self.at.clone(),
                mode: self.zenoh_mode,
            },
        }
    }
}

/// Where to find the swarm; shared by `run` and the query commands.
#[derive(Debug, Args, Default, Clone)]
pub struct BusArgs {
    #[command(flatten)]
    pub at: SwarmAt,
    /// peer or client (client needs a zenohd router in --connect) [config: zenoh.mode].
    #[arg(long, env = "SWARM_MODE", value_enum)]
    pub mode: Option<ModeArg>,
}

/// Which swarm, and where its peers are.
#[derive(Debug, Args, Default, Clone)]
pub struct SwarmAt {
    /// Swarm name [config: node.swarm].
    #[arg(long, env = "SWARM_SWARM", value_name = "NAME")]
    pub swarm: Option<SwarmName>,
    /// Zenoh locator to connect to, e.g. tcp/127.0.0.1:7447 [config: zenoh.connect].
    #[arg(
        long,
        env = "SWARM_CONNECT",
        value_name = "ENDPOINT",
        value_delimiter = ','
    )]
    pub connect: Vec<String>,
    /// Turn off multicast scouting [config: zenoh.multicast_scouting = false].
    /// SWARM_NO_MULTICAST takes 1/0, true/false, yes/no or on/off.
    #[arg(
        long,
        env = "SWARM_NO_MULTICAST",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    pub no_multicast: bool,
    /// Mutual TLS with the certificates in DIR (`swarm-node certs`): ca.pem, NAME.pem and
    /// NAME.key; every endpoint is then tls/ [config: zenoh.tls_dir].
    #[arg(long, env = "SWARM_TLS_DIR", value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Whose certificate in --tls-dir to present; the node's id by default
    /// [config: zenoh.tls_name].
    #[arg(long, env = "SWARM_TLS_NAME", value_name = "NAME")]
    pub tls_name: Option<NodeId>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    Peer,
    Client,
}

impl From<ModeArg> for SessionMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Peer => SessionMode::Peer,
            ModeArg::Client => SessionMode::Client,
        }
    }
}

impl BusArgs {
    /// These flags as config overrides.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            swarm: self.at.swarm.clone(),
            connect: self.at.connect.clone(),
            mode: self.mode.map(SessionMode::from),
            no_multicast: self.at.no_multicast,
            tls_dir: self.at.tls_dir.clone(),
            tls_name: self.at.tls_name.clone(),
            ..Overrides::default()
        }
    }
}

#[derive(Debug, Args, Default, Clone)]
pub struct RunArgs {
    /// Node id (default: the hostname, made valid) [config: node.id].
    #[arg(long, env = "SWARM_ID", value_name = "ID")]
    pub id: Option<NodeId>,
    /// full, standard or minimal [config: node.class].
    #[arg(long, env = "SWARM_CLASS", value_parser = parse_class)]
    pub class: Option<DeviceClass>,
    /// Zenoh locator to listen on, e.g. tcp/0.0.0.0:7447 [config: zenoh.listen].
    #[arg(
        long,
        env = "SWARM_LISTEN",
        value_name = "ENDPOINT",
        value_delimiter = ','
    )]
    pub listen: Vec<String>,
    /// Directory for state kept across restarts [config: node.state_dir].
    #[arg(long, env = "SWARM_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Heartbeat interval in ms [config: consensus.heartbeat_interval_ms].
    #[arg(long, env = "SWARM_HEARTBEAT_MS", value_name = "MS")]
    pub heartbeat_ms: Option<u32>,
    /// Also run the MQTT bridge in this process [config: bridge.enabled].
    #[arg(long)]
    pub bridge: bool,
    /// Where the bridge's embedded broker listens (implies --bridge) [config: bridge.listen].
    #[arg(long, value_name = "ADDR")]
    pub mqtt_listen: Option<std::net::SocketAddr>,
    /// Accept MQTT devices without logins on an address other machines can reach (refused
    /// otherwise; prefer bridge.users_file) [config: bridge.allow_anonymous].
    #[arg(long)]
    pub mqtt_allow_anonymous: bool,
    /// Serve Prometheus metrics on http://ADDR/metrics, e.g. 127.0.0.1:9464
    /// [config: metrics.listen].
    #[arg(long, env = "SWARM_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub bus: BusArgs,
}

impl RunArgs {
    /// These flags, and the swarm's, as config overrides.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            id: self.id.clone(),
            class: self.class,
            listen: self.listen.clone(),
            state_dir: self.state_dir.clone(),
            heartbeat_ms: self.heartbeat_ms,
            bridge: self.bridge,
            mqtt_listen: self.mqtt_listen,
            mqtt_allow_anonymous: self.mqtt_allow_anonymous,
            metrics_listen: self.metrics_listen,
            ..self.bus.overrides()
        }
    }
}

fn parse_class(s: &str) -> Result<DeviceClass, String> {
    s.parse()
        .map_err(|e: swarm_bus::messages::UnknownVariant| e.to_string())
}

#[derive(Debug, Args, Clone)]
pub struct QueryArgs {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for replies, in ms (at most a day, 86400000).
    #[arg(
        long,
        env = "SWARM_TIMEOUT_MS",
        default_value_t = 1500,
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(0..=MAX_WAIT_MS)
    )]
    pub timeout_ms: u64,
    #[command(flatten)]
    pub bus: BusArgs,
}

#[derive(Debug, Args, Clone)]
pub struct EnergyArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// With --json: print the swarm's total (the leader's sum, with breakdowns by class and
    /// source) instead of one object per member.
    #[arg(long)]
    pub total: bool,
    /// Ask again every --every-ms until Ctrl-C: a fresh table each time, or with --json one
    /// JSON document per line.
    #[arg(long)]
    pub watch: bool,
    /// How often --watch asks, in ms.
    #[arg(long, default_value_t = 2000, value_name = "MS", value_parser = clap::value_parser!(u64).range(200..=3_600_000))]
    pub every_ms: u64,
    /// Every member's samples over the past SPAN (90s, 30m, 1h, 2d), from the history a
    /// gateway keeps: a line per member, or with --json every sample.
    #[arg(long, value_name = "SPAN", conflicts_with_all = ["watch", "total"])]
    pub since: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write the documented default config file.
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the effective config as `run` would use it: defaults, the file, then `SWARM_*`
    /// variables and these flags.
    Show(Box<RunArgs>),
    /// Set one key, e.g. `config set energy.carbon_intensity_gco2_kwh 120`.
    Set { key: String, value: String },
    /// Print the config file's path.
    Path,
}

#[derive(Debug, Args, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: Option<BenchCommand>,
    #[command(flatten)]
    pub idle: IdleArgs,
}

#[derive(Debug, Subcommand, Clone)]
pub enum BenchCommand {
    /// Payload sizes, start to first heartbeat, idle RSS and CPU (the default).
    Idle(IdleArgs),
    /// Stop the leader again and again; time until every survivor agrees on a new one.
    Failover(FailoverArgs),
    /// What energy telemetry costs: CPU time per sample (sensors, power, CBOR), as a share of
    /// one core at one sample a second, the sample's size, and the leader's sum of a swarm.
    Telemetry(TelemetryArgs),
    /// Tasks through the leader: submit -> result latency (one at a time, then many in
    /// flight) and tasks per second, with the built-in echo handler on real nodes.
    Tasks(TasksBenchArgs),
    /// Firmware updates over the mesh: KiB/s of an image to one simulated board through a real
    /// bridge, and the time to update a fleet one board at a time.
    Firmware(FirmwareBenchArgs),
    /// What Home Assistant discovery sends per member per hour, and the gateway's memory and
    /// query times with a day of history for every member.
    History(HistoryBenchArgs),
    /// Where memory goes (anonymous and file-backed pages, per MQTT connection), and what an
    /// idle swarm costs in bytes, packets and CPU.
    Footprint(FootprintArgs),
}

#[derive(Debug, Args, Clone)]
pub struct FootprintArgs {
    /// Idle nodes started on loopback, each connected to those started before it.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..=32))]
    pub nodes: u16,
    /// Seconds the swarm runs before it is measured (joined, elected, quiet).
    #[arg(long, default_value_t = 45, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub settle_s: u64,
    /// Seconds over which bytes, packets and CPU are counted.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub seconds: u64,
    /// Idle MQTT connections held against the gateway (0: leave the gateway out).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=20000))]
    pub connections: u32,
    /// Seconds of the gateway's flood before the connections (4 clients, QoS 0 then 1).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub flood_s: u64,
    /// First loopback port used; the bench takes `nodes` + 3 from there.
    #[arg(long, default_value_t = 17800, value_parser = clap::value_parser!(u16).range(1024..=60000))]
    pub base_port: u16,
}

#[derive(Debug, Args, Clone)]
pub struct HistoryBenchArgs {
    /// Members whose samples the history holds.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub members: u16,
    /// Hours of samples fed.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=168))]
    pub hours: u64,
    /// Seconds between a member's samples.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval_s: u64,
}

#[derive(Debug, Args, Clone)]
pub struct FirmwareBenchArgs {
    /// Simulated boards (firmware core) to update.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=200))]
    pub boards: u16,
    /// Size of the image pushed, in KiB (the release image is about 660).
    #[arg(long, default_value_t = 660, value_parser = clap::value_parser!(u32).range(1..=1920))]
    pub image_kib: u32,
    /// Bytes per chunk.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..=2048))]
    pub chunk_bytes: u32,
}

#[derive(Debug, Args, Clone)]
pub struct TasksBenchArgs {
    /// Nodes to start on loopback.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub nodes: u16,
    /// Tasks in the throughput run (the latency run takes at most 1000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub tasks: u32,
    /// Tasks unfinished at once in the throughput run.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub in_flight: u32,
    /// First loopback TCP port to use.
    #[arg(long, default_value_t = 27800, value_parser = clap::value_parser!(u16).range(1024..=60000))]
    pub base_port: u16,
    /// Also run every task on this many workers (at most --nodes) and print both runs side
    /// by side: what redundancy costs in latency and throughput.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(2..))]
    pub replicas: Option<u8>,
    /// How the replicas' answers become one (with --replicas).
    #[arg(
        long,
        value_name = "PICK",
        requires = "replicas",
        default_value = "majority"
    )]
    pub pick: swarm_bus::TaskPick,
}

#[derive(Debug, Args, Clone)]
pub struct TelemetryArgs {
    /// Samples to take.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pub samples: u32,
    /// Members in the swarm the leader sums.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub members: u32,
}

#[derive(Debug, Args, Clone)]
pub struct FailoverArgs {
    /// Nodes to start on loopback.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(3..=32))]
    pub nodes: u16,
    /// Times to take the leader down.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub trials: u32,
    /// kill = SIGKILL, stop = SIGSTOP (then SIGCONT), term = SIGTERM (a clean stop).
    #[arg(long, value_enum, default_value_t = FailMode::Kill)]
    pub mode: FailMode,
    /// First loopback TCP port to use.
    #[arg(long, default_value_t = 17547, value_parser = clap::value_parser!(u16).range(1024..=60000))]
    pub base_port: u16,
    /// Link the nodes with mutual TLS (certificates made for the run), to compare with TCP.
    #[arg(long)]
    pub tls: bool,
    /// Seconds the swarm runs with its leader before each trial: 15 or more lets it turn
    /// quiet first (docs/protocol.md#quiet); 0 takes the leader down as soon as all agree.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub settle_s: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailMode {
    Kill,
    Stop,
    Term,
}

#[derive(Debug, Args, Clone)]
pub struct WatchArgs {
    #[command(flatten)]
    pub bus: BusArgs,
}

#[derive(Debug, Args, Clone)]
pub struct IdleArgs {
    /// Nodes to start on loopback.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub nodes: u16,
    /// How long to watch the idle nodes, in seconds (at most a day, 86400).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=MAX_WAIT_MS / 1000))]
    pub seconds: u64,
    /// First loopback TCP port to use.
    #[arg(long, default_value_t = 17447, value_parser = clap::value_parser!(u16).range(1024..=60000))]
    pub base_port: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sim_flags_take_units_and_refuse_nonsense() {
        assert_eq!(parse_secs("600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_secs("600s"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_secs("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_latency("20"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_latency("20ms"), Ok(Duration::from_millis(20)));
        assert!(parse_secs("10 parsecs").is_err());
        assert!(parse_secs("-5").is_err());
        assert!(parse_secs("").is_err());
        assert_eq!(parse_pct("5%"), Ok(0.05));
        assert_eq!(parse_pct("5"), Ok(0.05));
        assert!(parse_pct("150").is_err());
        assert!(parse_pct("NaN").is_err());
    }
}
