//! `swarm-node bench history`: what Home Assistant discovery and the gateway's history cost.
//!
//! - Discovery: an hour of one member's traffic through the announcer (the same code the
//!   bridge runs), counted in messages and bytes (topic and payload).
//! - History: a gateway session with the storage manager and the `history` volume, fed a day of
//!   samples for every member over loopback TCP with their own timestamps; the process's RSS
//!   before and after, and how long `_time` queries take.

use crate::bench::procs::rss_kib;
use crate::cli::HistoryBenchArgs;
use crate::history::HistorySettings;
use std::time::{Duration, Instant};
use swarm_bridge::homeassistant::announcer::{Announcer, Input};
use swarm_bus::zenoh::{self as bus};
use swarm_bus::{Leaf, NodeId, Role, SwarmKeys, SwarmName, encode, samples};
use zenoh::qos::CongestionControl;
use zenoh::query::{ConsolidationMode, QueryTarget};
use zenoh::time::{NTP64, Timestamp, TimestampId};

pub async fn run(args: HistoryBenchArgs) -> anyhow::Result<()> {
    let keys = SwarmKeys::new(SwarmName::new("benchhist")?);
    discovery(&keys, args.interval_s);
    history(&keys, &args).await
}

/// An hour of one member: an energy sample every `interval_s`, a heartbeat a second with its
/// role unchanged, its state asked every minute, and one birth of Home Assistant.
fn discovery(keys: &SwarmKeys, interval_s: u64) {
    let id = NodeId::new("pi-1").expect("a valid id");
    let mut announcer = Announcer::new(keys.clone(), "homeassistant".into(), 8, 86_400_000);
    let mut messages = 0u64;
    let mut bytes = 0u64;
    let mut first = (0u64, 0u64);
    let mut count = |out: Vec<swarm_bridge::homeassistant::announcer::Publish>| {
        for p in out {
            messages += 1;
            bytes += (p.topic.len() + p.payload.len()) as u64;
        }
        (messages, bytes)
    };
    count(announcer.handle(0, Input::Joined(id.clone())));
    let mut hb = samples::heartbeat(4);
    hb.role = Role::Follower;
    let mut state = samples::node_state();
    state.role = Role::Follower;
    let start_ms = 1_790_000_000_000u64;
    for s in 0..3600u64 {
        let now = start_ms + s * 1000;
        count(announcer.handle(now, Input::Heartbeat(id.clone(), hb.clone())));
        if s % interval_s.max(1) == 0 {
            let mut e = samples::energy();
            e.ts_ms = now;
            e.watts = 3.0 + (s % 7) as f32 * 0.1;
            e.wh_total += s as f32 * 0.001;
            count(announcer.handle(now, Input::Energy(id.clone(), e)));
        }
        if s % 60 == 0 {
            count(announcer.handle(now, Input::State(id.clone(), state.clone())));
        }
        if s == 60 {
            first = count(Vec::new());
        }
        if s == 1800 {
            announcer.handle(now, Input::Birth);
        }
        count(announcer.handle(now, Input::Tick));
    }
    let (messages, bytes) = count(Vec::new());
    println!(
        "Home Assistant discovery, one member, an hour (energy every {interval_s} s, heartbeats every second, \
         one birth):"
    );
    println!(
        "  {messages} messages, {bytes} bytes of topic and payload ({:.1} bytes/s); the first minute \
         (configs and availability) {} messages, {} bytes",
        bytes as f64 / 3600.0,
        first.0,
        first.1
    );
}

