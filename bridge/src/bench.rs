//! `swarm-bridge bench`: MQTT clients publish 40-byte-class telemetry, a zenoh subscriber
//! receives it. Floods go through lean clients (`bench_client`), paced phases through rumqttc. Works against any MQTT⇄Zenoh bridge that maps a topic to the same key, so
//! ours and eclipse's zenoh-bridge-mqtt can be run side by side.

use crate::bench_client::{Flood, flood};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use swarm_bus::{Energy, NameError, NodeId, PowerSource, SwarmKeys, SwarmName, encode};
use tokio::sync::Mutex;
use zenoh::Session;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("subscribing to `{key}`: {reason}")]
    Subscribe { key: String, reason: String },
    #[error("a bench client id: {0}")]
    ClientId(#[from] NameError),
    /// No client got through to the broker, so nothing was really sent.
    #[error("MQTT {mqtt} took no connection: {reason}")]
    MqttRefused { mqtt: String, reason: String },
    /// The broker took the messages but none came out on zenoh where the bench listened: most
    /// often a bridge of another swarm, which publishes under its own swarm's keys.
    #[error(
        "none of {sent} messages sent to MQTT {mqtt} arrived on zenoh key `{key}` (swarm \
         `{swarm}`); if the bridge serves another swarm, name it with --swarm"
    )]
    NothingArrived {
        sent: u64,
        mqtt: String,
        key: String,
        swarm: SwarmName,
    },
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub host: String,
    pub port: u16,
    pub keys: SwarmKeys,
    pub clients: usize,
    pub flood: Duration,
    pub rate: u64,
    pub rate_for: Duration,
    pub connections: usize,
}

/// One phase's figures.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    pub name: String,
    pub sent: u64,
    pub received: u64,
    pub seconds: f64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
}

impl PhaseResult {
    pub fn line(&self) -> String {
        let lost = self.sent.saturating_sub(self.received);
        let pct = |n: u64| {
            if self.sent == 0 {
                0.0
            } else {
                n as f64 * 100.0 / self.sent as f64
            }
        };
        format!(
            "{:<22} sent {:>9}  received {:>9}  lost {:>7} ({:.2} %)  {:>10.0} msg/s{}",
            self.name,
            self.sent,
            self.received,
            lost,
            pct(lost),
            self.received as f64 / self.seconds.max(1e-9),
            match (self.p50_us, self.p99_us) {
                (Some(a), Some(b)) => format!(
                    "  p50 {:.3} ms  p99 {:.3} ms",
                    a as f64 / 1e3,
                    b as f64 / 1e3
                ),
                _ => String::new(),
            }
        )
    }
}

/// The node id the bench's client `c` publishes as.
fn client_id(c: usize) -> Result<NodeId, BenchError> {
    Ok(NodeId::new(format!("bench-{c}"))?)
}

/// What the zenoh side counts: arrivals and, when asked, latencies.
struct Receiver {
    received: AtomicU64,
    latencies: Mutex<Vec<u64>>,
    record: std::sync::atomic::AtomicBool,
    epoch: Instant,
}

fn payload(epoch: Instant, seq: u64) -> Vec<u8> {
    // A real Energy sample (37–40 bytes): bridges that check payloads pass it. The send time
    // in µs since the bench started rides in `ts_ms`, `cpu_pct` keeps it from looking constant.
    encode(&Energy {
        ts_ms: epoch.elapsed().as_micros() as u64,
        watts: 0.35,
        source: PowerSource::Device,
        cpu_pct: (seq % 100) as u8,
        temp_c: None,
        battery_pct: Some(80),
        charging: Some(false),
        wh_total: 1.5,
        co2_g: 0.7,
        eff_pct: None,
    })
}

