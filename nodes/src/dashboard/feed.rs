//! The bus side of the dashboards: an observer session (no token of its own, never a voter)
//! subscribed to heartbeats, energy, leaves and member liveliness, turning each into a model
//! `Input`; the session's own links; and the `state` queries and roll calls the model asks
//! for, answered in the background.

use super::link;
use super::model::Input;
use crate::config::Config;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use swarm_bus::zenoh::{self as bus, DropCounters, MemberEvent, MemberWatch, TypedSubscriber};
use swarm_bus::{Energy, Heartbeat, Leaf, Leave, NodeId, NodeState, SwarmKey, SwarmKeys};
use tokio::sync::{Semaphore, mpsc};

/// A board started with its node (a boot script, a test) waits this long for it to listen.
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// How long a `state` query waits for answers.
const STATE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Per-node state queries in flight at once.
const STATE_QUERIES: usize = 8;
/// More nodes than this wanted at once (a start, a healed partition): one query for all.
const STATE_BATCH: usize = 16;

pub struct Feed {
    session: zenoh::Session,
    keys: SwarmKeys,
    heartbeats: TypedSubscriber<Heartbeat>,
    energy: TypedSubscriber<Energy>,
    leaves: TypedSubscriber<Leave>,
    members: MemberWatch,
    drops: DropCounters,
    states_tx: mpsc::Sender<(NodeId, NodeState)>,
    states: mpsc::Receiver<(NodeId, NodeState)>,
    roll_calls_tx: mpsc::Sender<(u64, BTreeSet<NodeId>)>,
    roll_calls: mpsc::Receiver<(u64, BTreeSet<NodeId>)>,
    past: mpsc::Receiver<(NodeId, Vec<(u64, f32)>)>,
    _asking_past: AbortOnDrop,
    permits: Arc<Semaphore>,
    asking_all: Arc<AtomicBool>,
    /// Where members listed after the first question about the past get their own answer.
    past_tx: mpsc::Sender<(NodeId, Vec<(u64, f32)>)>,
    opened: std::time::Instant,
}

