//! `config init | show | set`: the file is edited with toml_edit so a user's comments survive.

use super::{Config, ConfigError, DOCUMENTED_DEFAULT, parse};
use std::path::Path;

const SECTIONS: &str = "node zenoh consensus energy adaptive_gossip";

pub fn init(path: &Path, force: bool) -> Result<(), ConfigError> {
    if path.exists() && !force {
        return Err(ConfigError::Exists(path.to_path_buf()));
    }
    write(path, DOCUMENTED_DEFAULT)
}

pub fn show(config: &Config) -> String {
    toml::to_string_pretty(config).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
}

/// Sets `section.key` to `value` (TOML syntax; a bare word counts as a string), checks the
/// whole result, and only then writes it.
pub fn set(path: &Path, key: &str, value: &str) -> Result<Config, ConfigError> {
    let (section, name) = match key.split_once('.') {
        Some((s, n)) if !s.is_empty() && !n.is_empty() && !n.contains('.') => (s, n),
        _ => {
            return Err(ConfigError::UnknownKey {
                key: key.into(),
                sections: SECTIONS,
            });
        }
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(cause) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                cause,
            });
        }
    };
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Parse {
                path: Some(path.to_path_buf()),
                message: e.to_string(),
            })?;
    let parsed: toml_edit::Value = value
        .parse()
        .unwrap_or_else(|_| toml_edit::Value::from(value.to_string()));
    let table = doc
        .entry(section)
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
    let Some(table) = table.as_table_like_mut() else {
        return Err(ConfigError::UnknownKey {
            key: key.into(),
            sections: SECTIONS,
        });
    };
    table.insert(name, toml_edit::Item::Value(parsed));
    let new_text = doc.to_string();
    let config = parse(&new_text).map_err(|e| match e {
        ConfigError::Parse { message, .. } => ConfigError::Parse {
            path: None,
            message: format!("`{key}` = {value}: {message}"),
        },
        other => other,
    })?;
    write(path, &new_text)?;
    Ok(config)
}

fn write(path: &Path, text: &str) -> Result<(), ConfigError> {
    let err = |cause| ConfigError::Write {
        path: path.to_path_buf(),
        cause,
    };
    crate::atomic_file::write(path, text.as_bytes(), false).map_err(err)
}