/// Runs every phase; stops after the first when nothing arrived, as the rest would only say
/// the same more slowly.
pub async fn run(opts: BenchOptions, session: Session) -> Result<Vec<PhaseResult>, BenchError> {
    let epoch = Instant::now();
    let rx = Arc::new(Receiver {
        received: AtomicU64::new(0),
        latencies: Mutex::new(Vec::new()),
        record: std::sync::atomic::AtomicBool::new(false),
        epoch,
    });
    let key = opts.keys.node_subtree();
    // One subscriber per client's key, not one on the subtree: only the bench's own clients
    // count (a gateway's node publishes in the same subtree, and its heartbeats counted as
    // arrivals would hide as many losses), and zenoh keeps the route of a key a subscriber
    // names, where it works out a subtree's match for every sample: that took the bench's
    // receiving threads 4-5 us a sample, more than either bridge spent on it, and capped the
    // flood figure at what the bench received.
    let mut subscribers = Vec::with_capacity(opts.clients);
    for c in 0..opts.clients {
        let ours = opts.keys.energy(&client_id(c)?);
        let sink = rx.clone();
        let subscriber = session
            .declare_subscriber(&ours)
            .callback(move |sample| {
                sink.received.fetch_add(1, Relaxed);
                if sink.record.load(Relaxed)
                    && let Ok(e) = swarm_bus::decode::<Energy>(&sample.payload().to_bytes())
                {
                    let now = sink.epoch.elapsed().as_micros() as u64;
                    if let Ok(mut l) = sink.latencies.try_lock() {
                        l.push(now.saturating_sub(e.ts_ms));
                    }
                }
            })
            .await
            .map_err(|e| BenchError::Subscribe {
                key: ours.clone(),
                reason: e.to_string(),
            })?;
        subscribers.push(subscriber);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut results = Vec::new();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let name = format!("flood qos{}", qos as u8);
        let (result, refused) = phase(&opts, &rx, &name, qos, None, opts.flood).await?;
        if results.is_empty() && result.received == 0 {
            return Err(nothing_arrived(&opts, key, result.sent, refused));
        }
        results.push(result);
    }
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let name = format!("{}/s qos{}", opts.rate, qos as u8);
        let (result, _) = phase(&opts, &rx, &name, qos, Some(opts.rate), opts.rate_for).await?;
        results.push(result);
    }
    if opts.connections > 0 {
        let held = hold_connections(&opts).await;
        println!(
            "connections held      {held} of {} for 5 s",
            opts.connections
        );
    }
    Ok(results)
}

fn nothing_arrived(
    opts: &BenchOptions,
    key: String,
    sent: u64,
    refused: Option<String>,
) -> BenchError {
    let mqtt = format!("{}:{}", opts.host, opts.port);
    match refused {
        Some(reason) => BenchError::MqttRefused { mqtt, reason },
        None => BenchError::NothingArrived {
            sent,
            mqtt,
            key,
            swarm: opts.keys.swarm().clone(),
        },
    }
}

