//! Energy telemetry: power measured where the hardware can (an I2C monitor, RAPL, the battery's
//! discharge) and modelled from a device profile and CPU load where not; sensors from sysfs;
//! cumulative Wh and CO2 kept across restarts.

pub mod aggregate;
#[cfg(test)]
pub mod fixture;
pub mod meter;
pub mod profile;
pub mod rapl;
pub mod sampler;
pub mod sensors;
pub mod settings;
pub mod store;

pub use sampler::new_sampler;
