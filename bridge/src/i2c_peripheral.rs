//! An I2C power monitor as a source of energy telemetry: polled on a thread of its own (I2C
//! calls block), integrated into watt-hours, and published either as the energy of a named
//! device — which is then a member like any bridged device — or handed to `swarm-node` as the
//! gateway's own measured power.

use crate::config::{I2cPowerMonitor, PowerChip, TemperatureChip};
use crate::i2c_sensors::{
    Ina219, Ina226, PowerMonitor, PowerReading, SensorFault, Thermometer, Tmp102,
};
use crate::mesh::{Uplink, unix_ms};
use bytes::Bytes;
use std::time::{Duration, Instant};
use swarm_bus::{Energy, Leaf, NodeId, PowerSource, encode};
use tokio::sync::{mpsc, watch};

/// Readings that fail in a row before a measured device counts as gone.
const FAILURES_OFFLINE: u32 = 3;

/// The gateway's latest measured power, for `swarm-node`'s energy samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GatewayPower {
    pub watts: f32,
    /// Which chip measured it.
    pub source: PowerSource,
    pub temp_c: Option<f32>,
    pub at: Instant,
}

pub type GatewayFeed = watch::Receiver<Option<GatewayPower>>;

/// Watt-hours between readings (trapezoids) and the Energy message for each. Pure.
#[derive(Debug)]
pub struct MonitorMeter {
    source: PowerSource,
    wh_total: f64,
    last: Option<(Instant, f32)>,
}

impl MonitorMeter {
    pub fn new(chip: PowerChip) -> Self {
        Self {
            source: chip.source(),
            wh_total: 0.0,
            last: None,
        }
    }

    pub fn sample(&mut self, now: Instant, ts_ms: u64, watts: f32, temp_c: Option<f32>) -> Energy {
        if let Some((then, before)) = self.last {
            let hours = now.saturating_duration_since(then).as_secs_f64() / 3600.0;
            self.wh_total += f64::from(watts + before) / 2.0 * hours;
        }
        self.last = Some((now, watts));
        Energy {
            ts_ms,
            watts,
            source: self.source,
            cpu_pct: 0,
            temp_c,
            battery_pct: None,
            charging: None,
            wh_total: self.wh_total as f32,
            // The bridge has no carbon intensity of its own; the swarm aggregate applies one.
            co2_g: 0.0,
            eff_pct: None,
        }
    }
}

struct Sensors {
    power: Box<dyn PowerMonitor>,
    temperature: Option<Box<dyn Thermometer>>,
}

type Reading = Result<(PowerReading, Option<f32>), SensorFault>;

/// Serves one monitor until the task is aborted. `gateway` receives the readings of a monitor
/// without `node_id`; one with a `node_id` publishes through `uplink`.
pub fn spawn(
    monitor: I2cPowerMonitor,
    uplink: Uplink,
    gateway: Option<watch::Sender<Option<GatewayPower>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(serve(monitor, uplink, gateway))
}

async fn serve(
    monitor: I2cPowerMonitor,
    uplink: Uplink,
    gateway: Option<watch::Sender<Option<GatewayPower>>>,
) {
    let sensors = open_with_retry(&monitor).await;
    tracing::info!(monitor = %monitor.name(), chip = ?monitor.chip, "power monitor open");
    carry_readings(monitor, sensors, uplink, gateway).await
}

