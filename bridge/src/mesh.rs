//! The zenoh side of the bridge: device samples go out, device liveliness tokens are declared
//! for them, queries on device keys are answered from the last-value cache, and commands for
//! devices come back in.

use crate::ingest::{Format, Inbound, Ingest, Refusal, Telemetry};
use crate::stats::{Stats, worth_logging};
use crate::table::{DeviceTable, Held, MAX_HELD, PresenceChange};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use swarm_bus::json::to_json;
use swarm_bus::zenoh::{BusError, ReplyFormat, declare_token};
use swarm_bus::{Leaf, NodeId, Presence, SwarmKey, SwarmKeys, WireMessage, encode};
use tokio::sync::mpsc;
use zenoh::Session;
use zenoh::Wait;
use zenoh::bytes::Encoding;
use zenoh::key_expr::{KeyExpr, OwnedKeyExpr};
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;
use zenoh::query::{Query, Queryable};
use zenoh::sample::SampleKind;
use zenoh::time::Timestamp;

/// Publishers are kept per key so each sample skips key resolution; past this many keys the
/// bridge publishes without declaring, so a device inventing keys cannot grow memory.
const MAX_DECLARED_PUBLISHERS: usize = 20_000;
/// Retained availabilities read back at once by a restarted gateway, waiting for the
/// announcer; it takes at most `homeassistant.max_members` of them anyway.
const REMEMBERED_QUEUE: usize = 1024;

/// What follows a publication handed to the uplink.
///
/// zenoh batches small messages, and when its sender finds a batch still being written it
/// backs off on a tokio timer, whose 1 ms resolution showed up as +1 ms on 1–2 % of samples at
/// 1,000 msg/s. Marking the last publication in hand as express ships the batch at once; under
/// a flood, when more are in hand, messages still share batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// More publications are already waiting: let zenoh batch this one with them.
    More,
    /// Nothing else is in hand: send the batch now.
    Idle,
}

/// The device table's bounds (`bridge.max_devices`, `bridge.forget_offline_after_s`).
#[derive(Debug, Clone, Copy)]
pub struct TableLimits {
    pub max_devices: usize,
    pub forget_offline_after_s: u64,
}

/// A command for a device, on its way to MQTT.
#[derive(Debug, Clone, PartialEq)]
pub struct Downlink {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Kept by the broker for later subscribers (Home Assistant's discovery configs).
    pub retain: bool,
}

pub use swarm_bus::clock::unix_ms;

pub(crate) fn lock(table: &Mutex<DeviceTable>) -> MutexGuard<'_, DeviceTable> {
    // A panic elsewhere cannot leave the table half-written: every update is one assignment.
    table.lock().unwrap_or_else(|p| p.into_inner())
}

/// The uplink half; owned by the one task that reads from MQTT.
pub struct Uplink {
    session: Session,
    ingest: Ingest,
    table: Arc<Mutex<DeviceTable>>,
    stats: Arc<Stats>,
    tokens: HashMap<NodeId, LivelinessToken>,
    publishers: HashMap<OwnedKeyExpr, Publisher<'static>>,
    /// Commands held for a sleeping board go down this way when it wakes.
    downlink: mpsc::Sender<Downlink>,
    /// Home Assistant's side: where its births and what an earlier run retained go.
    home_assistant: Option<HomeAssistantSide>,
}

/// What the uplink passes to Home Assistant's announcer.
struct HomeAssistantSide {
    /// Home Assistant's status topic; its `online` births go down `births`.
    status_topic: String,
    births: mpsc::Sender<()>,
    /// Members whose availability an earlier run retained on the broker.
    remembered: mpsc::Sender<NodeId>,
}

/// What Home Assistant's announcer hears from the MQTT side.
pub struct HomeAssistantWords {
    /// Home Assistant said `online`: one pending at most, so a flood of births is one
    /// re-announce.
    pub births: mpsc::Receiver<()>,
    /// A member's availability retained by an earlier run of this gateway.
    pub remembered: mpsc::Receiver<NodeId>,
}

