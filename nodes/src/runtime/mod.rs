//! `swarm-node run`: the async shell around the node's core. `run` is the whole loop: wait
//! for the next thing to happen (`shell/listen.rs`), hand it to the shell (`shell.rs`), which feeds
//! the core (`swarm_node::node::NodeCore`) and carries out what it says.

mod abort;
mod answers;
mod anti_entropy;
mod board_service;
mod handoff;
mod heartbeat_feed;
mod pace;
mod pin_store;
mod proposals;
mod recv;
mod shell;
mod tasks;
mod view;
mod vote_store;
mod wake;
mod wiring;

use crate::config::Config;
use shell::Shell;
use swarm_bus::NodeId;
use wake::Wake;

/// `run` on a runtime worker rather than in `block_on`: the worker that holds the timer
/// driver then runs the loop itself when a tick falls due, instead of waking the main thread
/// for each one, which halves an idle node's wakeups. A panic in it is the process's still.
pub async fn run_on_worker(config: Config, id: NodeId) -> anyhow::Result<()> {
    match tokio::spawn(run(config, id)).await {
        Ok(done) => done,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => Err(anyhow::anyhow!("the node's loop was cancelled: {e}")),
        },
    }
}

pub async fn run(config: Config, id: NodeId) -> anyhow::Result<()> {
    // Installed before anything slow (opening the session can take seconds in client mode),
    // so a stop request is never met by the default action of killing the process.
    let mut stop = Box::pin(crate::signals::shutdown_signal()?);
    // Not on a gateway: a trim makes the bridge fault its hot code back in at once, a
    // latency spike of milliseconds for every device in flight.
    let trims = !config.bridge.enabled;
    let mut shell = Shell::start(config, id).await?;
    let trimming = trims.then(|| tokio::spawn(crate::code_pages::keep_trimmed()));
    loop {
        match shell.next(&mut stop).await {
            Wake::Stop(signal) => {
                tracing::info!("{signal}: leaving the swarm");
                break;
            }
            wake => shell.handle(wake).await,
        }
    }
    if let Some(t) = trimming {
        t.abort();
    }
    shell.leave().await
}