async fn carry_readings(
    monitor: I2cPowerMonitor,
    sensors: Sensors,
    mut uplink: Uplink,
    gateway: Option<watch::Sender<Option<GatewayPower>>>,
) {
    let name = monitor.name();
    let (tx, mut rx) = mpsc::channel::<Reading>(4);
    let interval = Duration::from_millis(monitor.interval_ms);
    std::thread::Builder::new()
        .name(format!("i2c {}", monitor.bus.display()))
        .spawn(move || poll(sensors, interval, tx))
        .map_err(|e| tracing::error!(monitor = %name, "cannot start the poller: {e}"))
        .ok();
    let mut meter = MonitorMeter::new(monitor.chip);
    let mut failures = 0u32;
    while let Some(reading) = rx.recv().await {
        match reading {
            Ok((power, temp_c)) => {
                failures = 0;
                let now = Instant::now();
                let energy = meter.sample(now, unix_ms(), power.watts(), temp_c);
                match (&monitor.node_id, &gateway) {
                    (Some(id), _) => publish(&mut uplink, id, &energy).await,
                    (None, Some(feed)) => {
                        feed.send_replace(Some(GatewayPower {
                            watts: energy.watts,
                            source: energy.source,
                            temp_c,
                            at: now,
                        }));
                    }
                    (None, None) => {}
                }
            }
            Err(fault) => {
                failures += 1;
                match &monitor.node_id {
                    Some(id) => {
                        uplink.refuse_from(id, "sensor", &fault);
                        if failures == FAILURES_OFFLINE {
                            set_offline(&mut uplink, id).await;
                        }
                    }
                    None if crate::stats::worth_logging(u64::from(failures)) => {
                        tracing::warn!(monitor = %name, failures, "reading failed: {fault}");
                    }
                    None => {}
                }
            }
        }
    }
}

async fn publish(uplink: &mut Uplink, id: &NodeId, energy: &Energy) {
    let topic = uplink.keys().energy(id);
    if uplink.carry(&topic, Bytes::from(encode(energy))).await && !uplink.is_online(id) {
        let status = uplink.keys().node_leaf(id, Leaf::Status);
        uplink.carry(&status, Bytes::from_static(b"online")).await;
    }
}

async fn set_offline(uplink: &mut Uplink, id: &NodeId) {
    if uplink.is_online(id) {
        let status = uplink.keys().node_leaf(id, Leaf::Status);
        uplink.carry(&status, Bytes::from_static(b"offline")).await;
    }
}

