//! UART peripherals end to end: a socat pty pair is the cable, the bridge holds one end, the
//! test (or `swarm-bridge uart-device`) is the microcontroller on the other.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::time::Duration;
use swarm_bridge::config::{BridgeConfig, SerialPort};
use swarm_bridge::devices::{board_energy, board_heartbeat};
use swarm_bridge::run_bridge;
use swarm_bridge::serial_frame::{Deframer, encode_frame};
use swarm_bus::zenoh::{publish, query_cbor};
use swarm_bus::{
    Command, CommandOp, Energy, Heartbeat, NodeId, SwarmKeys, SwarmName, decode, encode,
};
use swarm_tests::{
    PtyPair, endpoint, eventually, free_port, loopback_session, member_keys, swarm_bridge_bin,
};
use zenoh::Session;

const SWARM: &str = "sr";

fn keys() -> SwarmKeys {
    SwarmKeys::new(SwarmName::new(SWARM).unwrap())
}

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

async fn members(observer: &Session) -> Vec<String> {
    let keys = member_keys(observer, &keys()).await;
    keys.iter()
        .filter_map(|k| k.rsplit('/').next().map(str::to_string))
        .collect()
}

async fn is_member(observer: &Session, who: &str, wanted: bool) -> bool {
    eventually(Duration::from_secs(8), || async {
        (members(observer).await.iter().any(|m| m == who) == wanted).then_some(())
    })
    .await
    .is_some()
}

/// The microcontroller's side of the cable: writes go out, reads arrive on a channel.
struct DeviceEnd {
    tty: std::fs::File,
    received: mpsc::Receiver<Vec<u8>>,
}

impl DeviceEnd {
    fn open(path: &Path) -> DeviceEnd {
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("opening the device end of the pty pair");
        let mut reader = tty.try_clone().unwrap();
        let (tx, received) = mpsc::channel();
        // Ends when socat goes (the read fails) or the test drops the receiver.
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        DeviceEnd { tty, received }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.tty.write_all(bytes).unwrap();
        self.tty.flush().unwrap();
    }

