//! Takes one energy sample: CPU load from sysinfo, sensors from sysfs, and power from the best
//! source there is: an I2C power monitor (INA219/INA226), RAPL, the battery's discharge, else the model.

use crate::energy::meter::Meter;
use crate::energy::profile;
use crate::energy::rapl::Rapl;
use crate::energy::sensors;
use crate::energy::settings::EnergySettings;
use crate::energy::store::{EnergyStore, Stored};
use std::path::{Path, PathBuf};
use std::time::Instant;
use swarm_bus::clock::unix_ms;
use swarm_bus::{Energy, PowerSource};

pub struct Sampler {
    /// `None` where sysinfo cannot read this OS's CPU counters: load then reads as idle.
    system: Option<sysinfo::System>,
    meter: Meter,
    store: EnergyStore,
    sys_root: PathBuf,
    rapl: Rapl,
    /// The bridge's I2C power monitor on this gateway, when there is one.
    monitor: Option<swarm_bridge::i2c_peripheral::GatewayFeed>,
}

/// A monitor reading older than this is not used: the monitor has stopped answering.
const MONITOR_FRESH: std::time::Duration = std::time::Duration::from_secs(30);

impl Sampler {
    pub fn new(meter: Meter, store: EnergyStore, sys_root: PathBuf) -> Self {
        let mut system = sysinfo::System::new()
            .map_err(|e| tracing::warn!("no CPU load readings, power reads as idle: {e}"))
            .ok();
        // The first reading only sets sysinfo's baseline; load is known from the second on.
        if let Some(s) = system.as_mut() {
            s.refresh_cpu_usage();
        }
        Self {
            system,
            meter,
            store,
            rapl: Rapl::new(&sys_root),
            sys_root,
            monitor: None,
        }
    }

    /// Power from now on comes from this monitor while its readings are fresh.
    pub fn measure_with(&mut self, feed: swarm_bridge::i2c_peripheral::GatewayFeed) {
        self.monitor = Some(feed);
    }

    pub fn sample(&mut self, now: Instant) -> Energy {
        let cpu = self.system.as_mut().map_or(0.0, |s| {
            s.refresh_cpu_usage();
            s.global_cpu_usage() / 100.0
        });
        let measured = self
            .monitor
            .as_ref()
            .and_then(|feed| *feed.borrow())
            .filter(|m| now.saturating_duration_since(m.at) <= MONITOR_FRESH);
        let battery = sensors::battery(&self.sys_root);
        // RAPL is read every time, so its baseline is fresh when the monitor falls silent.
        let rapl = self.rapl.watts(now);
        let measured_watts = measured
            .map(|m| (m.watts, m.source))
            .or(rapl.map(|w| (w, PowerSource::Rapl)))
            .or(battery.discharge_watts.map(|w| (w, PowerSource::Battery)));
        let (reading, source) = match measured_watts {
            Some((watts, source)) => (self.meter.sample_watts(now, watts), source),
            None => (self.meter.sample(now, cpu), PowerSource::Model),
        };
        Energy {
            ts_ms: unix_ms(),
            watts: reading.watts,
            source,
            cpu_pct: (cpu.clamp(0.0, 1.0) * 100.0).round() as u8,
            temp_c: measured
                .and_then(|m| m.temp_c)
                .or_else(|| sensors::temperature_c(&self.sys_root)),
            battery_pct: battery.percent,
            charging: battery.charging,
            wh_total: reading.wh_total as f32,
            co2_g: reading.co2_g as f32,
            eff_pct: swarm_bus::efficiency_pct(cpu, self.meter.max_watts(), reading.watts),
        }
    }

    pub fn save(&self) {
        let stored = Stored {
            wh_total: self.meter.wh_total(),
        };
        if let Err(e) = self.store.save(stored) {
            tracing::warn!("cannot save cumulative energy: {e}");
        }
    }
}

/// The sampler a node runs with: the profile `settings` ask for (or the one this device tree
/// names), its cumulative total kept in `state_dir`, sensors read from `/sys`.
pub fn new_sampler(settings: &EnergySettings, state_dir: &Path) -> Sampler {
    let model = sensors::device_tree_model(Path::new("/proc"));
    let profile = profile::resolve(settings, model.as_deref());
    tracing::info!(
        profile = profile.name,
        idle_w = profile.idle_watts,
        max_w = profile.max_watts,
        "power model"
    );
    let store = EnergyStore::new(state_dir);
    let meter = Meter::new(
        profile,
        settings.carbon_intensity_gco2_kwh,
        store.load().wh_total,
    );
    Sampler::new(meter, store, PathBuf::from("/sys"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::fixture::put;
    use std::time::Duration;
    use swarm_bridge::i2c_peripheral::GatewayPower;

    fn sampler(dir: &std::path::Path) -> Sampler {
        let profile = profile::by_name("pi4").expect("built-in profile");
        Sampler::new(
            Meter::new(profile, 100.0, 0.0),
            EnergyStore::new(dir),
            dir.join("no-sys"),
        )
    }

    #[test]
    fn the_best_source_there_is_gives_the_power() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        let profile = profile::by_name("pi4").expect("built-in profile");
        let mut s = Sampler::new(
            Meter::new(profile, 100.0, 0.0),
            EnergyStore::new(dir.path()),
            sys.clone(),
        );
        let t0 = Instant::now();
        assert_eq!(s.sample(t0).source, PowerSource::Model, "nothing measured");

        put(&sys, "class/power_supply/BAT0/type", "Battery");
        put(&sys, "class/power_supply/BAT0/status", "Discharging");
        put(&sys, "class/power_supply/BAT0/power_now", "6000000");
        let on_battery = s.sample(t0 + Duration::from_secs(1));
        assert_eq!(
            (on_battery.source, on_battery.watts),
            (PowerSource::Battery, 6.0)
        );

        put(&sys, "class/powercap/intel-rapl:0/energy_uj", "1000000");
        put(
            &sys,
            "class/powercap/intel-rapl:0/max_energy_range_uj",
            "262143328850",
        );
        // The first RAPL reading is only a baseline: the battery still answers.
        assert_eq!(
            s.sample(t0 + Duration::from_secs(2)).source,
            PowerSource::Battery
        );
        put(&sys, "class/powercap/intel-rapl:0/energy_uj", "13000000");
        let rapl = s.sample(t0 + Duration::from_secs(4));
        assert_eq!((rapl.source, rapl.watts), (PowerSource::Rapl, 6.0));
    }

    #[test]
    fn a_fresh_monitor_reading_replaces_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sampler(dir.path());
        let (tx, rx) = tokio::sync::watch::channel(None);
        s.measure_with(rx);
        let now = Instant::now();
        assert_eq!(s.sample(now).source, PowerSource::Model, "no reading yet");
        tx.send_replace(Some(GatewayPower {
            watts: 3.25,
            source: PowerSource::Ina226,
            temp_c: Some(41.5),
            at: now,
        }));
        let measured = s.sample(now + Duration::from_secs(1));
        assert_eq!(measured.source, PowerSource::Ina226, "named for the chip");
        assert_eq!(measured.watts, 3.25);
        assert_eq!(measured.temp_c, Some(41.5));
        let stale = s.sample(now + MONITOR_FRESH + Duration::from_secs(1));
        assert_eq!(
            stale.source,
            PowerSource::Model,
            "a silent monitor is not trusted"
        );
    }
}
