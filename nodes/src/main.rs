//! `swarm-node`: run a node, ask the swarm, edit the config, measure.

mod atomic_file;
mod bench;
mod cli;
mod config;
mod energy;
mod identity;
mod report;
mod runtime;
mod watch;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command, ConfigCommand, QueryArgs};
use std::time::Duration;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    swarm_bridge::logging::init();
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
            println!("set {key} = {value} in {}", path.display());
        }
        Command::Run(args) => {
            let cfg = effective(&path, explicit, &args)?;
            let id = cfg.node.id.clone().unwrap_or_else(identity::local_id);
            runtime_block_on(runtime::run(cfg, id))?;
        }
        Command::Status(args) => return ask(&path, explicit, &args, Report::Status),
        Command::Energy(args) => return ask(&path, explicit, &args, Report::Energy),
        Command::Bench(args) => runtime_block_on(bench::run(args))?,
        Command::Watch(args) => return watch(&path, explicit, &args),
    }
    Ok(ok)
}

/// Defaults, then the file, then environment and flags; validated.
fn effective(
    path: &std::path::Path,
    explicit: bool,
    args: &cli::RunArgs,
) -> anyhow::Result<config::Config> {
    let mut cfg = config::load(path, explicit)?;
    config::apply_run(&mut cfg, args);
    cfg.validate()?;
    Ok(cfg)
}

enum Report {
    Status,
    Energy,
}

fn watch(
    path: &std::path::Path,
    explicit: bool,
    args: &cli::WatchArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let mut cfg = config::load(path, explicit)?;
    config::apply_bus(&mut cfg, &args.bus);
    cfg.validate()?;
    let clean = runtime_block_on(watch::run(&cfg))?;
    Ok(if clean {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

fn ask(
    path: &std::path::Path,
    explicit: bool,
    args: &QueryArgs,
    report: Report,
) -> anyhow::Result<std::process::ExitCode> {
    let mut cfg = config::load(path, explicit)?;
    config::apply_bus(&mut cfg, &args.bus);
    cfg.validate()?;
    let view = runtime_block_on(report::ask(&cfg, Duration::from_millis(args.timeout_ms)))?;
    for fault in &view.faults {
        eprintln!("warning: unreadable reply {fault}");
    }
    let found = match report {
        Report::Status => {
            let rows = report::status::rows(&view, runtime::unix_ms());
            if args.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if !rows.is_empty() {
                print!("{}", report::status::render(&rows));
            }
            !rows.is_empty()
        }
        Report::Energy => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report::energy::json(&view))?
                );
            } else if !view.energy.is_empty() {
                print!("{}", report::energy::render(&view));
            }
            !view.energy.is_empty()
        }
    };
    if found {
        return Ok(std::process::ExitCode::SUCCESS);
    }
    eprintln!(
        "no node of swarm `{}` answered within {} ms (connect: {:?}, multicast scouting: {})",
        cfg.node.swarm, args.timeout_ms, cfg.zenoh.connect, cfg.zenoh.multicast_scouting
    );
    Ok(std::process::ExitCode::from(1))
}

fn runtime_block_on<F: std::future::Future<Output = anyhow::Result<T>>, T>(
    f: F,
) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}
