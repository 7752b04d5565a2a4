//! `[homeassistant]`: announcing the swarm to Home Assistant's MQTT discovery.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HomeAssistantConfig {
    /// On by default wherever the bridge runs: every member becomes a Home Assistant device.
    pub enabled: bool,
    /// Home Assistant's discovery prefix (its MQTT integration's setting of the same name).
    pub prefix: String,
    /// A member away this long is removed from Home Assistant (its configs cleared).
    pub forget_after_s: u64,
    /// Members announced at most; a token past it is counted (`ha_full`) and not announced.
    pub max_members: usize,
    /// How often each member's `state` is asked for its cadence mode and version, s.
    pub state_every_s: u64,
    /// With `bridge.users_file`: the login Home Assistant uses. It may subscribe to the
    /// discovery prefix and `swarm/<s>/ha/#` and publish only `<prefix>/status`.
    pub user: Option<String>,
}

impl Default for HomeAssistantConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            prefix: "homeassistant".into(),
            forget_after_s: 24 * 3600,
            max_members: 512,
            state_every_s: 60,
            user: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HomeAssistantError {
    #[error(
        "homeassistant.prefix {0:?}: one or more topic levels of letters, digits, `_` or `-`, \
         with no wildcard, leading or trailing `/`"
    )]
    Prefix(String),
    #[error("homeassistant.{0} must be at least 1")]
    Zero(&'static str),
    #[error("homeassistant.user {0:?} is not a login name (letters, digits, `_`, `-`)")]
    User(String),
}

impl HomeAssistantConfig {
    pub fn validate(&self) -> Result<(), HomeAssistantError> {
        let level_ok = |l: &str| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !self.prefix.split('/').all(level_ok) {
            return Err(HomeAssistantError::Prefix(self.prefix.clone()));
        }
        if let Some(user) = &self.user
            && swarm_bus::NodeId::new(user).is_err()
        {
            return Err(HomeAssistantError::User(user.clone()));
        }
        for (name, v) in [
            ("forget_after_s", self.forget_after_s),
            ("max_members", self.max_members as u64),
            ("state_every_s", self.state_every_s),
        ] {
            if v == 0 {
                return Err(HomeAssistantError::Zero(name));
            }
        }
        Ok(())
    }

    /// Where Home Assistant says `online` when it starts.
    pub fn status_topic(&self) -> String {
        format!("{}/status", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_plain_topic_levels() {
        for ok in ["homeassistant", "ha/home-1", "x_y"] {
            let c = HomeAssistantConfig {
                prefix: ok.into(),
                ..Default::default()
            };
            assert_eq!(c.validate(), Ok(()), "{ok}");
        }
        for bad in ["", "/ha", "ha/", "ha/#", "h+a", "ha//x", "hä"] {
            let c = HomeAssistantConfig {
                prefix: bad.into(),
                ..Default::default()
            };
            assert!(c.validate().is_err(), "{bad:?} accepted");
        }
        let zero = HomeAssistantConfig {
            max_members: 0,
            ..Default::default()
        };
        assert_eq!(
            zero.validate(),
            Err(HomeAssistantError::Zero("max_members"))
        );
    }
}