/// Declarations that live as long as the bridge.
pub struct MeshHandles {
    _cache: Queryable<()>,
    _commands: zenoh::pubsub::Subscriber<()>,
    _updates: zenoh::pubsub::Subscriber<()>,
    _members: zenoh::pubsub::Subscriber<()>,
    time: tokio::task::JoinHandle<()>,
}

impl Drop for MeshHandles {
    fn drop(&mut self) {
        self.time.abort();
    }
}

/// `peripherals`: devices on the bridge's own serial and I2C ports; their commands do not go
/// to MQTT (a serial port takes its own from zenoh).
pub async fn start(
    session: Session,
    ingest: Ingest,
    stats: Arc<Stats>,
    peripherals: Vec<NodeId>,
    limits: TableLimits,
) -> Result<
    (
        Uplink,
        mpsc::Receiver<Downlink>,
        MeshHandles,
        Arc<Mutex<DeviceTable>>,
    ),
    BusError,
> {
    let table = Arc::new(Mutex::new(DeviceTable::bounded(
        concat!("swarm-bridge ", env!("CARGO_PKG_VERSION")),
        limits.max_devices,
        limits.forget_offline_after_s.saturating_mul(1000),
    )));
    let keys = ingest.keys().clone();
    let members = crate::taken::watch(&session, &keys, table.clone()).await?;
    let cache = serve_cache(&session, &keys, table.clone()).await?;
    let (tx, rx) = mpsc::channel(1024);
    let time = crate::board_time::start(
        session.clone(),
        keys.clone(),
        table.clone(),
        peripherals.clone(),
    );
    let updates = forward_commands(
        &session,
        keys.all(Leaf::Ota),
        table.clone(),
        stats.clone(),
        peripherals.clone(),
        tx.clone(),
    )
    .await?;
    let commands = forward_commands(
        &session,
        keys.all(Leaf::Cmd),
        table.clone(),
        stats.clone(),
        peripherals,
        tx.clone(),
    )
    .await?;
    Ok((
        Uplink {
            session,
            ingest,
            table: table.clone(),
            stats,
            tokens: HashMap::new(),
            publishers: HashMap::new(),
            downlink: tx,
            home_assistant: None,
        },
        rx,
        MeshHandles {
            _cache: cache,
            _commands: commands,
            _updates: updates,
            _members: members,
            time,
        },
        table,
    ))
}