/// One phase's figures, and why a client never connected when one did not.
async fn phase(
    opts: &BenchOptions,
    rx: &Arc<Receiver>,
    name: &str,
    qos: QoS,
    rate: Option<u64>,
    duration: Duration,
) -> Result<(PhaseResult, Option<String>), BenchError> {
    rx.received.store(0, Relaxed);
    rx.latencies.lock().await.clear();
    rx.record.store(rate.is_some(), Relaxed);
    let sent = Arc::new(AtomicU64::new(0));
    let refused: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..opts.clients {
        let topic = opts.keys.energy(&client_id(c)?);
        if rate.is_none() {
            let (host, port, epoch) = (opts.host.clone(), opts.port, rx.epoch);
            let (sent, refused) = (sent.clone(), refused.clone());
            tasks.push(tokio::spawn(async move {
                let f = Flood {
                    host: &host,
                    port,
                    client_id: format!("bench-{c}-{}", std::process::id()),
                    topic,
                    qos,
                    keep_alive: 30,
                    duration,
                    start,
                };
                if let Err(e) = flood(f, &sent, |seq| payload(epoch, seq)).await {
                    tracing::debug!("bench client: {e}");
                    if let Ok(mut first) = refused.lock() {
                        first.get_or_insert_with(|| e.to_string());
                    }
                }
            }));
            continue;
        }
        let mut mqtt = MqttOptions::new(
            format!("bench-{c}-{}", std::process::id()),
            opts.host.clone(),
            opts.port,
        );
        mqtt.set_keep_alive(Duration::from_secs(30));
        mqtt.set_inflight(1000);
        let (client, mut events) = AsyncClient::new(mqtt, 10_000);
        let acked = Arc::new(AtomicU64::new(0));
        let acks = acked.clone();
        let refused = refused.clone();
        let poller = tokio::spawn(async move {
            let mut connected = false;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Incoming::PubAck(_))) => {
                        acks.fetch_add(1, Relaxed);
                    }
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => connected = true,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!("bench client: {e}");
                        // After a connection, errors are how the disconnect at the end shows.
                        if !connected && let Ok(mut first) = refused.lock() {
                            first.get_or_insert_with(|| e.to_string());
                        }
                        return;
                    }
                }
            }
        });
        let sent = sent.clone();
        let epoch = rx.epoch;
        let per_client_gap = rate.map(|r| Duration::from_secs_f64(opts.clients as f64 / r as f64));
        tasks.push(tokio::spawn(async move {
            let mut seq = 0u64;
            let mut tick = per_client_gap.map(tokio::time::interval);
            while start.elapsed() < duration {
                if let Some(t) = tick.as_mut() {
                    t.tick().await;
                }
                if client
                    .publish(topic.clone(), qos, false, payload(epoch, seq))
                    .await
                    .is_err()
                {
                    break;
                }
                seq += 1;
                sent.fetch_add(1, Relaxed);
            }
            // Let the event loop flush before disconnecting.
            let deadline = Instant::now() + Duration::from_secs(10);
            while qos == QoS::AtLeastOnce && acked.load(Relaxed) < seq && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = client.disconnect().await;
            let _ = tokio::time::timeout(Duration::from_secs(2), poller).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    // Drain: wait until arrivals stop growing; the rate counts up to the last arrival.
    let mut last = rx.received.load(Relaxed);
    let mut last_arrival = Instant::now();
    while last < sent.load(Relaxed) && last_arrival.elapsed() < Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = rx.received.load(Relaxed);
        if now != last {
            last = now;
            last_arrival = Instant::now();
        }
    }
    let sending = last_arrival.duration_since(start);
    let received = rx.received.load(Relaxed);
    let mut lat = std::mem::take(&mut *rx.latencies.lock().await);
    lat.sort_unstable();
    let pick = |q: f64| (!lat.is_empty()).then(|| lat[((lat.len() - 1) as f64 * q) as usize]);
    let refused = refused.lock().ok().and_then(|mut r| r.take());
    let result = PhaseResult {
        name: name.into(),
        sent: sent.load(Relaxed),
        received,
        seconds: sending.as_secs_f64(),
        p50_us: pick(0.50),
        p99_us: pick(0.99),
    };
    Ok((result, refused))
}

/// Opens `connections` idle MQTT sessions and counts those still up after 5 s.
async fn hold_connections(opts: &BenchOptions) -> usize {
    let held = HeldConnections::open(&opts.host, opts.port, opts.connections).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    held.up()
}

/// Idle MQTT sessions kept open against a broker until dropped: what a gateway's devices cost
/// it while they say nothing.
pub struct HeldConnections {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    up: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl HeldConnections {
    /// Starts `count` clients (keep-alive 30 s), a hundred at a time so the broker's accept
    /// queue is not what is measured. Returns at once: [`HeldConnections::up`] tells how
    /// many are connected by now.
    pub async fn open(host: &str, port: u16, count: usize) -> Self {
        let up = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(count);
        for c in 0..count {
            let mut mqtt = MqttOptions::new(
                format!("idle-{c}-{}", std::process::id()),
                host.to_string(),
                port,
            );
            mqtt.set_keep_alive(Duration::from_secs(30));
            let (client, mut events) = AsyncClient::new(mqtt, 10);
            let (up, failed) = (up.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                let _keep = client;
                loop {
                    match events.poll().await {
                        Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                            up.fetch_add(1, Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => {
                            failed.fetch_add(1, Relaxed);
                            return;
                        }
                    }
                }
            }));
            if c % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Self { tasks, up, failed }
    }

    /// Sessions acknowledged and not failed since.
    pub fn up(&self) -> usize {
        self.up
            .load(Relaxed)
            .saturating_sub(self.failed.load(Relaxed)) as usize
    }
}

impl Drop for HeldConnections {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