async fn open_with_retry(monitor: &I2cPowerMonitor) -> Sensors {
    let mut backoff = Duration::from_secs(1);
    let mut reported = false;
    loop {
        let m = monitor.clone();
        match tokio::task::spawn_blocking(move || open(&m)).await {
            Ok(Ok(sensors)) => return sensors,
            Ok(Err(e)) if !reported => {
                tracing::warn!(monitor = %monitor.name(), "cannot open the I2C bus (retrying): {e}");
                reported = true;
            }
            Ok(Err(e)) => tracing::debug!(monitor = %monitor.name(), "cannot open: {e}"),
            Err(e) => tracing::warn!(monitor = %monitor.name(), "opening panicked: {e}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

fn poll(mut sensors: Sensors, interval: Duration, tx: mpsc::Sender<Reading>) {
    loop {
        let reading = sensors.power.read().map(|p| {
            let temp = match sensors.temperature.as_mut().map(|t| t.celsius()) {
                Some(Ok(c)) => Some(c),
                // A thermometer failing does not lose the power reading.
                Some(Err(e)) => {
                    tracing::debug!("temperature: {e}");
                    None
                }
                None => None,
            };
            (p, temp)
        });
        if tx.blocking_send(reading).is_err() {
            return; // the bridge stopped
        }
        std::thread::sleep(interval);
    }
}

fn open(m: &I2cPowerMonitor) -> Result<Sensors, String> {
    let power: Box<dyn PowerMonitor> = match m.chip {
        PowerChip::Ina219 => {
            Box::new(Ina219::new(bus(m)?, m.address, m.shunt_ohms).map_err(|e| e.to_string())?)
        }
        PowerChip::Ina226 => Box::new(Ina226::new(bus(m)?, m.address, m.shunt_ohms)),
    };
    let temperature: Option<Box<dyn Thermometer>> = match m.temperature {
        Some(TemperatureChip::Tmp102) => Some(Box::new(
            Tmp102::new(bus(m)?, m.temperature_address).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    Ok(Sensors { power, temperature })
}

/// One handle per chip: the kernel serialises transfers on the bus.
#[cfg(not(feature = "rpi"))]
fn bus(m: &I2cPowerMonitor) -> Result<linux_embedded_hal::I2cdev, String> {
    linux_embedded_hal::I2cdev::new(&m.bus).map_err(|e| format!("{}: {e}", m.bus.display()))
}

#[cfg(feature = "rpi")]
fn bus(m: &I2cPowerMonitor) -> Result<rppal::i2c::I2c, String> {
    let number = m
        .bus
        .to_string_lossy()
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("{}: expected /dev/i2c-N", m.bus.display()))?;
    rppal::i2c::I2c::with_bus(number).map_err(|e| format!("{}: {e}", m.bus.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Ingest;
    use crate::stats::Stats;
    use crate::topic::Scope;
    use std::sync::Arc;
    use swarm_bus::{SwarmKeys, SwarmName};

    /// A monitor that answers from a script, then fails forever: hardware, mocked.
    struct Scripted(std::vec::IntoIter<Result<PowerReading, SensorFault>>);

    impl PowerMonitor for Scripted {
        fn read(&mut self) -> Result<PowerReading, SensorFault> {
            self.0.next().unwrap_or_else(|| {
                Err(SensorFault {
                    chip: "INA219",
                    address: 0x40,
                    message: "no acknowledge".into(),
                })
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_measured_device_joins_reports_monitor_power_and_leaves_when_the_chip_stops() {
        let session = swarm_bus::zenoh::open(&swarm_bus::zenoh::ZenohSettings {
            listen: vec!["tcp/127.0.0.1:0".into()],
            multicast_scouting: false,
            ..Default::default()
        })
        .await
        .unwrap();
        let keys = SwarmKeys::new(SwarmName::new("i2c").unwrap());
        let scope = Scope::new(&[keys.node_subtree()], &[], &[]).unwrap();
        let stats = Arc::new(Stats::default());
        let ingest = Ingest::new(keys.clone(), scope, Vec::new());
        let (uplink, _down, _handles, table) = crate::mesh::start(
            session.clone(),
            ingest,
            stats.clone(),
            Vec::new(),
            crate::mesh::TableLimits {
                max_devices: 10,
                forget_offline_after_s: 3600,
            },
        )
        .await
        .unwrap();
        let id = NodeId::new("pump-1").unwrap();
        let monitor = I2cPowerMonitor {
            interval_ms: 100,
            ..I2cPowerMonitor::new("/dev/i2c-9", PowerChip::Ina219, Some(id.clone()))
        };
        let good = Ok(PowerReading {
            bus_volts: 12.0,
            amps: 0.5,
        });
        let sensors = Sensors {
            power: Box::new(Scripted(vec![good.clone(), good].into_iter())),
            temperature: None,
        };
        let task = tokio::spawn(carry_readings(monitor, sensors, uplink, None));
        let seen = |online: bool| {
            let table = table.clone();
            let id = id.clone();
            async move {
                for _ in 0..50 {
                    let rec = crate::mesh::lock(&table).get(&id).cloned();
                    if rec.as_ref().is_some_and(|r| r.online == online) {
                        return rec;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                None
            }
        };
        let joined = seen(true).await.expect("the measured device comes online");
        let energy = joined.energy.expect("its energy is cached");
        assert_eq!(energy.source, PowerSource::Ina219);
        assert_eq!(energy.watts, 6.0);
        let left = seen(false)
            .await
            .expect("three failed readings take it offline");
        assert!(left.dropped >= 3, "{left:?}");
        assert!(
            stats
                .dropped_other
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 3
        );
        task.abort();
    }

    #[test]
    fn watt_hours_are_the_area_under_the_readings() {
        let t0 = Instant::now();
        let mut meter = MonitorMeter::new(PowerChip::Ina226);
        let first = meter.sample(t0, 1, 2.0, Some(30.0));
        assert_eq!(first.wh_total, 0.0);
        assert_eq!(first.source, PowerSource::Ina226, "named for its chip");
        assert_eq!(first.temp_c, Some(30.0));
        // 2 W then 4 W over half an hour: 3 W average, 1.5 Wh.
        let second = meter.sample(t0 + Duration::from_secs(1800), 2, 4.0, None);
        assert!((second.wh_total - 1.5).abs() < 1e-4, "{second:?}");
        // A clock that steps back adds nothing.
        let third = meter.sample(t0, 3, 4.0, None);
        assert_eq!(third.wh_total, second.wh_total);
    }
}