impl Uplink {
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    pub fn keys(&self) -> &SwarmKeys {
        self.ingest.keys()
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Another uplink into the same mesh, table and counters, for a reader of its own (a
    /// serial port) so one source never waits behind another.
    pub fn sibling(&self) -> Uplink {
        Uplink {
            session: self.session.clone(),
            ingest: self.ingest.fresh(),
            table: self.table.clone(),
            stats: self.stats.clone(),
            tokens: HashMap::new(),
            publishers: HashMap::new(),
            downlink: self.downlink.clone(),
            home_assistant: None,
        }
    }

    /// Home Assistant's side of this uplink: its births on `status_topic` and the members an
    /// earlier run retained come out of the receivers, and what it announces goes down the
    /// sender.
    pub fn home_assistant(
        &mut self,
        status_topic: String,
    ) -> (mpsc::Sender<Downlink>, HomeAssistantWords) {
        let (births, births_rx) = mpsc::channel(1);
        let (remembered, remembered_rx) = mpsc::channel(REMEMBERED_QUEUE);
        self.home_assistant = Some(HomeAssistantSide {
            status_topic,
            births,
            remembered,
        });
        let words = HomeAssistantWords {
            births: births_rx,
            remembered: remembered_rx,
        };
        (self.downlink.clone(), words)
    }

    /// A message on a member's Home Assistant availability topic (the bridge's own, coming
    /// back from an external broker): a retained one, sent as the bridge subscribed, is what
    /// an earlier run left there and goes to the announcer. Returns whether `topic` was one;
    /// those are never carried into the mesh.
    pub fn ha_availability_seen(&self, topic: &str, retained: bool) -> bool {
        let Some(ha) = &self.home_assistant else {
            return false;
        };
        let keys = self.ingest.keys();
        if topic == keys.ha_gateway_availability() {
            return true; // its own, under the same filter
        }
        let Some(id) = keys.ha_availability_of(topic) else {
            return false;
        };
        if retained && ha.remembered.try_send(id).is_err() {
            self.stats.count_refusal("ha_remembered_full");
        }
        true
    }

    /// Whether the bridge has this device online now.
    pub fn is_online(&self, id: &NodeId) -> bool {
        lock(&self.table).get(id).is_some_and(|r| r.online)
    }

    /// A frame or message from a peripheral that never became a sample: counted for the
    /// device and in `kind`'s counter, logged sparingly.
    pub fn refuse_from(&self, id: &NodeId, kind: &'static str, why: &dyn std::fmt::Display) {
        self.stats.count_refusal(kind);
        let n = lock(&self.table).count_drop(id, unix_ms());
        if worth_logging(n) {
            tracing::warn!(device = %id, reason = kind, count = n, "dropped a device frame: {why}");
        }
    }

    /// Carries one MQTT publication into the mesh and sends it on at once. Returns once zenoh
    /// has taken it (with blocking congestion control), so a caller that acknowledges
    /// afterwards loses nothing.
    pub async fn carry(&mut self, topic: &str, payload: Bytes) -> bool {
        self.carry_then(topic, payload, Next::Idle).await
    }

    /// As `carry`, told whether the caller already holds more publications to carry.
    pub async fn carry_then(&mut self, topic: &str, payload: Bytes, next: Next) -> bool {
        if let Some(ha) = &self.home_assistant
            && topic == ha.status_topic
        {
            if payload.as_ref() == b"online" {
                let _ = ha.births.try_send(());
            }
            return false;
        }
        let now = unix_ms();
        match self.ingest.classify(topic, &payload) {
            Ok(Inbound::Command) => false,
            Ok(Inbound::Presence { id, presence }) => {
                let change = {
                    let mut table = lock(&self.table);
                    if presence != Presence::Offline && table.taken.contains(&id) {
                        drop(table);
                        self.id_taken(&id, topic);
                        return false;
                    }
                    match presence {
                        Presence::Online => table.set_online(&id, true, now),
                        Presence::Offline => table.set_online(&id, false, now),
                        Presence::Asleep { secs } => {
                            let until = now.saturating_add(u64::from(secs) * 1000);
                            table.set_asleep(&id, until, now)
                        }
                    }
                };
                match change {
                    Ok(Some(change)) => self.apply(change).await,
                    Ok(None) => {}
                    Err(full) => {
                        self.table_full(&id, &full);
                        return false;
                    }
                }
                match presence {
                    Presence::Online => self.deliver_held(&id),
                    Presence::Asleep { secs } => {
                        tracing::info!(device = %id, secs, "device asleep");
                    }
                    Presence::Offline => {}
                }
                true
            }
            Ok(Inbound::Telemetry {
                id,
                key,
                format,
                msg,
            }) => {
                if let Telemetry::Replay(e) = &msg
                    && let Err(why) = replay_in_time(e.ts_ms, now)
                {
                    self.refuse_from(&id, "bad_replay", &why);
                    return false;
                }
                let recorded = {
                    let mut table = lock(&self.table);
                    if table.taken.contains(&id) {
                        drop(table);
                        self.id_taken(&id, topic);
                        return false;
                    }
                    table.record(&id, format, &msg, now)
                };
                if let Err(full) = recorded {
                    self.table_full(&id, &full);
                    return false;
                }
                if let Telemetry::Leave(_) = msg {
                    // A device saying goodbye is gone at once, whatever its status topic says.
                    let change = lock(&self.table).set_online(&id, false, now);
                    if let Ok(Some(change)) = change {
                        self.apply(change).await;
                    }
                }
                if let Telemetry::Replay(e) = &msg {
                    return self.put_replayed(key, payload, format, e.ts_ms).await;
                }
                self.put(key, payload, format, next).await
            }
            Err(refusal) => {
                let n = self.stats.count_refusal(refusal.kind());
                let per_device = refusal
                    .device()
                    .map(|d| lock(&self.table).count_drop(d, now));
                // Out of scope is the operator's choice, not the device's fault: counted only.
                let quiet = refusal == Refusal::OutOfScope;
                if !quiet && worth_logging(per_device.unwrap_or(n)) {
                    match refusal.device() {
                        Some(device) => tracing::warn!(
                            %device, topic, reason = refusal.kind(), count = per_device,
                            "dropped a device message: {refusal}"
                        ),
                        None => tracing::warn!(
                            topic,
                            reason = refusal.kind(),
                            count = n,
                            "dropped an MQTT message: {refusal}"
                        ),
                    }
                }
                false
            }
        }
    }

    /// A client under an id whose token is not this bridge's: counted and logged sparingly.
    fn id_taken(&self, id: &NodeId, topic: &str) {
        let n = self.stats.count_refusal("id_taken");
        if worth_logging(n) {
            tracing::warn!(
                device = %id, topic, reason = "id_taken", count = n,
                "dropped a device message: a node of the swarm holds this id"
            );
        }
    }

    /// A device the table has no room for: counted and logged sparingly, nothing stored.
    fn table_full(&self, id: &NodeId, full: &crate::table::TableFull) {
        let n = self.stats.count_refusal("devices_full");
        if worth_logging(n) {
            tracing::warn!(device = %id, reason = "devices_full", count = n, "dropped a device message: {full}");
        }
    }

    async fn put(&mut self, key: OwnedKeyExpr, payload: Bytes, format: Format, next: Next) -> bool {
        let encoding = encoding_of(format);
        if !self.publishers.contains_key(&key) && self.publishers.len() < MAX_DECLARED_PUBLISHERS {
            // Declared, the key is a resource in the session's routing tables, which keep its
            // route: undeclared, zenoh matched it against every subscription for each sample
            // (a fifth of a flooded bridge's CPU).
            let declared = match self.session.declare_keyexpr(key.clone()).await {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(%key, "declaring a key expression failed: {e}");
                    key.clone().into()
                }
            };
            match self
                .session
                .declare_publisher(declared)
                .encoding(encoding.clone())
                .congestion_control(CongestionControl::Block)
                .await
            {
                Ok(p) => {
                    self.publishers.insert(key.clone(), p);
                }
                Err(e) => tracing::warn!(%key, "declaring a publisher failed: {e}"),
            }
        }
        // Express is fixed when a publisher is declared, so the sample that ships the batch
        // goes through the session; both paths share one queue, so order holds.
        let batched = self.publishers.get(&key).filter(|_| next == Next::More);
        let result = match batched {
            // Same key, same device, same format: the declared encoding stays right.
            Some(p) => p.put(payload).encoding(encoding).await,
            None => {
                let declared: KeyExpr<'static> = match self.publishers.get(&key) {
                    Some(p) => p.key_expr().clone(),
                    None => key.clone().into(),
                };
                self.session
                    .put(declared, payload)
                    .encoding(encoding)
                    .congestion_control(CongestionControl::Block)
                    .express(next == Next::Idle)
                    .await
            }
        };
        match result {
            Ok(()) => {
                self.stats
                    .forwarded
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::warn!(%key, "publishing into zenoh failed: {e}");
                false
            }
        }
    }

