//! `swarm-node bench firmware`: updates over the mesh, timed. A bridge with its embedded
//! broker and simulated boards running the firmware core (`swarm-bridge devices
//! --firmware-core`, in this process) on loopback; the pusher is `firmware push`'s. Prints
//! the transfer rate to one board, and the time to update a fleet one board at a time.

use crate::cli::FirmwareBenchArgs;
use crate::firmware::{image::Image, push_one};
use anyhow::Context;
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_bridge::config::BridgeConfig;
use swarm_bridge::firmware_devices::{FirmwareDeviceCounters, FirmwareDeviceOptions};
use swarm_bus::zenoh::{self as bus};
use swarm_bus::{FirmwareReport, Leaf, NodeId, SwarmKeys, SwarmName};
use swarm_fw_core::image::sample;
use swarm_fw_core::update::CHIP_ESP32C3;

const CHIP_SLOT_BYTES: u32 = 0x1E_0000;

pub async fn run(args: FirmwareBenchArgs) -> anyhow::Result<()> {
    let swarm = SwarmName::new("benchfw")?;
    let keys = SwarmKeys::new(swarm.clone());
    // The bridge's session and the pusher's, linked over loopback TCP as a gateway and a
    // `firmware push` on another machine would be.
    let zenoh_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let endpoint = format!("tcp/127.0.0.1:{zenoh_port}");
    let gateway = bus::open(&bus::ZenohSettings {
        mode: bus::SessionMode::Peer,
        listen: vec![endpoint.clone()],
        multicast_scouting: false,
        ..bus::ZenohSettings::default()
    })
    .await?;
    let session = bus::open(&bus::ZenohSettings {
        mode: bus::SessionMode::Peer,
        connect: vec![endpoint],
        multicast_scouting: false,
        ..bus::ZenohSettings::default()
    })
    .await?;
    let mqtt = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let config = BridgeConfig {
        listen: mqtt,
        ..BridgeConfig::default()
    };
    // The figures are the update's alone: nothing announces to Home Assistant meanwhile.
    let ha = swarm_bridge::homeassistant::HomeAssistantConfig {
        enabled: false,
        ..Default::default()
    };
    let _bridge = swarm_bridge::run_bridge(gateway.clone(), swarm.clone(), &config, &ha).await?;
    let opts = FirmwareDeviceOptions {
        host: "127.0.0.1".into(),
        port: mqtt.port(),
        swarm: swarm.clone(),
        prefix: "fb".into(),
        count: usize::from(args.boards),
        interval_ms: 1000,
        keep_alive_s: 30,
        password: None,
        deep_sleep_from_ms: None,
        battery_pin_mv: 2050,
        drain_mv_per_min: 0,
        version: "0.1.0".into(),
        broken_updates: Vec::new(),
        trial_deadline_ms: 60_000,
        slot_bytes: CHIP_SLOT_BYTES,
    };
    // The firmware core's futures are not `Send`: the boards get a thread of their own.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(rt) = rt {
            let counters = Arc::new(FirmwareDeviceCounters::default());
            let _ = rt.block_on(swarm_bridge::firmware_devices::run(opts, counters));
        }
    });
    let ids: Vec<NodeId> = (0..args.boards)
        .map(|i| NodeId::new(format!("fb-{i}")))
        .collect::<Result<_, _>>()?;
    wait_for_boards(&session, &keys, ids.len()).await?;
    let bytes = usize::try_from(args.image_kib)? * 1024;
    println!(
        "{} simulated boards (firmware core) through a bridge's embedded broker; the pusher in its own zenoh session over loopback TCP; image {} KiB, chunks of {} bytes",
        args.boards, args.image_kib, args.chunk_bytes
    );
    let timeout = Duration::from_secs(600);
    let one = Image::from_bytes(sample("0.2.0", CHIP_ESP32C3, bytes), None)?;
    let first = push_one(&session, &keys, &ids[0], &one, args.chunk_bytes, timeout).await?;
    anyhow::ensure!(first.outcome == "updated", "fb-0: {first:?}");
    let kib = f64::from(first.bytes) / 1024.0;
    println!(
        "one board: transfer {:.2} s ({:.0} KiB/s), offer to confirmed {:.2} s, {} chunk(s) sent again",
        first.transfer_seconds,
        kib / first.transfer_seconds.max(1e-6),
        first.seconds,
        first.resent_chunks
    );
    let fleet = Image::from_bytes(sample("0.3.0", CHIP_ESP32C3, bytes), None)?;
    let started = Instant::now();
    let mut slowest = 0.0f64;
    for id in &ids {
        let p = push_one(&session, &keys, id, &fleet, args.chunk_bytes, timeout).await?;
        anyhow::ensure!(p.outcome == "updated", "{id}: {p:?}");
        slowest = slowest.max(p.seconds);
    }
    println!(
        "{} boards, one at a time: {:.2} s in all ({:.2} s a board on average, slowest {:.2} s)",
        ids.len(),
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() / ids.len() as f64,
        slowest
    );
    let _ = session.close().await;
    Ok(())
}

async fn wait_for_boards(
    session: &zenoh::Session,
    keys: &SwarmKeys,
    count: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replies = bus::query_cbor::<FirmwareReport>(
            session,
            &keys.all(Leaf::Firmware),
            Duration::from_millis(500),
        )
        .await?;
        if replies.len() >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(anyhow::anyhow!(
                "{} of {count} boards reported their firmware within 30 s",
                replies.len()
            ))
            .context("starting the simulated boards");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
