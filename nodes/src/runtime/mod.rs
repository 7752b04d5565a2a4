//! `swarm-node run`: the thin async shell around the node's view of the swarm.

mod anti_entropy;
mod board_service;
mod consensus;
mod gate;
mod handoff;
mod heartbeat_feed;
mod pace;
mod pin_store;
mod proposals;
mod tasks;
mod view;
mod vote_store;

use crate::config::{Config, default_state_dir};
use crate::energy::new_sampler;
use crate::signals::shutdown_signal;
use anyhow::Context;
use consensus::{Consensus, Leadership};
use heartbeat_feed::{HeartbeatFeed, Want};
use pace::Pace;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use swarm_bus::clock::unix_ms;
use swarm_bus::zenoh::{self as bus, DropCounters, MemberEvent, TypedPublisher, TypedSubscriber};
use swarm_bus::{Energy, Heartbeat, LeaderInfo, Leaf, Leave, NodeId, SwarmEnergy, SwarmKeys, Vote};
use swarm_node::election::Event;
use tokio::time::MissedTickBehavior;
use view::{Heard, NodeView};
use vote_store::VoteStore;

type Shared = Arc<Mutex<NodeView>>;

fn lock(view: &Shared) -> MutexGuard<'_, NodeView> {
    // A panic elsewhere must not take the queryables down with it.
    view.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A congested link must not hold up a stop.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a relayed query waits for the members (docs/protocol.md#first-answer): well inside
/// zenoh's default query timeout (10 s), so a member cut off but not yet timed out by its lease
/// delays the answer by this much, not by the querier's whole timeout.
const RELAY_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the cumulative energy total is written: rarely, to spare SD cards.
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// How often the task service hears the voter set (leadership changes reach it at once).
const TASKS_EVERY: Duration = Duration::from_secs(1);

/// The longest the election goes without a tick when it has no timer running.
const ELECTION_IDLE_TICK: Duration = Duration::from_secs(1);

pub async fn run(config: Config, id: NodeId) -> anyhow::Result<()> {
    // Installed before anything slow (opening the session can take seconds in client mode),
    // so a stop request is never met by the default action of killing the process.
    let mut stop = Box::pin(shutdown_signal()?);
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let state_dir = config
        .node
        .state_dir
        .clone()
        .unwrap_or_else(|| default_state_dir(&id));
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating state directory {}", state_dir.display()))?;

    // Before the session opens: a damaged vote record must stop the node before it can vote.
    let vote_store = VoteStore::open(&state_dir)?;
    let admission = swarm_node::admission::Admission::new(
        id.clone(),
        vote_store.loaded().term,
        config.limits.max_members,
    );
    let mut sampler = new_sampler(&config.energy, &state_dir);
    let now = Instant::now();
    let view: Shared = Arc::new(Mutex::new(NodeView::new(
        id.clone(),
        config.node.class,
        config.consensus.heartbeat_interval_ms,
        now,
    )));
    lock(&view).energy = Some(sampler.sample(now));

    let session = bus::open(&config.zenoh).await?;
    let drops = DropCounters::default();
    let mut gate = gate::Gate::new(admission, drops.clone());

    let gco2_per_kwh = config.energy.carbon_intensity_gco2_kwh;
    let _queryables = (
        bus::serve(&session, keys.energy(&id), {
            let view = view.clone();
            move || lock(&view).energy.clone()
        })
        .await?,
        bus::serve(&session, keys.state(&id), {
            let (view, drops) = (view.clone(), drops.clone());
            move || {
                let mut v = lock(&view);
                v.dropped = drops.total();
                Some(v.state(Instant::now()))
            }
        })
        .await?,
        bus::serve(&session, keys.leader(), {
            let view = view.clone();
            move || {
                let v = lock(&view);
                v.answers_for_swarm.then(|| v.leader_info())
            }
        })
        .await?,
        bus::serve(&session, keys.swarm_energy(), {
            let view = view.clone();
            move || lock(&view).swarm_energy(unix_ms(), gco2_per_kwh)
        })
        .await?,
    );

    // A querier linked to this node alone still gets every member's answer on its first try.
    // Not with TLS: the roster lets a node reply on its own keys only, so a relayed reply would
    // be dropped by whoever enforces it (docs/protocol.md#first-answer).
    let _relay = match config.zenoh.tls_dir {
        None => Some(bus::relay(&session, drops.clone(), RELAY_TIMEOUT).await?),
        Some(_) => None,
    };

    let mut heartbeats = HeartbeatFeed::new(&session, &keys, drops.clone()).await?;
    // A leader of a large swarm announces itself here; its followers hear no other heartbeat.
    let announcements =
        bus::subscribe_swarm_level::<LeaderInfo>(&session, keys.leader(), drops.clone(), |info| {
            info.node.clone()
        })
        .await?;
    let announcer = TypedPublisher::<LeaderInfo>::declare(&session, keys.leader(), false).await?;
    let mut announce_tick = tokio::time::interval(swarm_node::scale::ANNOUNCE_EVERY);
    let leaves = bus::subscribe::<Leave>(&session, keys.all(Leaf::Leave), drops.clone()).await?;
    // Only the leader gathers peers' energy (docs/protocol.md#scale): a follower does not
    // subscribe, so zenoh does not send it samples it has no use for.
    let mut energies: Option<TypedSubscriber<Energy>> = None;
    // Requests from every candidate; replies only those addressed to this node.
    let votes = bus::subscribe::<Vote>(&session, keys.all(Leaf::Vote), drops.clone()).await?;
    let replies =
        bus::subscribe::<Vote>(&session, keys.vote_replies_to(&id), drops.clone()).await?;
    let commands = bus::subscribe::<swarm_bus::Command>(
        &session,
        keys.node_leaf(&id, Leaf::Cmd),
        drops.clone(),
    )
    .await?;
    let members = bus::watch_members(&session, &keys).await?;
    let hb_pub = TypedPublisher::<Heartbeat>::declare(&session, keys.heartbeat(&id), false).await?;
    // Periodic and superseded by the next sample: dropped under congestion rather than
    // stalling this loop (and with it heartbeats and signal handling).
    let energy_pub = TypedPublisher::<Energy>::declare(&session, keys.energy(&id), false).await?;
    let swarm_energy_pub =
        TypedPublisher::<SwarmEnergy>::declare(&session, keys.swarm_energy(), false).await?;
    let mut consensus = Consensus::start(
        &session,
        &keys,
        &id,
        config.election_settings(),
        vote_store,
        Instant::now(),
    )
    .await?;
    let low_battery_pct = config.energy.low_power_threshold_percent;
    let token = bus::declare_token(&session, &keys, &id).await?;
    let bridge = if config.bridge.enabled {
        Some(swarm_bridge::run_bridge(session.clone(), keys.swarm().clone(), &config.bridge).await?)
    } else {
        None
    };
    if let Some(feed) = bridge.as_ref().and_then(|b| b.gateway_power.clone()) {
        sampler.measure_with(feed);
    }
    // Who is a member first: only members' answers on who leads count.
    for peer in anti_entropy::members(&session, &keys).await {
        if gate.token_appeared(&peer) {
            lock(&view).joined(peer);
        }
    }
    let infos = consensus::who_leads(&session, &keys).await;
    let infos = infos.into_iter().filter(|i| gate.leader_info(i)).collect();
    if let Some(l) = consensus.learn_leaders(infos).await {
        gate.own_term(l.term);
        log_leadership(&l);
        lock(&view).set_leadership(l.role, l.term, l.leader, unix_ms());
    }
    let task_service = tasks::start(tasks::Context {
        session: session.clone(),
        keys: keys.clone(),
        me: id.clone(),
        settings: config.tasks.clone(),
        view: view.clone(),
        drops: drops.clone(),
        low_battery_pct: config.energy.low_power_threshold_percent,
    })
    .await?;
    let mut props = proposals::declare(&session, &keys, &id, drops.clone()).await?;
    let my_ballot_key = keys.node_leaf(&id, Leaf::Ballot);
    let mut tasks_tick = tokio::time::interval(TASKS_EVERY);
    tasks_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let mut pace = Pace::new(&config, pin_store::load(&state_dir));
    let mut board = board_service::BoardService::start(&config.board)?;
    let _metrics = match config.metrics.listen {
        Some(addr) => {
            let snapshot = metrics_snapshot(
                &view,
                &drops,
                pace.sent_total(),
                &keys,
                gco2_per_kwh,
                board.inputs.clone(),
                bridge.as_ref().map(|b| b.stats.clone()),
            );
            let (bound, task) = crate::metrics::server::serve(addr, snapshot).await?;
            tracing::info!(%bound, "serving Prometheus metrics on /metrics");
            Some(AbortOnDrop(task))
        }
        None => None,
    };
    lock(&view).set_cadence(&pace.decision());
    let (survey_tx, mut surveys) = tokio::sync::mpsc::channel::<anti_entropy::Findings>(1);
    let mut survey_running = false;
    let mut retune_tick = tokio::time::interval(pace::RETUNE_EVERY);
    retune_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut save_tick = tokio::time::interval(SAVE_EVERY);

    tracing::info!(
        id = %id, swarm = %keys.swarm(), class = %config.node.class,
        state_dir = %state_dir.display(), "node running"
    );
    loop {
        // Every branch feeds the election at most one event and then says whether role, term
        // or leader changed; a change is announced with a heartbeat at once.
        // Woken exactly when the election's next timer is due, not on a polling tick.
        let wakeup = consensus
            .next_wakeup()
            .unwrap_or_else(|| Instant::now() + ELECTION_IDLE_TICK);
        // tokio's timer rounds up to the next millisecond: a deadline already due (the first
        // in rank after the leader went) is fed at once instead.
        let due = async {
            if wakeup > Instant::now() {
                tokio::time::sleep_until(wakeup.into()).await;
            }
        };
        let changed: Option<Leadership> = tokio::select! {
            _ = due => {
                consensus.feed(Instant::now(), Event::Tick).await
            }
            _ = pace.heartbeat.tick() => {
                // The tick first: a leader thawed after SIGSTOP steps down before it speaks.
                let changed = consensus.feed(Instant::now(), Event::Tick).await;
                if changed.is_none() {
                    send_heartbeat(&view, &hb_pub, &consensus).await;
                    pace.sent(1);
                }
                changed
            }
            _ = pace.energy.tick() => {
                let sample = sampler.sample(Instant::now());
                let low = is_low_battery(&sample, low_battery_pct);
                pace.battery(&sample);
                lock(&view).energy = Some(sample.clone());
                if let Err(e) = energy_pub.put(&sample).await {
                    tracing::warn!("{e}");
                }
                pace.sent(1);
                let total = lock(&view).swarm_energy(unix_ms(), gco2_per_kwh);
                if let Some(total) = total {
                    if let Err(e) = swarm_energy_pub.put(&total).await {
                        tracing::warn!("{e}");
                    }
                    pace.sent(1);
                }
                consensus.feed(Instant::now(), Event::LowBattery(low)).await
            }
            _ = pace.anti_entropy.tick() => {
                if !survey_running {
                    survey_running = true;
                    let (session, keys, tx) = (session.clone(), keys.clone(), survey_tx.clone());
                    let leads = energies.is_some();
                    tokio::spawn(async move {
                        let found = anti_entropy::survey(session, keys, leads).await;
                        let _ = tx.send(found).await;
                    });
                }
                None
            }
            Some(found) = surveys.recv() => {
                survey_running = false;
                let live = {
                    let mut v = lock(&view);
                    for peer in anti_entropy::missed(v.peers.keys(), &found.members, &id) {
                        if gate.token_appeared(&peer) {
                            tracing::info!(%peer, "anti-entropy: a member this node had missed");
                            v.joined(peer);
                        }
                    }
                    let mut repaired = 0;
                    for (peer, sample) in found.energies {
                        if gate.energy(&peer, &sample) {
                            repaired += usize::from(v.energy_from(&peer, sample));
                        }
                    }
                    if repaired > 0 {
                        tracing::debug!(repaired, "anti-entropy: energy samples filled in");
                    }
                    v.peers.len()
                };
                pace.members(live);
                let leaders = {
                    let v = lock(&view);
                    let current = |i: &LeaderInfo| !v.said_before_leave(&i.node, i.term);
                    found
                        .leaders
                        .into_iter()
                        .filter(|i| gate.leader_info(i) && current(i))
                        .collect()
                };
                consensus.learn_leaders(leaders).await
            }
            _ = retune_tick.tick() => {
                if let Some(d) = pace.retune() {
                    tracing::info!(mode = %d.mode, pinned = d.pinned, heartbeat_ms = d.heartbeat_ms, energy_ms = d.energy_ms, "cadence");
                    lock(&view).set_cadence(&d);
                }
                None
            }
            _ = save_tick.tick() => {
                sampler.save();
                None
            }
            Some(q) = props.calls.recv() => {
                let local = {
                    let v = lock(&view);
                    swarm_node::proposals::Local {
                        battery_pct: v
                            .energy
                            .as_ref()
                            .filter(|e| e.charging != Some(true))
                            .and_then(|e| e.battery_pct),
                        low_battery_pct,
                    }
                };
                proposals::vote(q, &my_ballot_key, local).await;
                None
            }
            Some(q) = props.asks.recv() => {
                // Only the leader answers; anyone else lets the query go unanswered.
                let (leads, term) = {
                    let v = lock(&view);
                    (v.role == swarm_bus::Role::Leader, v.term)
                };
                if leads && let Some(ballot) = props.open(q).await {
                    let voters = consensus.voter_ids();
                    tokio::spawn(proposals::decide(session.clone(), keys.clone(), term, voters, ballot));
                }
                None
            }
            _ = tasks_tick.tick() => {
                task_service.update(task_ctl(&view, &consensus));
                None
            }
            _ = announce_tick.tick() => {
                if consensus.announces(Instant::now()) {
                    announce(&view, &consensus, &announcer).await;
                    pace.sent(1);
                }
                None
            }
            Some(r) = announcements.recv() => {
                if r.from == id
                    || !gate.leader_info(&r.msg)
                    || lock(&view).said_before_leave(&r.from, r.msg.term)
                {
                    None
                } else {
                    consensus.learn_leaders(vec![r.msg]).await
                }
            }
            Some(r) = heartbeats.recv() => {
                let now = Instant::now();
                let heard = if gate.heartbeat(&r) {
                    lock(&view).heard(&r.from, r.msg.clone(), now)
                } else {
                    Heard::Stranger
                };
                if matches!(heard, Heard::BeforeItsLeave | Heard::Stranger) {
                    // Its sender said Leave since (it no longer leads or votes), or it is not
                    // a member this node knows (a newcomer's first heartbeat may beat its token
                    // here; the next one counts).
                    None
                } else {
                    if heard == Heard::First {
                        tracing::info!(peer = %r.from, "first heartbeat from peer");
                    }
                    pace.heartbeat_from(&r.from, r.msg.seq, r.msg.cadence_ms);
                    consensus.feed(now, Event::Heartbeat { from: r.from, hb: r.msg }).await
                }
            }
            Some(r) = first_of(&votes, &replies) => {
                if gate.vote(&r) {
                    let event = match r.msg {
                        Vote::Request(req) => Event::VoteRequest { from: r.from, req },
                        Vote::Reply(reply) => Event::VoteReply { from: r.from, reply },
                    };
                    consensus.feed(Instant::now(), event).await
                } else {
                    None
                }
            }
            Some(r) = leaves.recv() => {
                if gate.leave(&r.from, r.msg.term) {
                    lock(&view).left_cleanly(&r.from, r.msg.term, Instant::now());
                    tracing::info!(peer = %r.from, term = r.msg.term, "peer left cleanly");
                    consensus.feed(Instant::now(), Event::Left(r.from)).await
                } else {
                    None
                }
            }
            Some(r) = next_of(&energies) => {
                if gate.energy(&r.from, &r.msg) {
                    lock(&view).energy_from(&r.from, r.msg);
                }
                None
            }
            Some(r) = commands.recv() => {
                if r.msg.op == swarm_bus::CommandOp::Identify {
                    board.identify(r.msg.arg);
                } else if let Some(d) = obey(&r.msg, &mut pace, &state_dir) {
                    tracing::info!(mode = %d.mode, pinned = d.pinned, heartbeat_ms = d.heartbeat_ms, "cadence set by command");
                    lock(&view).set_cadence(&d);
                }
                None
            }
            Some(event) = members.recv() => match event {
                MemberEvent::Joined(peer) => {
                    let mut v = lock(&view);
                    // A token refused (the member table is full) creates no state anywhere.
                    if (gate.token_appeared(&peer) || gate.is_member(&peer))
                        && v.joined(peer.clone())
                    {
                        tracing::info!(%peer, "peer joined");
                    }
                    pace.members(v.peers.len());
                    None
                }
                MemberEvent::Left(peer) => {
                    gate.token_gone(&peer);
                    let live = {
                        let mut v = lock(&view);
                        if v.gone(&peer) {
                            tracing::info!(%peer, "peer gone (liveliness token withdrawn)");
                        }
                        v.peers.len()
                    };
                    pace.members(live);
                    pace.peer_left(&peer);
                    consensus.feed(Instant::now(), Event::TokenGone(peer)).await
                }
            },
            signal = &mut stop => {
                tracing::info!("{signal}: leaving the swarm");
                break;
            }
        };
        if let Some(l) = changed {
            gate.own_term(l.term);
            log_leadership(&l);
            let leads = l.role == swarm_bus::Role::Leader;
            pace.leader(leads);
            if !leads {
                energies = None;
            } else if energies.is_none() {
                let all = keys.all(Leaf::Energy);
                match bus::subscribe::<Energy>(&session, all, drops.clone()).await {
                    Ok(s) => energies = Some(s),
                    Err(e) => tracing::warn!("leader without peers' energy: {e}"),
                }
                // The survey asks every member's energy now, so the swarm total is whole
                // before the members' next samples come in.
                pace.anti_entropy.reset_immediately();
            }
            lock(&view).set_leadership(l.role, l.term, l.leader, unix_ms());
            // A new leader takes the election's pace before its first heartbeat goes out.
            if let Some(d) = pace.retune() {
                lock(&view).set_cadence(&d);
            }
            task_service.update(task_ctl(&view, &consensus));
            send_heartbeat(&view, &hb_pub, &consensus).await;
            pace.sent(1);
            pace.heartbeat.reset();
            if leads {
                // Whatever the swarm's size: followers of a large one hear only this.
                follow_the_election(&view, &consensus, &mut heartbeats, &session, &keys).await;
                announce(&view, &consensus, &announcer).await;
                pace.sent(1);
                announce_tick.reset();
            }
        }
        follow_the_election(&view, &consensus, &mut heartbeats, &session, &keys).await;
        pace.sent(consensus.take_sent());
    }

    // Handlers still running stop with the node; their tasks go to others with its token.
    drop(task_service);
    consensus.save_voters();
    let (term, led) = {
        let v = lock(&view);
        let led = v.role == swarm_bus::Role::Leader && !v.live_peers().is_empty();
        (v.term, led)
    };
    let (leave_key, leave) = (keys.node_leaf(&id, Leaf::Leave), Leave { term });
    let left = match tokio::time::timeout(LEAVE_TIMEOUT, bus::publish(&session, &leave_key, &leave))
        .await
    {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!("{e}");
            false
        }
        Err(_) => {
            tracing::warn!("Leave not sent within {LEAVE_TIMEOUT:?}; peers rely on the token");
            false
        }
    };
    if led && left {
        if handoff::successor_heard(&heartbeats, &announcements, &id, term).await {
            tracing::info!("a successor leads; closing");
        } else {
            tracing::info!(
                "no successor heard within {:?}; closing",
                handoff::HANDOFF_TIMEOUT
            );
        }
    }
    // Devices leave with the node that carried them.
    drop(bridge);
    if let Err(e) = token.undeclare().await {
        tracing::warn!("undeclaring liveliness token: {e}");
    }
    sampler.save();
    // Withdraw interest before closing, so peers stop sending to a session that is going away.
    drop((
        heartbeats,
        announcements,
        announcer,
        leaves,
        energies,
        votes,
        replies,
        commands,
        props,
        consensus,
        members,
        hb_pub,
        energy_pub,
        swarm_energy_pub,
        _queryables,
    ));
    if let Err(e) = session.close().await {
        tracing::warn!("closing zenoh session: {e}");
    }
    tracing::info!(dropped = drops.total(), "stopped");
    Ok(())
}

