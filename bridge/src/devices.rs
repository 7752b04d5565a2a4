//! Simulated boards: MQTT 5 clients that behave like the firmware (Last-Will, retained status,
//! heartbeat and energy on a cadence, commands obeyed). For tests and demos.

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{LastWill, Packet};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use swarm_bus::{Command, CommandOp, Energy, Leaf, NodeId, PowerSource, SwarmKeys, decode, encode};

#[derive(Debug, Clone)]
pub struct DeviceOptions {
    pub host: String,
    pub port: u16,
    pub keys: SwarmKeys,
    pub prefix: String,
    pub count: usize,
    pub interval: Duration,
    pub keep_alive: Duration,
    /// Log in as the device id with this password.
    pub password: Option<String>,
}

#[derive(Debug, Default)]
pub struct DeviceCounters {
    pub connected: AtomicU64,
    pub published: AtomicU64,
    pub commands: AtomicU64,
    pub rejected_commands: AtomicU64,
}

/// Ids `<prefix>-0` … `<prefix>-(count-1)`.
pub fn device_ids(prefix: &str, count: usize) -> Result<Vec<NodeId>, swarm_bus::NameError> {
    (0..count)
        .map(|i| NodeId::new(format!("{prefix}-{i}")))
        .collect()
}

/// What a board does with a command: the new interval, or why it refused. Modes scale the
/// board's configured `base` interval as the swarm's cadence modes do; 255 unpins.
pub fn obey(cmd: &Command, interval: Duration, base: Duration) -> Result<Duration, String> {
    match cmd.op {
        CommandOp::SetInterval if (100..=3_600_000).contains(&cmd.arg) => {
            Ok(Duration::from_millis(u64::from(cmd.arg)))
        }
        CommandOp::SetInterval => Err(format!("interval {} ms out of 100..=3600000", cmd.arg)),
        CommandOp::SetMode if cmd.arg == swarm_bus::UNPIN_MODE => Ok(base),
        CommandOp::SetMode => u8::try_from(cmd.arg)
            .ok()
            .and_then(swarm_bus::CadenceMode::from_u8)
            .map(|m| base * m.interval_halves() as u32 / 2)
            .ok_or_else(|| format!("unknown cadence mode {}", cmd.arg)),
        CommandOp::Identify | CommandOp::Sleep | CommandOp::Reboot | CommandOp::Time => {
            Ok(interval)
        }
    }
}

/// The heartbeat a board sends: an observer of class minimal advertising its interval.
pub use swarm_bus::samples::board_heartbeat;

/// A board's energy report after `up`: 0.35 W and a battery draining 1 % a minute.
pub fn board_energy(up: Duration) -> Energy {
    let secs = up.as_secs_f32();
    Energy {
        ts_ms: crate::mesh::unix_ms(),
        watts: 0.35,
        source: PowerSource::Device,
        cpu_pct: 5,
        temp_c: None,
        battery_pct: Some(100u8.saturating_sub((secs / 60.0) as u8)),
        charging: Some(false),
        wh_total: 0.35 * secs / 3600.0,
        co2_g: 0.0,
        eff_pct: None,
    }
}

/// Runs `count` boards until the task is dropped.
pub async fn run(
    opts: DeviceOptions,
    counters: Arc<DeviceCounters>,
) -> Result<(), swarm_bus::NameError> {
    let ids = device_ids(&opts.prefix, opts.count)?;
    let mut tasks = Vec::new();
    for id in ids {
        tasks.push(tokio::spawn(board(opts.clone(), id, counters.clone())));
        // Spread the connections so a hundred boards do not arrive in one burst.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

async fn board(opts: DeviceOptions, id: NodeId, counters: Arc<DeviceCounters>) {
    let status = opts.keys.node_leaf(&id, Leaf::Status);
    let mut mqtt = MqttOptions::new(id.as_str(), opts.host.clone(), opts.port);
    mqtt.set_keep_alive(opts.keep_alive);
    mqtt.set_last_will(LastWill::new(
        status.clone(),
        "offline",
        QoS::AtLeastOnce,
        true,
        None,
    ));
    if let Some(p) = &opts.password {
        mqtt.set_credentials(id.as_str(), p.clone());
    }
    let (client, mut events) = AsyncClient::new(mqtt, 64);
    let mut interval = opts.interval;
    let mut seq = 0u64;
    let mut next = tokio::time::Instant::now() + interval;
    let cmd_topic = opts.keys.node_leaf(&id, Leaf::Cmd);
    let started = std::time::Instant::now();
    loop {
        tokio::select! {
            event = events.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    counters.connected.fetch_add(1, Relaxed);
                    let _ = client.subscribe(cmd_topic.clone(), QoS::AtLeastOnce).await;
                    let _ = client.publish(status.clone(), QoS::AtLeastOnce, true, "online").await;
                    next = tokio::time::Instant::now();
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    match decode::<Command>(&p.payload) {
                        Ok(cmd) => match obey(&cmd, interval, opts.interval) {
                            Ok(new) => {
                                counters.commands.fetch_add(1, Relaxed);
                                tracing::info!(device = %id, op = %cmd.op, arg = cmd.arg, "command obeyed");
                                interval = new;
                                next = tokio::time::Instant::now();
                            }
                            Err(why) => {
                                counters.rejected_commands.fetch_add(1, Relaxed);
                                tracing::warn!(device = %id, "command rejected: {why}");
                            }
                        },
                        Err(e) => {
                            counters.rejected_commands.fetch_add(1, Relaxed);
                            tracing::warn!(device = %id, "unreadable command rejected: {e}");
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(device = %id, "connection: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            },
            _ = tokio::time::sleep_until(next) => {
                next += interval;
                seq += 1;
                let hb = board_heartbeat(seq, interval);
                let energy = board_energy(started.elapsed());
                let a = client.try_publish(opts.keys.heartbeat(&id), QoS::AtMostOnce, false, encode(&hb));
                let b = client.try_publish(opts.keys.energy(&id), QoS::AtLeastOnce, false, encode(&energy));
                if a.is_ok() && b.is_ok() {
                    counters.published.fetch_add(2, Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_obeyed_or_refused_with_a_reason() {
        let now = Duration::from_millis(1000);
        let set = |arg| Command {
            op: CommandOp::SetInterval,
            arg,
        };
        assert_eq!(obey(&set(250), now, now), Ok(Duration::from_millis(250)));
        assert!(obey(&set(5), now, now).unwrap_err().contains("out of"));
        let mode = |arg| Command {
            op: CommandOp::SetMode,
            arg,
        };
        // Emergency is 4 × the board's base interval; 255 unpins back to the base.
        assert_eq!(obey(&mode(3), now, now), Ok(Duration::from_millis(4000)));
        let fast = Duration::from_millis(250);
        assert_eq!(obey(&mode(swarm_bus::UNPIN_MODE), fast, now), Ok(now));
        assert!(obey(&mode(9), now, now).is_err());
        assert_eq!(
            obey(
                &Command {
                    op: CommandOp::Identify,
                    arg: 3
                },
                now,
                now
            ),
            Ok(now)
        );
    }

    #[test]
    fn ids_follow_the_prefix() {
        let ids = device_ids("esp", 3).unwrap();
        assert_eq!(ids[2].as_str(), "esp-2");
        assert!(device_ids("Bad Prefix", 1).is_err());
    }
}
