//! `swarm-bridge`: MQTT devices into the swarm, simulated boards, password hashes, benchmarks.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use swarm_bridge::config::{BridgeConfig, MqttMode};
use swarm_bridge::devices::{DeviceCounters, DeviceOptions};
use swarm_bus::zenoh::{ZenohSettings, open};
use swarm_bus::{NodeId, SwarmKeys, SwarmName};

#[derive(Parser)]
#[command(
    name = "swarm-bridge",
    version,
    about = "MQTT devices and peripherals as swarm members"
)]
struct Cli {
    /// Log more on stderr, a step per -v: a command logs only its own warnings, `run` also
    /// info and zenoh's warnings; then debug, then trace. SWARM_LOG (`info,zenoh=debug`) wins.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the bridge: an embedded MQTT broker (default) or a client of an external one.
    Run(RunArgs),
    /// Run N simulated boards against an MQTT broker until interrupted.
    Devices(DevicesArgs),
    /// A simulated microcontroller on a serial port (pair it with the bridge through socat).
    UartDevice(UartArgs),
    /// Throughput and latency from MQTT clients to a zenoh subscriber, through any bridge.
    Bench(BenchArgs),
    /// Add or replace a device login in a users file (argon2 hash; password from stdin).
    Passwd {
        file: PathBuf,
        user: String,
        /// Read from stdin when not given.
        #[arg(long)]
        password: Option<String>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Embedded broker address for devices [default: 127.0.0.1:1883].
    #[arg(long, conflicts_with = "mqtt_broker")]
    mqtt_listen: Option<SocketAddr>,
    /// Use an external broker at HOST:PORT instead of the embedded one.
    #[arg(long)]
    mqtt_broker: Option<String>,
    /// Zenoh endpoint to connect to (repeatable).
    #[arg(long)]
    connect: Vec<String>,
    /// Zenoh endpoint to listen on (repeatable).
    #[arg(long)]
    listen: Vec<String>,
    #[arg(long, env = "SWARM_NAME")]
    swarm: Option<SwarmName>,
    /// Do not look for peers by UDP multicast.
    #[arg(long)]
    no_multicast: bool,
    /// A swarm.toml; its `[bridge]` and `[zenoh]` tables and `[node] swarm` are read.
    #[arg(long, env = "SWARM_CONFIG")]
    config: Option<PathBuf>,
    /// Users file (`username:argon2-hash` lines); turns on logins and the per-device ACL.
    #[arg(long)]
    users_file: Option<PathBuf>,
    /// Accept devices without logins on an address other machines can reach (refused
    /// otherwise; prefer --users-file).
    #[arg(long)]
    mqtt_allow_anonymous: bool,
    /// Also accept MQTT over TLS on this address (needs --tls-cert and --tls-key, or the config's).
    #[arg(long, conflicts_with = "mqtt_broker")]
    mqtt_tls_listen: Option<SocketAddr>,
    /// PEM certificate chain for --mqtt-tls-listen.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --mqtt-tls-listen.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// A microcontroller on a UART, PORT=NODE_ID[@BAUD] (repeatable; adds to `[[bridge.serial]]`).
    #[arg(long, value_name = "PORT=NODE_ID[@BAUD]")]
    serial: Vec<swarm_bridge::config::SerialPort>,
}

#[derive(clap::Args)]
struct UartArgs {
    /// The serial port to write frames to.
    #[arg(long)]
    port: PathBuf,
    #[arg(long, default_value = "uart-sim")]
    id: swarm_bus::NodeId,
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// The bridge's MQTT side, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: String,
    /// The zenoh endpoint where the bridge's samples can be received.
    #[arg(long)]
    zenoh: String,
    #[arg(long, default_value = "bench")]
    swarm: SwarmName,
    /// MQTT clients publishing at once.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Seconds of each flood phase.
    #[arg(long, default_value_t = 5)]
    flood_s: u64,
    /// Total rate of the fixed-rate phases, msg/s.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    #[arg(long, default_value_t = 5)]
    rate_s: u64,
    /// Idle connections to open and hold at the end (0: skip).
    #[arg(long, default_value_t = 1000)]
    connections: usize,
}

#[derive(clap::Args)]
struct DevicesArgs {
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Broker HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: String,
    #[arg(long, env = "SWARM_NAME", default_value = "default")]
    swarm: SwarmName,
    /// Device ids are `<prefix>-<n>`.
    #[arg(long, default_value = "sim")]
    prefix: String,
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    #[arg(long, default_value_t = 5)]
    keep_alive_s: u64,
    /// Log in as the device id with this password.
    #[arg(long)]
    password: Option<String>,
    /// Run the ESP32 firmware's own core (`firmware/core`) in each board instead of the
    /// rumqttc stand-in: its connect state machine, cadence, command checks and energy
    /// estimate. Prints each report cycle's bytes for the first board.
    #[arg(long)]
    firmware_core: bool,
    /// With --firmware-core: deep-sleep between reports once the interval is at least this.
    #[arg(long, requires = "firmware_core")]
    deep_sleep_from_ms: Option<u32>,
    /// With --firmware-core: the battery pin's mV at start (1:2 divider; 2050 is a 4.1 V cell).
    #[arg(long, default_value_t = 2050, requires = "firmware_core")]
    battery_pin_mv: u16,
    /// With --firmware-core: how many mV the pin falls each minute.
    #[arg(long, default_value_t = 0, requires = "firmware_core")]
    drain_mv_per_min: u16,
    /// With --firmware-core: the firmware version the boards run at start.
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"), requires = "firmware_core")]
    firmware_version: String,
    /// With --firmware-core: boards (by id, repeatable) whose updated images never rejoin the
    /// swarm, so their trials fail and the previous image boots again.
    #[arg(long, requires = "firmware_core")]
    broken_update: Vec<NodeId>,
    /// With --firmware-core: how long a new image has to rejoin the swarm, in ms.
    #[arg(long, default_value_t = swarm_fw_core::update::TRIAL_DEADLINE_MS, requires = "firmware_core")]
    trial_deadline_ms: u64,
    /// With --firmware-core: bytes an OTA slot holds (the partition table's 0x1E0000).
    #[arg(long, default_value_t = 0x1E_0000, requires = "firmware_core")]
    slot_bytes: u32,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    use swarm_bridge::logging::Process;
    let process = match cli.command {
        Cmd::Run(_) | Cmd::Devices(_) | Cmd::UartDevice(_) => Process::Service,
        Cmd::Bench(_) | Cmd::Passwd { .. } => Process::Command,
    };
    if process == Process::Service {
        swarm_bridge::heap::allocator::one_arena();
    }
    swarm_bridge::logging::init(process, cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Run(args) => run(args).await,
        Cmd::Devices(args) => devices(args).await,
        Cmd::UartDevice(args) => uart_device(args).await,
        Cmd::Bench(args) => bench(args).await,
        Cmd::Passwd {
            file,
            user,
            password,
        } => passwd(file, user, password),
    }
}

/// What `swarm-bridge` reads from a swarm.toml; other tables belong to `swarm-node`.
#[derive(serde::Deserialize, Default)]
struct FileConfig {
    #[serde(default)]
    bridge: BridgeConfig,
    #[serde(default)]
    homeassistant: swarm_bridge::homeassistant::HomeAssistantConfig,
    #[serde(default)]
    node: NodeTable,
    #[serde(default)]
    zenoh: ZenohSettings,
}

#[derive(serde::Deserialize, Default)]
struct NodeTable {
    swarm: Option<SwarmName>,
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let mut config = file.bridge;
    if let Some(addr) = args.mqtt_listen {
        config.mode = MqttMode::Embedded;
        config.listen = addr;
    }
    if let Some(broker) = args.mqtt_broker {
        config.mode = MqttMode::External;
        config.broker = Some(broker);
    }
    if args.users_file.is_some() {
        config.users_file = args.users_file;
    }
    config.allow_anonymous |= args.mqtt_allow_anonymous;
    config.serial.extend(args.serial);
    config.tls_listen = args.mqtt_tls_listen.or(config.tls_listen);
    config.tls_cert = args.tls_cert.or(config.tls_cert);
    config.tls_key = args.tls_key.or(config.tls_key);
    if let Some(m) = config.i2c.iter().find(|m| m.node_id.is_none()) {
        bail!(
            "bridge.i2c {}: a monitor without node_id measures the gateway, whose energy only \
             `swarm-node run --bridge` publishes; give it a node_id to run it here",
            m.name()
        );
    }
    let swarm = args
        .swarm
        .or(file.node.swarm)
        .unwrap_or_else(|| SwarmName::new("default").expect("valid literal"));
    // The file's `[zenoh]` (mode, router, a zenoh config file) applies; flags override it.
    let mut zenoh = file.zenoh;
    if !args.listen.is_empty() {
        zenoh.listen = args.listen;
    }
    if !args.connect.is_empty() {
        zenoh.connect = args.connect;
    }
    if args.no_multicast {
        zenoh.multicast_scouting = false;
    }
    let session = open(&zenoh).await?;
    let bridge =
        swarm_bridge::run_bridge(session.clone(), swarm.clone(), &config, &file.homeassistant)
            .await?;
    // Like a node, a bridge of its own answers a querier linked to it alone for the whole
    // network (docs/protocol.md#first-answer); not with TLS, whose roster drops relayed replies.
    let relay_drops = swarm_bus::zenoh::DropCounters::default();
    let _relay = match zenoh.tls_dir {
        None => Some(
            swarm_bus::zenoh::relay(
                &session,
                relay_drops.clone(),
                std::time::Duration::from_secs(3),
            )
            .await?,
        ),
        Some(_) => None,
    };
    tracing::info!(%swarm, mode = ?config.mode, "bridge running");
    shutdown().await;
    tracing::info!(
        forwarded = bridge
            .stats
            .forwarded
            .load(std::sync::atomic::Ordering::Relaxed),
        mesh_only = bridge
            .stats
            .mesh_only
            .load(std::sync::atomic::Ordering::Relaxed),
        dropped = bridge.stats.dropped(),
        relay_refused = relay_drops.total(),
        "bridge stopping"
    );
    drop(bridge);
    let _ = session.close().await;
    Ok(())
}

async fn devices(args: DevicesArgs) -> anyhow::Result<()> {
    let (host, port) = swarm_bridge::external::parse_broker(&args.mqtt)?;
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    if args.keep_alive_s < 5 {
        // rumqttc, like the firmware's client, does not go below 5 s.
        bail!("--keep-alive-s must be at least 5");
    }
    if args.firmware_core {
        return firmware_devices(args, host, port).await;
    }
    let opts = DeviceOptions {
        host,
        port,
        keys: SwarmKeys::new(args.swarm),
        prefix: args.prefix,
        count: args.count,
        interval: Duration::from_millis(args.interval_ms.max(10)),
        keep_alive: Duration::from_secs(args.keep_alive_s),
        password: args.password,
    };
    let counters = Arc::new(DeviceCounters::default());
    tokio::select! {
        r = swarm_bridge::devices::run(opts, counters.clone()) => r?,
        _ = shutdown() => {}
    }
    Ok(())
}

async fn firmware_devices(args: DevicesArgs, host: String, port: u16) -> anyhow::Result<()> {
    let interval_ms = u32::try_from(args.interval_ms.clamp(100, 3_600_000))?;
    let keep_alive_s = u16::try_from(args.keep_alive_s).context("--keep-alive-s is too long")?;
    let opts = swarm_bridge::firmware_devices::FirmwareDeviceOptions {
        host,
        port,
        swarm: args.swarm,
        prefix: args.prefix,
        count: args.count,
        interval_ms,
        keep_alive_s,
        password: args.password,
        deep_sleep_from_ms: args.deep_sleep_from_ms,
        battery_pin_mv: args.battery_pin_mv,
        drain_mv_per_min: args.drain_mv_per_min,
        version: args.firmware_version,
        broken_updates: args.broken_update,
        trial_deadline_ms: args.trial_deadline_ms,
        slot_bytes: args.slot_bytes,
    };
    let counters = Arc::new(swarm_bridge::firmware_devices::FirmwareDeviceCounters::default());
    tokio::select! {
        r = swarm_bridge::firmware_devices::run(opts, counters.clone()) => r?,
        _ = shutdown() => {}
    }
    use std::sync::atomic::Ordering::Relaxed;
    let cycles = counters.cycles.load(Relaxed);
    let bytes = counters.bytes_sent.load(Relaxed);
    println!(
        "{cycles} report cycles, {bytes} bytes sent ({} per cycle), {} sessions, {} commands obeyed, {} rejected",
        bytes.checked_div(cycles).unwrap_or(0),
        counters.sessions.load(Relaxed),
        counters.commands.load(Relaxed),
        counters.rejected_commands.load(Relaxed),
    );
    Ok(())
}

async fn uart_device(args: UartArgs) -> anyhow::Result<()> {
    let interval = Duration::from_millis(args.interval_ms.max(10));
    tokio::select! {
        r = swarm_bridge::uart_device::run(&args.port, args.baud, &args.id, interval) => {
            r.with_context(|| format!("serial port {}", args.port.display()))?
        }
        _ = shutdown() => {}
    }
    Ok(())
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let (host, port) = swarm_bridge::external::parse_broker(&args.mqtt)?;
    if args.clients == 0 || args.rate == 0 {
        bail!("--clients and --rate must be at least 1");
    }
    let zenoh = ZenohSettings {
        connect: vec![args.zenoh.clone()],
        multicast_scouting: false,
        ..ZenohSettings::default()
    };
    let session = open(&zenoh).await?;
    let opts = swarm_bridge::bench::BenchOptions {
        host,
        port,
        keys: SwarmKeys::new(args.swarm),
        clients: args.clients,
        flood: Duration::from_secs(args.flood_s.max(1)),
        rate: args.rate,
        rate_for: Duration::from_secs(args.rate_s.max(1)),
        connections: args.connections,
    };
    println!(
        "swarm-bridge bench: {} clients, MQTT {} -> zenoh {}",
        args.clients, args.mqtt, args.zenoh
    );
    let results = swarm_bridge::bench::run(opts, session.clone()).await;
    let _ = session.close().await;
    for r in results? {
        println!("{}", r.line());
    }
    Ok(())
}

fn passwd(file: PathBuf, user: String, password: Option<String>) -> anyhow::Result<()> {
    swarm_bus::NodeId::new(&user).with_context(|| format!("user `{user}` must be a device id"))?;
    let password = match password {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        bail!("empty password");
    }
    let hash = swarm_bridge::auth::hash_password(&password)?;
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    std::fs::write(&file, swarm_bridge::auth::set_user(&text, &user, &hash))
        .with_context(|| format!("writing {}", file.display()))?;
    println!("{user} set in {}", file.display());
    Ok(())
}

async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
