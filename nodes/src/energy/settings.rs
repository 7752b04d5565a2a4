//! The `[energy]` section: which power model to use and what the figures are judged against.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnergySettings {
    /// `auto` or a built-in profile name (see `energy::profile`).
    pub profile: String,
    /// Override the profile's idle watts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_watts: Option<f32>,
    /// Override the profile's full-load watts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_watts: Option<f32>,
    pub sample_interval_ms: u32,
    pub carbon_intensity_gco2_kwh: f32,
    pub low_power_threshold_percent: u8,
    pub critical_threshold_percent: u8,
}

impl Default for EnergySettings {
    fn default() -> Self {
        Self {
            profile: "auto".into(),
            idle_watts: None,
            max_watts: None,
            sample_interval_ms: 5000,
            carbon_intensity_gco2_kwh: 480.0,
            low_power_threshold_percent: 20,
            critical_threshold_percent: 10,
        }
    }
}
