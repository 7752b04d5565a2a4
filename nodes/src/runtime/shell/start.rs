//! Opening the bus and joining the swarm.

use super::effects::log_leadership;
use super::{Shell, Ticks};
use crate::config::{Config, default_state_dir};
use crate::energy::new_sampler;
use crate::runtime::abort::AbortOnDrop;
use crate::runtime::answers;
use crate::runtime::board_service::BoardService;
use crate::runtime::pace::{self, Pace};
use crate::runtime::view::NodeView;
use crate::runtime::vote_store::VoteStore;
use crate::runtime::wiring::Bus;
use crate::runtime::{anti_entropy, pin_store, tasks};
use anyhow::Context;
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{self as bus, DropCounters};
use swarm_bus::{NodeId, SwarmKeys};
use swarm_core::clock::Epoch;
use swarm_node::node::pacing::Pacing;
use swarm_node::node::{Admit, Input, NodeCore};
use tokio::sync::{mpsc, watch};
use tokio::time::{Interval, MissedTickBehavior};

/// How often the cumulative energy total is written: rarely, to spare SD cards.
const SAVE_EVERY: Duration = Duration::from_secs(60);

impl Shell {
    pub async fn start(config: Config, id: NodeId) -> anyhow::Result<Shell> {
        let keys = SwarmKeys::new(config.node.swarm.clone());
        let state_dir = config
            .node
            .state_dir
            .clone()
            .unwrap_or_else(|| default_state_dir(&id));
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("creating state directory {}", state_dir.display()))?;
        // Before the session opens: a damaged vote record must stop the node before it can vote.
        let store = VoteStore::open(&state_dir)?;
        let now = Instant::now();
        let epoch = Epoch::now();
        let core = NodeCore::new(
            id.clone(),
            config.election_settings(),
            store.loaded().clone(),
            epoch.at(now),
            random_seed(),
            Admit::Members {
                max_members: config.limits.max_members,
            },
        );
        let mut sampler = new_sampler(&config.energy, &state_dir);
        let view = NodeView::new(
            id.clone(),
            config.node.class,
            config.consensus.heartbeat_interval_ms,
            now,
        );
        let first_sample = sampler.sample(now);
        let (view_tx, view_rx) = watch::channel(view.clone());

        let session = if config.history.runs(config.bridge.enabled) {
            crate::history::open(&config.zenoh, &keys, &config.history).await?
        } else {
            bus::open(&config.zenoh).await?
        };
        let drops = DropCounters::default();
        let gco2_per_kwh = config.energy.carbon_intensity_gco2_kwh;
        let tls = config.zenoh.tls_dir.is_some();
        let agreement = tasks::Agreement::default();
        let sources = answers::Sources {
            view: view_rx.clone(),
            drops: drops.clone(),
            agreement: agreement.clone(),
        };
        let mut held = answers::serve(&session, &keys, &id, &sources, gco2_per_kwh, tls).await?;
        let bus = Bus::open(&session, &keys, &id, &drops).await?;
        let token = bus::declare_token(&session, &keys, &id).await?;
        let bridge = if config.bridge.enabled {
            Some(
                swarm_bridge::run_bridge(
                    session.clone(),
                    keys.swarm().clone(),
                    &config.bridge,
                    &config.homeassistant,
                )
                .await?,
            )
        } else {
            None
        };
        if let Some(feed) = bridge.as_ref().and_then(|b| b.gateway_power.clone()) {
            sampler.measure_with(feed);
        }
        let pacing = if config.adaptive_gossip.enabled {
            Pacing::adaptive(config.cadence_settings(), pin_store::load(&state_dir))
        } else {
            Pacing::fixed(&config.cadence_settings())
        };
        let core = core
            .with_pacing(pacing)
            .with_snapshots(super::snapshot::VIEW_EVERY);
        let pace = Pace::new(core.pace());
        let board = BoardService::start(&config.board)?;
        if let Some(addr) = config.metrics.listen {
            let snapshot = answers::metrics_snapshot(
                sources,
                pace.sent_total(),
                &keys,
                gco2_per_kwh,
                board.inputs.clone(),
                bridge.as_ref().map(|b| b.stats.clone()),
            );
            let (bound, task) = crate::metrics::server::serve(addr, snapshot).await?;
            tracing::info!(%bound, "serving Prometheus metrics on /metrics");
            held.push(Box::new(AbortOnDrop(task)));
        }
        let (survey_tx, surveys) = mpsc::channel(1);
        let mut shell = Shell {
            core,
            pace,
            bus,
            ticks: Ticks {
                retune: delayed(pace::RETUNE_EVERY),
                save: tokio::time::interval(SAVE_EVERY),
                announce: delayed(swarm_node::scale::ANNOUNCE_EVERY),
            },
            surveys,
            survey_tx,
            survey_running: false,
            energy_waiting: false,
            members_streak: 0,
            id: id.clone(),
            keys: keys.clone(),
            state_dir: state_dir.clone(),
            session: session.clone(),
            drops: drops.clone(),
            store,
            sampler,
            board,
            bridge,
            token: Some(token),
            tasks: None,
            view,
            view_tx,
            epoch,
            gco2_per_kwh,
            low_battery_pct: config.energy.low_power_threshold_percent,
            _held: held,
        };
        shell.feed(Input::OwnEnergy(first_sample)).await;
        shell.join().await;
        shell.tasks = Some(
            tasks::start(tasks::Context {
                session,
                keys,
                me: id.clone(),
                settings: config.tasks.clone(),
                view: view_rx,
                drops,
                low_battery_pct: config.energy.low_power_threshold_percent,
                epoch: shell.epoch,
                agreement,
            })
            .await?,
        );
        tracing::info!(
            id = %id, swarm = %shell.keys.swarm(), class = %config.node.class,
            state_dir = %state_dir.display(), "node running"
        );
        Ok(shell)
    }

    /// Who leads first, then who is a member, and only members' answers count. In that order
    /// a sound answer is never refused: a node answers only after its token is declared
    /// (`NodeView::joined`), so the members asked for after its answer include it.
    pub(super) async fn join(&mut self) {
        let infos = anti_entropy::who_leads(&self.session, &self.keys).await;
        let members = anti_entropy::members(&self.session, &self.keys).await;
        self.feed_all(members.into_iter().map(Input::TokenAppeared))
            .await;
        if let Some(l) = self
            .feed_all(infos.into_iter().map(Input::LeaderInfo))
            .await
        {
            log_leadership(&l);
        }
        self.view.joined = true;
        self.view_tx.send_modify(|v| v.joined = true);
    }
}

fn delayed(every: Duration) -> Interval {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}

/// Different on every start, so nodes started together draw different timeouts.
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}