/// Every change of role, term or leader, in one format: operators and the partition tests
/// read a node's part in the election from these lines.
fn log_leadership(l: &Leadership) {
    tracing::info!(role = %l.role, term = l.term, leader = ?l.leader.as_ref().map(NodeId::as_str), "election");
}

fn task_ctl(view: &Shared, consensus: &Consensus) -> tasks::Ctl {
    let v = lock(view);
    tasks::Ctl {
        leads: v.role == swarm_bus::Role::Leader,
        term: v.term,
        leader: v.leader.clone(),
        voters: consensus.voter_ids(),
    }
}

/// What one scrape of `/metrics` reads: the view, and the bus counters.
#[allow(clippy::too_many_arguments)]
fn metrics_snapshot(
    view: &Shared,
    drops: &DropCounters,
    sent: Arc<std::sync::atomic::AtomicU64>,
    keys: &SwarmKeys,
    gco2_per_kwh: f32,
    inputs: board_service::InputLevels,
    bridge: Option<Arc<swarm_bridge::stats::Stats>>,
) -> impl Fn() -> crate::metrics::exposition::Snapshot + Send + Sync + 'static {
    let (view, drops, swarm) = (view.clone(), drops.clone(), keys.swarm().to_string());
    move || {
        let board_inputs = inputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|(name, level)| Some((*name, (*level)?)))
            .collect();
        let v = lock(&view);
        crate::metrics::exposition::Snapshot {
            swarm: swarm.clone(),
            node: v.id.to_string(),
            energy: v.energy.clone(),
            role: v.role,
            term: v.term,
            cadence_ms: v.cadence_ms,
            cadence_mode: v.cadence_mode,
            members: v.peers.len() + 1,
            received: drops.accepted(),
            sent: sent.load(std::sync::atomic::Ordering::Relaxed),
            dropped: drops.snapshot(),
            total: v.swarm_energy(unix_ms(), gco2_per_kwh),
            board_inputs,
            bridge_dropped: bridge.as_ref().map(|b| b.refusals()).unwrap_or_default(),
        }
    }
}

