//! `swarm-node`: run a node, ask the swarm, edit the config, measure.

mod bench;
mod board;
mod certs;
mod cli;
mod code_pages;
mod config;
mod dashboard;
mod energy;
mod firmware;
mod history;
// The build scripts' rule for the hot-first code layout, tested with the node.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../build-support/hot_layout.rs"]
mod hot_layout;
mod identity;
mod metrics;
mod process_memory;
mod report;
mod runtime;
mod signals;
mod threads;
mod watch;

use clap::Parser;
use cli::{CadenceCommand, Cli, Command, ConfigCommand, FirmwareCommand, QueryArgs, TaskCommand};
use std::time::Duration;
// State files are written through the library's atomic writer (`crate::atomic_file`).
use swarm_node::atomic_file;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // A dashboard owns the terminal: log lines would scribble over it, so there are none.
    if !matches!(cli.command, Command::Dashboard(_) | Command::Green(_)) {
        use swarm_bridge::logging::Process;
        let process = match cli.command {
            Command::Run(_) => Process::Service,
            _ => Process::Command,
        };
        swarm_bridge::logging::init(process, cli.verbose);
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let path = config::resolve_path(cli.config.as_deref())?;
    let explicit = cli.config.is_some();
    let ok = std::process::ExitCode::SUCCESS;
    match cli.command {
        Command::Config(ConfigCommand::Path) => println!("{}", path.display()),
        Command::Config(ConfigCommand::Init { force }) => {
            config::init(&path, force)?;
            println!("wrote {}", path.display());
        }
        Command::Config(ConfigCommand::Show(args)) => {
            print!("{}", config::show(&effective(&path, explicit, &args)?))
        }
        Command::Config(ConfigCommand::Set { key, value }) => {
            config::set(&path, &key, &value)?;
            let shown = if config::is_secret_key(&key) {
                config::REDACTED
            } else {
                value.as_str()
            };
            println!("set {key} = {shown} in {}", path.display());
        }
        Command::Run(args) => {
            let cfg = effective(&path, explicit, &args)?;
            let id = cfg.node.id.clone().unwrap_or_else(identity::local_id);
            let shape = threads::Shape::for_node(cfg.bridge.enabled);
            threads::block_on(shape, runtime::run_on_worker(cfg, id))?;
        }
        Command::Status(args) => return ask(&path, explicit, &args, Report::Status),
        Command::Energy(args) if args.watch => {
            let mut cfg = config::load(&path, explicit)?;
            args.query.bus.overrides().apply(&mut cfg);
            cfg.validate()?;
            runtime_block_on(report::energy_watch::run(&cfg, &args))?;
        }
        Command::Energy(args) if args.since.is_some() => {
            let mut cfg = config::load(&path, explicit)?;
            args.query.bus.overrides().apply(&mut cfg);
            cfg.validate()?;
            let since = args.since.as_deref().unwrap_or_default();
            runtime_block_on(report::energy_history::run(
                &cfg,
                since,
                args.query.timeout_ms,
                args.query.json,
            ))?;
        }
        Command::Energy(args) => {
            let report = Report::Energy { total: args.total };
            return ask(&path, explicit, &args.query, report);
        }
        Command::Bench(args) => runtime_block_on(bench::run(args))?,
        Command::Watch(args) => return watch(&path, explicit, &args),
        Command::Cadence(c) => return cadence(&path, explicit, c),
        Command::Task(t) => return task(&path, explicit, t),
        Command::Firmware(f) => {
            let bus = match &f {
                FirmwareCommand::Push(a) => &a.query.bus,
                FirmwareCommand::Status(a) => &a.bus,
            };
            let mut cfg = config::load(&path, explicit)?;
            bus.overrides().apply(&mut cfg);
            cfg.validate()?;
            return match &f {
                FirmwareCommand::Push(args) => runtime_block_on(firmware::push(&cfg, args)),
                FirmwareCommand::Status(args) => runtime_block_on(firmware::status(&cfg, args)),
            };
        }
        Command::Propose(args) => {
            let mut cfg = config::load(&path, explicit)?;
            args.query.bus.overrides().apply(&mut cfg);
            cfg.validate()?;
            return runtime_block_on(report::propose::run(&cfg, &args));
        }
        Command::Dashboard(args) => board(&path, explicit, &args, dashboard::Board::Members)?,
        Command::Green(args) => board(&path, explicit, &args, dashboard::Board::Green)?,
        Command::Identify(args) => {
            let mut cfg = config::load(&path, explicit)?;
            args.bus.overrides().apply(&mut cfg);
            cfg.validate()?;
            runtime_block_on(report::identify::run(&cfg, &args.node, args.seconds))?;
        }
        Command::Certs(cli::CertsCommand::Init(args)) => {
            let written = certs::init(&args.dir, args.force)?;
            print_written(&written);
            println!(
                "next: swarm-node certs issue <node-id> --dir {}",
                args.dir.display()
            );
        }
        Command::Certs(cli::CertsCommand::Issue(args)) => {
            let written = certs::issue(&args.dir, &args.name, args.role.into(), args.force)?;
            print_written(&written);
        }
        Command::Certs(cli::CertsCommand::Acl(args)) => {
            println!("{}", certs::acl_json(&args.dir)?);
        }
        Command::Sim(sim) => {
            let cfg = effective(&path, explicit, &cli::RunArgs::default())?;
            match &sim.sweep {
                Some(cli::SimSweep::Sweep(args)) => report::sim::sweep(&cfg, args)?,
                None => report::sim::run(&cfg, &sim.run)?,
            }
        }
    }
    Ok(ok)
}

