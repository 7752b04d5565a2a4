//! Takes one energy sample: CPU load from sysinfo, sensors from sysfs, power from the meter.

use crate::energy::meter::Meter;
use crate::energy::sensors;
use crate::energy::store::{EnergyStore, Stored};
use std::path::PathBuf;
use std::time::Instant;
use swarm_bus::{Energy, PowerSource};

pub struct Sampler {
    /// `None` where sysinfo cannot read this OS's CPU counters: load then reads as idle.
    system: Option<sysinfo::System>,
    meter: Meter,
    store: EnergyStore,
    sys_root: PathBuf,
}

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
            sys_root,
        }
    }

    pub fn sample(&mut self, now: Instant) -> Energy {
        let cpu = self.system.as_mut().map_or(0.0, |s| {
            s.refresh_cpu_usage();
            s.global_cpu_usage() / 100.0
        });
        let reading = self.meter.sample(now, cpu);
        let battery = sensors::battery(&self.sys_root);
        Energy {
            ts_ms: unix_ms(),
            watts: reading.watts,
            source: PowerSource::Model,
            cpu_pct: (cpu.clamp(0.0, 1.0) * 100.0).round() as u8,
            temp_c: sensors::temperature_c(&self.sys_root),
            battery_pct: battery.percent,
            charging: battery.charging,
            wh_total: reading.wh_total as f32,
            co2_g: reading.co2_g as f32,
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

pub use swarm_bus::clock::unix_ms;
