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
        check("limits.max_members", self.limits.max_members, 2, 1_000_000)?;
        let h = &self.history;
        check(
            "history.samples_per_member",
            h.samples_per_member,
            1,
            10_000_000,
        )?;
        check("history.max_members", h.max_members, 1, 100_000)?;
        check("history.max_age_s", h.max_age_s, 1, 86_400 * 366)?;

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
        if self.bridge.enabled {
            self.bridge.check_exposure()?;
        }
        if let Err(reason) = self.board.check() {
            return Err(ConfigError::Invalid {
                key: "board",
                value: reason,
                allowed: "distinct BCM GPIO numbers 0..=27".into(),
            });
        }
        self.validate_tasks()
    }

    fn validate_tasks(&self) -> Result<(), ConfigError> {
        let t = &self.tasks;
        check("tasks.slots", t.slots, 1, 1024)?;
        check(
            "tasks.max_payload_bytes",
            t.max_payload_bytes,
            0,
            16 * 1024 * 1024,
        )?;
        check("tasks.max_pending", t.max_pending, 1, 10_000_000)?;
        check("tasks.reputation_floor", t.reputation_floor, 0.0, 1.0)?;
        check(
            "tasks.results.max_entries",
            t.results.max_entries,
            1,
            10_000_000,
        )?;
        check(
            "tasks.results.max_bytes",
            t.results.max_bytes,
            1024,
            1 << 30,
        )?;
        check("tasks.results.ttl_s", t.results.ttl_s, 1, 365 * 86_400)?;
        let builtins = swarm_node::worker::builtin::NAMES;
        if let Some(unknown) = t.builtins.iter().find(|b| !builtins.contains(&b.as_str())) {
            return Err(ConfigError::Invalid {
                key: "tasks.builtins",
                value: format!("{unknown:?}"),
                allowed: builtins.join(" "),
            });
        }
        for (name, h) in &t.handlers {
            // A capability travels in task specs: a plain dotted name.
            let plain = swarm_node::worker::settings::is_capability_name(name);
            if !plain || builtins.contains(&name.as_str()) {
                return Err(ConfigError::Invalid {
                    key: "tasks.handlers",
                    value: format!("{name:?}"),
                    allowed: "names of a-z 0-9 . _ - (at most 63), other than the built-ins'"
                        .into(),
                });
            }
            if h.command.first().is_none_or(|p| p.is_empty()) {
                return Err(ConfigError::Invalid {
                    key: "tasks.handlers.<name>.command",
                    value: format!("{name}: {:?}", h.command),
                    allowed: "a program and its arguments, e.g. [\"/usr/bin/env\", \"true\"]"
                        .into(),
                });
            }
            check("tasks.handlers.<name>.timeout_s", h.timeout_s, 1, 86_400)?;
            check(
                "tasks.handlers.<name>.max_output_bytes",
                h.max_output_bytes,
                0,
                16 * 1024 * 1024,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use swarm_node::worker::settings::CommandHandler;

    fn with_handler(name: &str, command: &[&str]) -> Config {
        let mut c = Config::default();
        c.tasks.handlers.insert(
            name.into(),
            CommandHandler {
                command: command.iter().map(|s| s.to_string()).collect(),
                timeout_s: 10,
                max_output_bytes: 1024,
                env: vec![],
                idempotent: false,
            },
        );
        c
    }

    #[test]
    fn task_handlers_are_checked() {
        assert!(Config::default().validate().is_ok());
        assert!(
            with_handler("camera.capture", &["/bin/true"])
                .validate()
                .is_ok()
        );
        for (name, command) in [
            ("Camera", &["/bin/true"][..]),
            ("echo", &["/bin/true"]),
            ("camera.capture", &[]),
            ("camera.capture", &[""]),
        ] {
            let err = with_handler(name, command).validate().unwrap_err();
            assert!(err.to_string().contains("tasks.handlers"), "{err}");
        }
        let mut c = Config::default();
        c.tasks.builtins.push("rm".into());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("echo sleep sysinfo")
        );
    }
}