    /// A reading sent late goes on the board's `energy` key at the time it was taken (the
    /// sample's zenoh timestamp, so storages place it in history) and marked as replayed, so
    /// live readers leave their current value alone (`swarm_bus::zenoh::is_replayed`).
    async fn put_replayed(
        &mut self,
        key: OwnedKeyExpr,
        payload: Bytes,
        format: Format,
        ts_ms: u64,
    ) -> bool {
        let encoding = encoding_of(format);
        let own = self.session.new_timestamp();
        let at = Timestamp::new(Duration::from_millis(ts_ms).into(), *own.get_id());
        let result = self
            .session
            .put(key.clone(), payload)
            .encoding(encoding)
            .timestamp(at)
            .attachment(swarm_bus::zenoh::REPLAYED)
            .congestion_control(CongestionControl::Block)
            .await;
        match result {
            Ok(()) => {
                self.stats
                    .replayed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::warn!(%key, "publishing a replayed reading into zenoh failed: {e}");
                false
            }
        }
    }

    pub async fn apply(&mut self, change: PresenceChange) {
        let keys = self.ingest.keys();
        match change {
            PresenceChange::Online(id) => match declare_token(&self.session, keys, &id).await {
                Ok(token) => {
                    tracing::info!(device = %id, "device online");
                    self.tokens.insert(id, token);
                }
                Err(e) => tracing::warn!(device = %id, "{e}"),
            },
            PresenceChange::Offline(id) => {
                tracing::info!(device = %id, "device offline");
                if let Some(token) = self.tokens.remove(&id)
                    && let Err(e) = token.undeclare().await
                {
                    tracing::debug!(device = %id, "undeclaring token: {e}");
                }
            }
        }
    }