/// A spawned task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A command on this node's `cmd` key. `set_mode` pins the cadence (255 unpins) and is kept
/// in the state directory; the returned decision is in force at once.
fn obey(
    cmd: &swarm_bus::Command,
    pace: &mut Pace,
    state_dir: &Path,
) -> Option<swarm_node::cadence::Decision> {
    match cmd.op {
        swarm_bus::CommandOp::SetMode => {
            let mode = match cmd.arg {
                swarm_bus::UNPIN_MODE => None,
                n => match u8::try_from(n)
                    .ok()
                    .and_then(swarm_bus::CadenceMode::from_u8)
                {
                    Some(m) => Some(m),
                    None => {
                        tracing::warn!(arg = n, "set_mode refused: no such cadence mode");
                        return None;
                    }
                },
            };
            if let Err(e) = pin_store::save(state_dir, mode) {
                tracing::warn!("keeping the pinned cadence: {e}; it holds until restart");
            }
            pace.pin(mode);
            pace.retune();
            Some(pace.decision())
        }
        op => {
            tracing::warn!(%op, arg = cmd.arg, "command refused: not one a node obeys");
            None
        }
    }
}

/// The next message of either subscription.
async fn first_of<T: swarm_bus::codec::Decode>(
    a: &TypedSubscriber<T>,
    b: &TypedSubscriber<T>,
) -> Option<swarm_bus::zenoh::Received<T>> {
    tokio::select! {
        Some(r) = a.recv() => Some(r),
        Some(r) = b.recv() => Some(r),
        else => None,
    }
}