fn print_written(paths: &[std::path::PathBuf]) {
    for path in paths {
        println!("wrote {}", path.display());
    }
}

/// Defaults, then the file, then environment and flags; validated.
fn effective(
    path: &std::path::Path,
    explicit: bool,
    args: &cli::RunArgs,
) -> anyhow::Result<config::Config> {
    let mut cfg = config::load(path, explicit)?;
    args.overrides().apply(&mut cfg);
    cfg.validate()?;
    Ok(cfg)
}

enum Report {
    Status,
    Energy { total: bool },
}

fn watch(
    path: &std::path::Path,
    explicit: bool,
    args: &cli::WatchArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let mut cfg = config::load(path, explicit)?;
    args.bus.overrides().apply(&mut cfg);
    cfg.validate()?;
    let clean = runtime_block_on(watch::run(&cfg))?;
    Ok(if clean {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

fn board(
    path: &std::path::Path,
    explicit: bool,
    args: &cli::WatchArgs,
    board: dashboard::Board,
) -> anyhow::Result<()> {
    let mut cfg = config::load(path, explicit)?;
    args.bus.overrides().apply(&mut cfg);
    // A dashboard stays for hours: as a client it holds one link, to a node that routes the
    // swarm to it, instead of one link (~170 KiB) per node. `--mode peer` still links to all.
    if args.bus.mode.is_none() {
        cfg.zenoh.mode = swarm_bus::zenoh::SessionMode::Client;
    }
    cfg.validate()?;
    runtime_block_on(dashboard::run(&cfg, board))
}

fn task(
    path: &std::path::Path,
    explicit: bool,
    command: TaskCommand,
) -> anyhow::Result<std::process::ExitCode> {
    use report::tasks;
    let bus = match &command {
        TaskCommand::Submit(a) => &a.bus,
        TaskCommand::Status(a) | TaskCommand::Cancel(a) => &a.query.bus,
        TaskCommand::List(a) => &a.query.bus,
    };
    let mut cfg = config::load(path, explicit)?;
    bus.overrides().apply(&mut cfg);
    cfg.validate()?;
    match &command {
        TaskCommand::Submit(args) => {
            let id = runtime_block_on(tasks::submit(&cfg, args))?;
            if args.json {
                println!("{}", serde_json::json!({ "id": id.as_str() }));
            } else {
                println!("{id}");
            }
        }
        TaskCommand::Status(args) => return runtime_block_on(tasks::status(&cfg, args)),
        TaskCommand::List(args) => return runtime_block_on(tasks::list(&cfg, args)),
        TaskCommand::Cancel(args) => runtime_block_on(tasks::cancel(&cfg, args))?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn ask(
    path: &std::path::Path,
    explicit: bool,
    args: &QueryArgs,
    report: Report,
) -> anyhow::Result<std::process::ExitCode> {
    let mut cfg = config::load(path, explicit)?;
    args.bus.overrides().apply(&mut cfg);
    cfg.validate()?;
    let view = runtime_block_on(report::ask(&cfg, Duration::from_millis(args.timeout_ms)))?;
    for fault in &view.faults {
        eprintln!("warning: unreadable reply {fault}");
    }
    let found = match report {
        Report::Status => {
            let g = &cfg.adaptive_gossip;
            let limits = (g.suspect_after, g.min_interval_ms);
            let rows = report::status::rows(&view, swarm_bus::clock::unix_ms(), limits);
            if args.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if !rows.is_empty() {
                print!("{}", report::status::render(&rows));
            }
            !rows.is_empty()
        }
        Report::Energy { total } => {
            if args.json {
                let doc = if total {
                    report::energy::total_json(&view)
                } else {
                    report::energy::json(&view)
                };
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else if !view.energy.is_empty() {
                print!("{}", report::energy::render(&view));
            }
            !view.energy.is_empty()
        }
    };
    if found {
        return Ok(std::process::ExitCode::SUCCESS);
    }
    eprintln!("{}", report::no_answer(&cfg, args.timeout_ms));
    Ok(std::process::ExitCode::from(1))
}

fn cadence(
    path: &std::path::Path,
    explicit: bool,
    command: CadenceCommand,
) -> anyhow::Result<std::process::ExitCode> {
    use report::cadence;
    let args = match &command {
        CadenceCommand::Show(args) => args.clone(),
        CadenceCommand::Set(set) => set.query(),
    };
    let mut cfg = config::load(path, explicit)?;
    args.bus.overrides().apply(&mut cfg);
    cfg.validate()?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let view = runtime_block_on(report::ask(&cfg, timeout))?;
    let rows = match &command {
        CadenceCommand::Show(_) => cadence::rows(&view),
        CadenceCommand::Set(set) => {
            let (mode, node) = (&set.mode, &set.node);
            let mode = cadence::parse_mode(mode).map_err(|e| anyhow::anyhow!("--mode: {e}"))?;
            let targets = cadence::targets(&view, node.as_ref());
            if targets.is_empty() {
                anyhow::bail!(
                    "no node of swarm `{}` answered; nothing to set",
                    cfg.node.swarm
                );
            }
            let (rows, missing) =
                runtime_block_on(cadence::set(&cfg, &targets, mode, timeout * 2))?;
            if !missing.is_empty() {
                let names: Vec<&str> = missing.iter().map(|n| n.as_str()).collect();
                eprintln!("not confirmed by: {}", names.join(", "));
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", cadence::render(&rows));
            }
            return Ok(if missing.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            });
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if !rows.is_empty() {
        print!("{}", cadence::render(&rows));
    }
    if rows.is_empty() {
        eprintln!("{}", report::no_answer(&cfg, args.timeout_ms));
        return Ok(std::process::ExitCode::from(1));
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// A command's runtime: zenoh's as it ships, two workers of ours.
fn runtime_block_on<F: std::future::Future<Output = anyhow::Result<T>>, T>(
    f: F,
) -> anyhow::Result<T> {
    threads::block_on(threads::Shape::Full, f)
}
