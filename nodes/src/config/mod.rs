//! The node's configuration: defaults, the TOML file, then `SWARM_*`/flags, then validation.

mod cores;
mod edit;
mod overrides;
mod paths;
mod schema;
mod validate;

pub use edit::{REDACTED, init, is_secret_key, set, show};
pub use overrides::Overrides;
pub use paths::{default_config_path, default_state_dir};
pub use schema::*;
pub use validate::ConfigError;

use std::path::{Path, PathBuf};

/// The documented default file, written by `config init`; a test keeps it equal to `Config::default()`.
pub const DOCUMENTED_DEFAULT: &str = include_str!("../../../config/swarm.toml");

/// The config file to use: `--config`/`SWARM_CONFIG`, else the XDG default.
pub fn resolve_path(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    match explicit {
        Some(p) => Ok(p.to_path_buf()),
        None => default_config_path().ok_or(ConfigError::NoConfigDir),
    }
}

/// Loads the file if it exists (an explicit path must exist) and validates it.
pub fn load(path: &Path, explicit: bool) -> Result<Config, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(Config::default());
        }
        Err(cause) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                cause,
            });
        }
    };
    let config = parse(&text).map_err(|e| e.in_file(path))?;
    Ok(config)
}

/// Parses and validates config text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: None,
        message: e.to_string(),
    })?;
    config.validate()?;
    Ok(config)
}