/// The next message of a subscription this node may not hold; never, when it holds none.
async fn next_of<T: swarm_bus::codec::Decode>(
    sub: &Option<TypedSubscriber<T>>,
) -> Option<swarm_bus::zenoh::Received<T>> {
    match sub {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Subscribes to the heartbeats the election now needs, and answers for the swarm only when
/// it hears everyone (docs/protocol.md#scale).
async fn follow_the_election(
    view: &Shared,
    consensus: &Consensus,
    heartbeats: &mut HeartbeatFeed,
    session: &zenoh::Session,
    keys: &SwarmKeys,
) {
    let now = Instant::now();
    let everyone = consensus.hears_everyone(now);
    let want = Want::from(everyone, consensus.leader(), consensus.me());
    if let Err(e) = heartbeats.follow(session, keys, want).await {
        tracing::warn!("{e}");
    }
    let mut v = lock(view);
    v.answers_for_swarm = everyone;
    v.voters = consensus.announced_voters(now);
}

async fn announce(view: &Shared, consensus: &Consensus, publisher: &TypedPublisher<LeaderInfo>) {
    let mut info = lock(view).leader_info();
    info.heir = consensus.heir(Instant::now());
    if let Err(e) = publisher.put(&info).await {
        tracing::warn!("{e}");
    }
}

async fn send_heartbeat(
    view: &Shared,
    publisher: &TypedPublisher<Heartbeat>,
    consensus: &Consensus,
) {
    let voters = consensus.announced_voters(Instant::now());
    let hb = lock(view).next_heartbeat(unix_ms(), voters);
    if let Err(e) = publisher.put(&hb).await {
        tracing::warn!("{e}");
    }
}

/// On battery (not charging) and below the threshold: this node should not lead while a
/// better candidate is around.
fn is_low_battery(sample: &Energy, threshold_pct: u8) -> bool {
    sample.charging != Some(true) && sample.battery_pct.is_some_and(|p| p < threshold_pct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_battery_means_on_battery_below_the_threshold() {
        let sample = |pct: Option<u8>, charging: Option<bool>| Energy {
            battery_pct: pct,
            charging,
            ..swarm_bus::samples::energy()
        };
        assert!(is_low_battery(&sample(Some(15), Some(false)), 20));
        assert!(is_low_battery(&sample(Some(15), None), 20));
        assert!(
            !is_low_battery(&sample(Some(15), Some(true)), 20),
            "charging"
        );
        assert!(!is_low_battery(&sample(Some(20), Some(false)), 20));
        assert!(
            !is_low_battery(&sample(None, None), 20),
            "mains, no battery"
        );
    }
}