    /// The next complete frame from the bridge.
    fn next_frame(&self, within: Duration) -> Option<Vec<u8>> {
        let mut deframer = Deframer::new(1024);
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            let bytes = self.received.recv_timeout(left).ok()?;
            if let Some(Ok(frame)) = deframer.push(&bytes).into_iter().next() {
                return Some(frame);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uart_board_joins_loses_bad_frames_obeys_commands_and_goes_offline_when_silent() {
    let dir = tempfile::tempdir().unwrap();
    let pty = PtyPair::start(dir.path());
    let zenoh_port = free_port();
    let session = loopback_session(Some(zenoh_port), None).await;
    let board = id("uart-1");
    let config = BridgeConfig {
        listen: ([127, 0, 0, 1], free_port()).into(),
        serial: vec![SerialPort {
            silence_ms: 1500,
            ..SerialPort::new(&pty.bridge, board.clone())
        }],
        ..BridgeConfig::default()
    };
    let bridge = run_bridge(
        session.clone(),
        SwarmName::new(SWARM).unwrap(),
        &config,
        &Default::default(),
    )
    .await
    .expect("bridge starts");
    let observer = loopback_session(Some(free_port()), Some(zenoh_port)).await;
    let heartbeats = observer
        .declare_subscriber(keys().heartbeat(&board))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut device = DeviceEnd::open(&pty.device);

    // Joining: one heartbeat and one energy report make it a member with a cached energy.
    let energy = Energy {
        watts: 0.042,
        ..board_energy(Duration::from_secs(90))
    };
    device.send(&encode_frame(&encode(&board_heartbeat(
        1,
        Duration::from_millis(500),
    ))));
    device.send(&encode_frame(&encode(&energy)));
    let sample = tokio::time::timeout(Duration::from_secs(5), heartbeats.recv_async())
        .await
        .expect("the heartbeat reaches zenoh")
        .unwrap();
    assert_eq!(sample.encoding(), &zenoh::bytes::Encoding::APPLICATION_CBOR);
    assert_eq!(
        decode::<Heartbeat>(&sample.payload().to_bytes())
            .unwrap()
            .seq,
        1
    );
    assert!(
        is_member(&observer, "uart-1", true).await,
        "uart-1 never joined"
    );
    let cached = eventually(Duration::from_secs(5), || async {
        query_cbor::<Energy>(&observer, &keys().energy(&board), Duration::from_secs(1))
            .await
            .ok()?
            .into_iter()
            .find_map(|r| r.msg.ok())
    })
    .await
    .expect("the bridge answers the board's energy");
    assert_eq!(cached, energy);

    // Line noise: a bad CRC, junk that is not a frame, an oversize run. Each is dropped and
    // counted, and the next good frame still gets through.
    let mut corrupt = encode_frame(&encode(&board_heartbeat(2, Duration::from_millis(500))));
    corrupt[3] = if corrupt[3] == 0x55 { 0x56 } else { 0x55 };
    device.send(&corrupt);
    device.send(b"\x01\x01\x01\x00");
    device.send(&[0x42; 5000]);
    device.send(&[0]);
    let wrong_kind = Command {
        op: CommandOp::Reboot,
        arg: 0,
    };
    device.send(&encode_frame(&encode(&wrong_kind)));
    device.send(&encode_frame(&encode(&board_heartbeat(
        3,
        Duration::from_millis(500),
    ))));
    let next = tokio::time::timeout(Duration::from_secs(5), heartbeats.recv_async())
        .await
        .expect("a good frame after noise gets through")
        .unwrap();
    assert_eq!(
        decode::<Heartbeat>(&next.payload().to_bytes()).unwrap().seq,
        3
    );
    assert_eq!(bridge.stats.dropped_bad_frame.load(Relaxed), 3);
    assert_eq!(bridge.stats.dropped_malformed.load(Relaxed), 1);
    let record = bridge.devices.lock().unwrap().get(&board).cloned().unwrap();
    assert_eq!(record.dropped, 4);

    // A command published in zenoh comes down the cable as a frame.
    let cmd = Command {
        op: CommandOp::SetInterval,
        arg: 250,
    };
    publish(
        &observer,
        &keys().node_leaf(&board, swarm_bus::Leaf::Cmd),
        &cmd,
    )
    .await
    .unwrap();
    let frame = tokio::task::spawn_blocking(move || {
        let frame = device.next_frame(Duration::from_secs(5));
        (frame, device)
    });
    let (frame, _device) = frame.await.unwrap();
    let frame = frame.expect("the command reaches the board");
    assert_eq!(decode::<Command>(&frame).unwrap(), cmd);
    assert_eq!(
        bridge.stats.commands_down.load(Relaxed),
        1,
        "the command went down the cable only, not to MQTT as well"
    );

    // Silence: offline after silence_ms, with nothing said on the line.
    assert!(
        is_member(&observer, "uart-1", false).await,
        "a silent board stays a member"
    );
    assert!(!bridge.devices.lock().unwrap().get(&board).unwrap().online);
}

/// `swarm-bridge run --serial` and `swarm-bridge uart-device` as processes, with the cable
/// pulled out and plugged back in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uart_device_process_rejoins_after_the_cable_is_replugged() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = PtyPair::start(dir.path());
    let zenoh_port = free_port();
    let bridge_log = dir.path().join("bridge.log");
    let mut bridge = Process::new(swarm_bridge_bin());
    bridge
        .args(["run", "--no-multicast", "--swarm", SWARM])
        .args(["--listen", &endpoint(zenoh_port)])
        .args(["--mqtt-listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--serial")
        .arg(format!("{}=uart-2", pty.bridge.display()))
        .env_remove("SWARM_CONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&bridge_log).unwrap());
    let bridge = Killed(bridge.spawn().expect("starting swarm-bridge run"));
    let observer = loopback_session(Some(free_port()), Some(zenoh_port)).await;
    let log = || std::fs::read_to_string(&bridge_log).unwrap_or_default();

    let board = Killed(uart_device(&pty.device));
    assert!(
        is_member(&observer, "uart-2", true).await,
        "uart-2 never joined; bridge log:\n{}",
        log()
    );
    let energy = query_cbor::<Energy>(
        &observer,
        &keys().energy(&id("uart-2")),
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    assert!(
        energy.iter().any(|r| r.msg.is_ok()),
        "no energy: {energy:?}"
    );

    // Unplugged: the port fails, the board goes at once, not after the silence timeout.
    drop(board);
    drop(pty);
    assert!(
        is_member(&observer, "uart-2", false).await,
        "uart-2 stayed after its port vanished; bridge log:\n{}",
        log()
    );
    pty = PtyPair::start(dir.path());
    let _board = Killed(uart_device(&pty.device));
    assert!(
        is_member(&observer, "uart-2", true).await,
        "uart-2 did not come back on a replugged port; bridge log:\n{}",
        log()
    );
    assert!(log().contains("serial port lost"), "{}", log());
    drop(bridge);
}

fn uart_device(port: &Path) -> Child {
    Process::new(swarm_bridge_bin())
        .args([
            "uart-device",
            "--id",
            "uart-2",
            "--interval-ms",
            "200",
            "--port",
        ])
        .arg(port)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting swarm-bridge uart-device")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