impl Feed {
    pub async fn open(config: &Config) -> anyhow::Result<Feed> {
        let keys = SwarmKeys::new(config.node.swarm.clone());
        let session = bus::open_observer_waiting(&config.zenoh, CONNECT_WAIT).await?;
        let drops = DropCounters::default();
        let heartbeats = bus::subscribe(&session, keys.all(Leaf::Heartbeat), drops.clone()).await?;
        let energy = bus::subscribe(&session, keys.all(Leaf::Energy), drops.clone()).await?;
        let leaves = bus::subscribe(&session, keys.all(Leaf::Leave), drops.clone()).await?;
        let members = bus::watch_members(&session, &keys).await?;
        let (states_tx, states) = mpsc::channel(1024);
        // One roll call is due at a time; a few more only if the link flaps.
        let (roll_calls_tx, roll_calls) = mpsc::channel(4);
        let (past_tx, past) = mpsc::channel(64);
        let asking_past = AbortOnDrop(tokio::spawn(ask_past(
            session.clone(),
            keys.clone(),
            past_tx.clone(),
        )));
        Ok(Feed {
            session,
            keys,
            heartbeats,
            energy,
            leaves,
            members,
            drops,
            states_tx,
            states,
            roll_calls_tx,
            roll_calls,
            past,
            past_tx,
            opened: std::time::Instant::now(),
            _asking_past: asking_past,
            permits: Arc::new(Semaphore::new(STATE_QUERIES)),
            asking_all: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The next thing that happened; `None` once the session is closed. Cancel-safe, like the
    /// receivers it waits on, so it can sit in a `select!`.
    pub async fn next(&mut self) -> Option<Input> {
        tokio::select! {
            Some(r) = self.heartbeats.recv() => Some(Input::Heartbeat(r.from, r.msg)),
            Some((r, late)) = self.energy.recv_marked() => Some(if late {
                // A board's reading replayed after an outage: history, placed by its time.
                Input::Past(r.from, vec![(r.msg.ts_ms, r.msg.watts)])
            } else {
                Input::Energy(r.from, r.msg)
            }),
            Some(r) = self.leaves.recv() => Some(Input::Leave(r.from, r.msg)),
            Some(m) = self.members.recv() => Some(match m {
                MemberEvent::Joined(id) => {
                    self.ask_past_of(&id);
                    Input::Joined(id)
                }
                MemberEvent::Left(id) => Input::TokenGone(id),
            }),
            Some((id, s)) = self.states.recv() => Some(Input::State(id, s)),
            Some((epoch, ids)) = self.roll_calls.recv() => Some(Input::RollCall(epoch, ids)),
            Some((id, past)) = self.past.recv() => Some(Input::Past(id, past)),
            else => None,
        }
    }

    /// The nodes this session has a link to now.
    pub async fn links(&self) -> BTreeSet<String> {
        link::links(&self.session).await
    }

    /// Asks the swarm which of `asked` are there; the answer comes out of `next`.
    pub fn roll_call(&self, epoch: u64, asked: BTreeSet<NodeId>) {
        let (session, keys, tx) = (
            self.session.clone(),
            self.keys.clone(),
            self.roll_calls_tx.clone(),
        );
        tokio::spawn(async move {
            // No answer (the query failed) is asked again when `Contact` says so.
            if let Some(present) = link::roll_call(&session, &keys, &asked).await {
                let _ = tx.send((epoch, present)).await;
            }
        });
    }

    /// Undecodable messages and bad keys dropped so far.
    pub fn dropped(&self) -> u64 {
        self.drops.total()
    }

    /// Asks these nodes for their state; the answers come out of `next`.
    pub fn ask_states(&self, ids: Vec<NodeId>) {
        if ids.len() > STATE_BATCH {
            self.ask_all_states();
            return;
        }
        for id in ids {
            let key = self.keys.state(&id);
            let (session, tx, permits) = (
                self.session.clone(),
                self.states_tx.clone(),
                self.permits.clone(),
            );
            tokio::spawn(async move {
                let Ok(_permit) = permits.acquire().await else {
                    return;
                };
                answer(&session, &key, &tx).await;
            });
        }
    }

    /// Asks every node for its state, unless such a query is still out.
    pub fn ask_all_states(&self) {
        if self.asking_all.swap(true, Ordering::AcqRel) {
            return;
        }
        let key = self.keys.all(Leaf::State);
        let (session, tx, busy) = (
            self.session.clone(),
            self.states_tx.clone(),
            self.asking_all.clone(),
        );
        tokio::spawn(async move {
            answer(&session, &key, &tx).await;
            busy.store(false, Ordering::Release);
        });
    }

    pub async fn close(self) {
        let _ = self.session.close().await;
    }
}

/// Sends each well-formed answer on; bad ones only cost the mode column a "-".
async fn answer(session: &zenoh::Session, key: &str, tx: &mpsc::Sender<(NodeId, NodeState)>) {
    let Ok(replies) = bus::query_cbor::<NodeState>(session, key, STATE_TIMEOUT).await else {
        return;
    };
    for reply in replies {
        if let (Some(id), Ok(state)) = (SwarmKey::node_of(&reply.key), reply.msg)
            && tx.send((id, state)).await.is_err()
        {
            return;
        }
    }
}

impl Feed {
    /// A member that joins after the first question about the past (`ask_past`) is asked for
    /// its own, so its sparkline starts filled too. Best effort: only with a state query's
    /// permit free, so a flood of joins asks nothing more.
    fn ask_past_of(&self, id: &NodeId) {
        if self.opened.elapsed() < PAST_FIRST_ASKED {
            return;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return;
        };
        let (session, key, out) = (
            self.session.clone(),
            self.keys.energy(id),
            self.past_tx.clone(),
        );
        tokio::spawn(async move {
            let _permit = permit;
            pass_on_past(&session, &key, &out).await;
        });
    }
}

/// When the first question about every member's past goes out: once the members are listed.
const PAST_FIRST_ASKED: Duration = Duration::from_millis(1500);

/// How far back the sparklines are filled from: a screen's width of samples at the default
/// cadence.
const PAST_S: u64 = 600;

/// Once the members are listed, their recent samples from the gateway's history (none if no
/// gateway keeps it: the sparklines then fill as samples arrive).
async fn ask_past(
    session: zenoh::Session,
    keys: SwarmKeys,
    out: mpsc::Sender<(NodeId, Vec<(u64, f32)>)>,
) {
    tokio::time::sleep(PAST_FIRST_ASKED).await;
    pass_on_past(&session, &keys.all(Leaf::Energy), &out).await;
}

/// The last `PAST_S` of samples of the members `key_expr` names, from the gateway's history,
/// to the model.
async fn pass_on_past(
    session: &zenoh::Session,
    key_expr: &str,
    out: &mpsc::Sender<(NodeId, Vec<(u64, f32)>)>,
) {
    let Ok((by_member, _)) =
        crate::report::energy_history::gather_of(session, key_expr, PAST_S, STATE_TIMEOUT).await
    else {
        return;
    };
    for (id, samples) in by_member {
        let watts = samples.iter().map(|e| (e.ts_ms, e.watts)).collect();
        if out.send((id, watts)).await.is_err() {
            return;
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
