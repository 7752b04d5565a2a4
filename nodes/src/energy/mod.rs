//! Energy telemetry: power from a device profile and CPU load, sensors from sysfs, cumulative
//! Wh and CO2 kept across restarts.

pub mod meter;
pub mod profile;
pub mod sensors;
pub mod store;