async fn history(keys: &SwarmKeys, args: &HistoryBenchArgs) -> anyhow::Result<()> {
    let per_member = args.hours * 3600 / args.interval_s.max(1);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let before = rss_kib(std::process::id())?;
    let settings = HistorySettings {
        enabled: Some(true),
        samples_per_member: per_member,
        max_members: u64::from(args.members),
        max_age_s: args.hours * 3600 + 3600,
    };
    let gateway = crate::history::open(
        &bus::ZenohSettings {
            mode: bus::SessionMode::Peer,
            listen: vec![endpoint.clone()],
            multicast_scouting: false,
            ..bus::ZenohSettings::default()
        },
        keys,
        &settings,
    )
    .await?;
    let feeder = bus::open(&bus::ZenohSettings {
        mode: bus::SessionMode::Peer,
        connect: vec![endpoint],
        multicast_scouting: false,
        ..bus::ZenohSettings::default()
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_sessions = rss_kib(std::process::id())?;
    let ids: Vec<NodeId> = (0..args.members)
        .map(|i| NodeId::new(format!("m{i}")))
        .collect::<Result<_, _>>()?;
    // Members hold tokens: the history keeps nobody else's samples.
    let mut tokens = Vec::with_capacity(ids.len());
    for id in &ids {
        tokens.push(
            feeder
                .liveliness()
                .declare_token(keys.node(id))
                .await
                .map_err(|e| anyhow::anyhow!("declaring {id}'s token: {e}"))?,
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now_ms = swarm_bus::clock::unix_ms();
    let start_ms = now_ms - args.hours * 3_600_000;
    let feeding = Instant::now();
    let mut sent = 0u64;
    for n in 0..per_member {
        let ts_ms = start_ms + n * args.interval_s * 1000;
        for id in &ids {
            let mut e = samples::energy();
            e.ts_ms = ts_ms;
            e.wh_total += n as f32 * 0.01;
            let stamp = Timestamp::new(
                NTP64::from(Duration::from_millis(ts_ms)),
                TimestampId::rand(),
            );
            feeder
                .put(keys.energy(id), encode(&e))
                .timestamp(stamp)
                .congestion_control(CongestionControl::Block)
                .await
                .map_err(|e| anyhow::anyhow!("feeding: {e}"))?;
            sent += 1;
        }
    }
    // Stored once the last member's newest sample is there.
    let last = keys.energy(ids.last().expect("at least one member"));
    let mut stored = 0;
    for _ in 0..600 {
        stored = count(
            &feeder,
            &format!("{last}?_time=[now(-{}s)..]", args.hours * 3600 + 60),
        )
        .await;
        if stored as u64 >= per_member {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fed_in = feeding.elapsed();
    let after = rss_kib(std::process::id())?;
    println!(
        "History: {} members × {} samples ({} h at {} s), {sent} samples fed in {:.1} s ({:.0}/s); \
         the last member holds {stored}",
        args.members,
        per_member,
        args.hours,
        args.interval_s,
        fed_in.as_secs_f64(),
        sent as f64 / fed_in.as_secs_f64()
    );
    println!(
        "  RSS of this process (gateway and feeder sessions): {:.1} MiB before, {:.1} MiB with both \
         sessions, {:.1} MiB holding the history: {:.0} bytes per sample",
        before as f64 / 1024.0,
        with_sessions as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(with_sessions) * 1024) as f64 / sent.max(1) as f64
    );
    let hour = format!("{}?_time=[now(-1h)..]", keys.energy(&ids[0]));
    let t = Instant::now();
    let n = count(&feeder, &hour).await;
    let one = t.elapsed();
    let all = format!("{}?_time=[now(-1h)..]", keys.all(Leaf::Energy));
    let t = Instant::now();
    let m = count(&feeder, &all).await;
    let every = t.elapsed();
    println!(
        "  the past hour of one member: {n} samples in {:.1} ms; of every member: {m} samples in {:.1} ms",
        one.as_secs_f64() * 1000.0,
        every.as_secs_f64() * 1000.0
    );
    drop(gateway);
    Ok(())
}

async fn count(session: &zenoh::Session, selector: &str) -> usize {
    let Ok(replies) = session
        .get(selector)
        .target(QueryTarget::All)
        .consolidation(ConsolidationMode::None)
        .timeout(Duration::from_secs(30))
        .await
    else {
        return 0;
    };
    let mut n = 0;
    while let Ok(reply) = replies.recv_async().await {
        if reply.result().is_ok() {
            n += 1;
        }
    }
    n
}
