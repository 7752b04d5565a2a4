//! Checks a value's range against the others, with errors that name key, value and what is allowed.

use super::schema::Config;
use crate::energy::profile;
use std::fmt::Display;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Bridge(#[from] swarm_bridge::config::ConfigError),
    #[error("config key `{key}` = {value} is not allowed; allowed: {allowed}")]
    Invalid {
        key: &'static str,
        value: String,
        allowed: String,
    },
    #[error("{}{message}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Parse {
        path: Option<PathBuf>,
        message: String,
    },
    #[error("cannot read config file {}: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot write config file {}: {cause}", path.display())]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{} exists; use --force to overwrite it", .0.display())]
    Exists(PathBuf),
    #[error("unknown config key `{key}`; keys look like `section.key` with sections: {sections}")]
    UnknownKey { key: String, sections: &'static str },
    #[error("no config directory: set --config or SWARM_CONFIG")]
    NoConfigDir,
}

impl ConfigError {
    pub(super) fn in_file(self, file: &std::path::Path) -> Self {
        match self {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: Some(file.to_path_buf()),
                message,
            },
            other => other,
        }
    }
}

fn check<T: Display + PartialOrd>(
    key: &'static str,
    value: T,
    lo: T,
    hi: T,
) -> Result<(), ConfigError> {
    // Written as "not inside" so NaN, which compares false with everything, is refused too.
    if !(value >= lo && value <= hi) {
        return Err(ConfigError::Invalid {
            key,
            value: value.to_string(),
            allowed: format!("{lo} to {hi}"),
        });
    }
    Ok(())
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.consensus;
        check(
            "consensus.heartbeat_interval_ms",
            c.heartbeat_interval_ms,
            50,
            60_000,
        )?;
        // An election timeout must span several heartbeats or followers start needless elections.
        check(
            "consensus.election_timeout_min_ms",
            c.election_timeout_min_ms,
            c.heartbeat_interval_ms.saturating_mul(2),
            600_000,
        )?;
        check(
            "consensus.election_timeout_max_ms",
            c.election_timeout_max_ms,
            c.election_timeout_min_ms,
            600_000,
        )?;
        check(
            "consensus.membership_window_s",
            c.membership_window_s,
            1,
            86_400 * 7,
        )?;
        check("consensus.bootstrap_expect", c.bootstrap_expect, 0, 1000)?;

        let e = &self.energy;
        if e.profile != "auto" && profile::by_name(&e.profile).is_none() {
            return Err(ConfigError::Invalid {
                key: "energy.profile",
                value: format!("{:?}", e.profile),
                allowed: format!("auto {}", profile::names()),
            });
        }
        if let Some(w) = e.idle_watts {
            check("energy.idle_watts", w, 0.0, 10_000.0)?;
        }
        if let Some(w) = e.max_watts {
            check("energy.max_watts", w, e.idle_watts.unwrap_or(0.0), 10_000.0)?;
        }
        check(
            "energy.sample_interval_ms",
            e.sample_interval_ms,
            100,
            3_600_000,
        )?;
        check(
            "energy.carbon_intensity_gco2_kwh",
            e.carbon_intensity_gco2_kwh,
            0.0,
            2_000.0,
        )?;
        check(
            "energy.low_power_threshold_percent",
            e.low_power_threshold_percent,
            0,
            100,
        )?;
        check(
            "energy.critical_threshold_percent",
            e.critical_threshold_percent,
            0,
            e.low_power_threshold_percent,
        )?;

        let g = &self.adaptive_gossip;
        check(
            "adaptive_gossip.min_interval_ms",
            g.min_interval_ms,
            10,
            600_000,
        )?;
        check(
            "adaptive_gossip.max_interval_ms",
            g.max_interval_ms,
            g.min_interval_ms,
            3_600_000,
        )?;
        check("adaptive_gossip.suspect_after", g.suspect_after, 2, 100)?;
        check("adaptive_gossip.small_swarm", g.small_swarm, 2, 100_000)?;
        for endpoint in self.zenoh.listen.iter().chain(&self.zenoh.connect) {
            if !endpoint.contains('/') {
                return Err(ConfigError::Invalid {
                    key: "zenoh.listen / zenoh.connect",
                    value: format!("{endpoint:?}"),
                    allowed: "zenoh locators such as tcp/127.0.0.1:7447".into(),
                });
            }
        }
        self.bridge.validate()?;
        Ok(())
    }
}