    /// A board awake again gets what came for it while it slept, oldest first. It subscribes
    /// to its commands before it says `online` (the firmware waits for its SUBACK), so none
    /// is sent before it listens.
    fn deliver_held(&self, id: &NodeId) {
        let held = lock(&self.table).take_held(id);
        if held.is_empty() {
            return;
        }
        tracing::info!(device = %id, commands = held.len(), "device awake: delivering held commands");
        for (topic, payload) in held {
            let down = Downlink {
                topic,
                payload,
                retain: false,
            };
            match self.downlink.try_send(down) {
                Ok(()) => {
                    self.stats
                        .commands_down
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(device = %id, "held command dropped: {e}"),
            }
        }
    }

    /// Boards that missed their wake by more than the margin go offline; called every second
    /// by the loop that owns this uplink.
    pub async fn check_sleepers(&mut self) {
        let changes = lock(&self.table).overslept(unix_ms());
        for change in changes {
            if let PresenceChange::Offline(id) = &change {
                tracing::warn!(device = %id, "device missed its wake: offline");
            }
            self.apply(change).await;
        }
    }

    /// The MQTT side lost its broker: nobody can tell us about Last-Wills any more.
    pub async fn broker_lost(&mut self) {
        let changes = lock(&self.table).all_offline();
        for change in changes {
            self.apply(change).await;
        }
    }
}

fn encoding_of(format: Format) -> Encoding {
    match format {
        Format::Cbor => Encoding::APPLICATION_CBOR,
        Format::Json => Encoding::APPLICATION_JSON,
    }
}

/// A replayed reading must carry real time: after the gateways' earliest (2024) and not ahead
/// of this bridge's clock by more than a minute of drift.
fn replay_in_time(ts_ms: u64, now_ms: u64) -> Result<(), String> {
    const EARLIEST_MS: u64 = 1_704_067_200_000;
    const AHEAD_MS: u64 = 60_000;
    if ts_ms < EARLIEST_MS {
        return Err(format!(
            "a replayed reading stamped {ts_ms} ms, before 2024"
        ));
    }
    if ts_ms > now_ms.saturating_add(AHEAD_MS) {
        return Err(format!(
            "a replayed reading stamped {} s ahead of the bridge's clock",
            (ts_ms - now_ms) / 1000
        ));
    }
    Ok(())
}

/// One queryable for every device key: answers from the table, only for devices this bridge
/// carries, so nodes' own keys are left to the nodes.
async fn serve_cache(
    session: &Session,
    keys: &SwarmKeys,
    table: Arc<Mutex<DeviceTable>>,
) -> Result<Queryable<()>, BusError> {
    let key = keys.all_leaves();
    let keys = keys.clone();
    session
        .declare_queryable(key.clone())
        .callback(move |query: Query| answer(&query, &keys, &table))
        .await
        .map_err(|e| BusError {
            context: format!("declaring the device cache on {key}"),
            message: e.to_string(),
        })
}

fn answer(query: &Query, keys: &SwarmKeys, table: &Mutex<DeviceTable>) {
    if swarm_bus::zenoh::asks_history(query) {
        return;
    }
    let format = match ReplyFormat::from_parameter(query.parameters().get("format")) {
        Ok(f) => f,
        Err(reason) => {
            let _ = query.reply_err(reason).wait();
            return;
        }
    };
    let now = unix_ms();
    let replies: Vec<(String, Vec<u8>, Encoding)> = {
        let table = lock(table);
        let ids: Vec<NodeId> = table.online().cloned().collect();
        let mut out = Vec::new();
        for id in ids {
            let record = table.get(&id);
            for leaf in [
                Leaf::Heartbeat,
                Leaf::Energy,
                Leaf::State,
                Leaf::Status,
                Leaf::Firmware,
            ] {
                let key = keys.node_leaf(&id, leaf);
                let Ok(ke) = zenoh::key_expr::KeyExpr::try_from(key.as_str()) else {
                    continue;
                };
                if !query.key_expr().intersects(&ke) {
                    continue;
                }
                let reply = match leaf {
                    Leaf::Heartbeat => record
                        .and_then(|r| r.heartbeat.clone())
                        .map(|m| render(&m, &id, format)),
                    Leaf::Energy => record
                        .and_then(|r| r.energy.clone())
                        .map(|m| render(&m, &id, format)),
                    Leaf::State => table.state(&id, now).map(|m| render(&m, &id, format)),
                    Leaf::Firmware => record
                        .and_then(|r| r.firmware.clone())
                        .map(|m| render(&m, &id, format)),
                    _ if record.is_some_and(|r| r.asleep.is_some()) => {
                        Some((b"\"asleep\"".to_vec(), Encoding::APPLICATION_JSON))
                    }
                    _ => Some((b"\"online\"".to_vec(), Encoding::APPLICATION_JSON)),
                };
                if let Some((bytes, enc)) = reply {
                    out.push((key, bytes, enc));
                }
            }
        }
        out
    };
    for (key, bytes, encoding) in replies {
        if let Err(e) = query.reply(key.clone(), bytes).encoding(encoding).wait() {
            tracing::debug!(%key, "cache reply failed: {e}");
        }
    }
}

fn render<T: WireMessage>(msg: &T, id: &NodeId, format: ReplyFormat) -> (Vec<u8>, Encoding) {
    match format {
        ReplyFormat::Cbor => (encode(msg), Encoding::APPLICATION_CBOR),
        ReplyFormat::Json => (
            to_json(msg, Some(id)).to_string().into_bytes(),
            Encoding::APPLICATION_JSON,
        ),
    }
}

/// Commands (or updates: `key` is `node/*/cmd` or `node/*/ota`) published in zenoh for a
/// device the bridge has seen go down to MQTT unchanged; held while the device sleeps.
async fn forward_commands(
    session: &Session,
    key: String,
    table: Arc<Mutex<DeviceTable>>,
    stats: Arc<Stats>,
    peripherals: Vec<NodeId>,
    tx: mpsc::Sender<Downlink>,
) -> Result<zenoh::pubsub::Subscriber<()>, BusError> {
    session
        .declare_subscriber(key.clone())
        .callback(move |sample| {
            if sample.kind() == SampleKind::Delete {
                return;
            }
            let topic = sample.key_expr().as_str();
            let Some(id) = SwarmKey::node_of(topic) else {
                return;
            };
            if lock(&table).get(&id).is_none() || peripherals.contains(&id) {
                return; // a zenoh node's command, or a peripheral's: not for MQTT
            }
            let payload = sample.payload().to_bytes().into_owned();
            match lock(&table).hold(&id, topic, payload.clone()) {
                Held::No => {}
                Held::Yes => {
                    stats.commands_held.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(device = %id, "device asleep: command held for its wake");
                    return;
                }
                Held::DroppedOldest => {
                    stats.commands_held.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let n = stats.count_refusal("held_full");
                    tracing::warn!(device = %id, count = n, "device asleep with {MAX_HELD} commands held: the oldest dropped");
                    return;
                }
            }
            let down = Downlink {
                topic: topic.to_string(),
                payload,
                retain: false,
            };
            match tx.try_send(down) {
                Ok(()) => {
                    stats
                        .commands_down
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(device = %id, "command for the device dropped: {e}"),
            }
        })
        .await
        .map_err(|e| BusError {
            context: format!("subscribing to device commands on {key}"),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_must_carry_real_time() {
        let now = 1_780_000_000_000;
        assert!(replay_in_time(now - 600_000, now).is_ok());
        assert!(replay_in_time(now + 59_000, now).is_ok(), "a board's drift");
        assert!(replay_in_time(0, now).is_err());
        assert!(replay_in_time(1_700_000_000_000, now).is_err(), "2023");
        assert!(replay_in_time(now + 61_000, now).is_err());
        assert!(replay_in_time(u64::MAX, now).is_err());
    }
}
