//! The announcer's IO: liveliness, heartbeats, energy and states from zenoh in; retained
//! configs, availability and JSON states out to the MQTT broker through the bridge's downlink.

use super::announcer::{Announcer, Input, Publish, Refusal};
use super::sampling::{MemberSampling, Verdict};
use super::settings::HomeAssistantConfig;
use crate::mesh::{Downlink, HomeAssistantWords, unix_ms};
use crate::stats::{Stats, worth_logging};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use swarm_bus::zenoh::{
    Admit, BusError, DropCounters, MemberEvent, query_cbor, subscribe_admitting, watch_members,
};
use swarm_bus::{Energy, Heartbeat, Leaf, NodeState, SwarmKeys};
use tokio::sync::mpsc;
use zenoh::Session;

/// How long a round of `state` queries waits for answers.
const STATE_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts announcing; the task ends when the births close (the bridge's MQTT side is gone).
pub async fn spawn(
    session: Session,
    keys: SwarmKeys,
    settings: HomeAssistantConfig,
    stats: Arc<Stats>,
    out: mpsc::Sender<Downlink>,
    words: HomeAssistantWords,
) -> Result<tokio::task::JoinHandle<()>, BusError> {
    let drops = DropCounters::default();
    let sampling = Arc::new(MemberSampling::new(keys.clone(), settings.max_members));
    let members = watch_members(&session, &keys).await?;
    let energy = subscribe_admitting::<Energy>(
        &session,
        keys.all(Leaf::Energy),
        drops.clone(),
        admit(&sampling, &stats),
    )
    .await?;
    let heartbeats = subscribe_admitting::<Heartbeat>(
        &session,
        keys.all(Leaf::Heartbeat),
        drops.clone(),
        admit(&sampling, &stats),
    )
    .await?;
    let (states_tx, mut states) = mpsc::channel(256);
    let poll = tokio::spawn(poll_states(
        session.clone(),
        keys.clone(),
        Duration::from_secs(settings.state_every_s),
        states_tx,
    ));
    let mut announcer = Announcer::new(
        keys.clone(),
        settings.prefix.clone(),
        settings.max_members,
        settings.forget_after_s.saturating_mul(1000),
    );
    let gateway = Publish {
        topic: keys.ha_gateway_availability(),
        payload: "online".into(),
        retain: true,
    };
    let HomeAssistantWords {
        mut births,
        mut remembered,
    } = words;
    Ok(tokio::spawn(async move {
        let _poll = AbortOnDrop(poll);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        if !send(&out, &stats, vec![gateway.clone()]).await {
            return;
        }
        loop {
            let input = tokio::select! {
                m = members.recv() => match m {
                    Some(MemberEvent::Joined(id)) => {
                        sampling.joined(&id);
                        Input::Joined(id)
                    }
                    Some(MemberEvent::Left(id)) => {
                        sampling.left(&id);
                        Input::Left(id)
                    }
                    None => return,
                },
                Some(e) = energy.recv() => Input::Energy(e.from, e.msg),
                Some(h) = heartbeats.recv() => Input::Heartbeat(h.from, h.msg),
                Some((id, s)) = states.recv() => Input::State(id, s),
                b = births.recv() => match b {
                    Some(()) => {
                        stats.ha_births.fetch_add(1, Relaxed);
                        Input::Birth
                    }
                    None => return,
                },
                Some(id) = remembered.recv() => Input::Remembered(id),
                _ = tick.tick() => Input::Tick,
            };
            let is_tick = input == Input::Tick;
            let mut publish = announcer.handle(unix_ms(), input);
            // A re-announce after a birth starts with the gateway itself.
            if is_tick && !publish.is_empty() {
                publish.insert(0, gateway.clone());
            }
            for refusal in announcer.take_refusals() {
                let reason = match refusal {
                    Refusal::NotMember => "ha_not_member",
                    Refusal::Full => "ha_full",
                    Refusal::BadValue => "ha_bad_value",
                };
                let n = stats.count_refusal(reason);
                if worth_logging(n) {
                    tracing::debug!(reason, count = n, "Home Assistant: input refused");
                }
            }
            if !send(&out, &stats, publish).await {
                return;
            }
        }
    }))
}

/// The link's judge of each energy and heartbeat sample, in zenoh's callback: members' only,
/// thinned to one a second per key, each refusal counted.
fn admit(sampling: &Arc<MemberSampling>, stats: &Arc<Stats>) -> Admit {
    let (sampling, stats) = (sampling.clone(), stats.clone());
    Box::new(move |key| match sampling.judge(key, Instant::now()) {
        Verdict::Take => true,
        Verdict::NotMember => {
            let n = stats.count_refusal("ha_not_member");
            if worth_logging(n) {
                tracing::debug!(key, count = n, "Home Assistant: a reading from no member");
            }
            false
        }
        Verdict::Thinned => {
            stats.ha_thinned.fetch_add(1, Relaxed);
            false
        }
    })
}

async fn send(out: &mpsc::Sender<Downlink>, stats: &Stats, publish: Vec<Publish>) -> bool {
    for p in publish {
        let down = Downlink {
            topic: p.topic,
            payload: p.payload.into_bytes(),
            retain: p.retain,
        };
        if out.send(down).await.is_err() {
            return false;
        }
        stats.ha_published.fetch_add(1, Relaxed);
    }
    true
}

/// Asks every member's `state` now and then: the cadence mode and version are in no stream.
async fn poll_states(
    session: Session,
    keys: SwarmKeys,
    every: Duration,
    out: mpsc::Sender<(swarm_bus::NodeId, NodeState)>,
) {
    let selector = keys.all(Leaf::State);
    // The first round waits for the members' tokens to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    loop {
        match query_cbor::<NodeState>(&session, &selector, STATE_TIMEOUT).await {
            Ok(replies) => {
                for reply in replies {
                    let id = reply
                        .key
                        .parse::<swarm_bus::SwarmKey>()
                        .ok()
                        .and_then(|k| k.node_id().cloned());
                    if let (Some(id), Ok(state)) = (id, reply.msg)
                        && out.send((id, state)).await.is_err()
                    {
                        return;
                    }
                }
            }
            Err(e) => tracing::debug!("Home Assistant: asking for states: {e}"),
        }
        tokio::time::sleep(every).await;
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
