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

/// What `config show` prints instead of a secret's value.
pub const REDACTED: &str = "<redacted>";

/// The config as TOML, with every secret (see [`is_secret_key`]) shown as [`REDACTED`]: the
/// output ends up in terminals, tickets and logs.
pub fn show(config: &Config) -> String {
    let rendered = toml::to_string_pretty(config)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            text.parse::<toml_edit::DocumentMut>()
                .map_err(|e| e.to_string())
        });
    match rendered {
        Ok(mut doc) => {
            redact_table(doc.as_table_mut(), false);
            doc.to_string()
        }
        Err(e) => format!("# cannot render config: {e}\n"),
    }
}

/// A key whose value is a secret: a password, a token, a pre-shared or private key given
/// inline, told by a word of its name. Keys naming a file (`tls_key`, `users_file`) are not
/// secrets themselves, nor are counts such as `max_tokens`.
pub fn is_secret_key(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "credential",
        "credentials",
        "psk",
    ];
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    last.contains("private_key")
        || last.contains("api_key")
        || last.split(['_', '-']).any(|word| WORDS.contains(&word))
}

fn redact_table(table: &mut dyn toml_edit::TableLike, all: bool) {
    for (key, item) in table.iter_mut() {
        let secret = all || is_secret_key(key.get());
        match item {
            toml_edit::Item::Value(value) => redact_value(value, secret),
            toml_edit::Item::Table(t) => redact_table(t, secret),
            toml_edit::Item::ArrayOfTables(tables) => {
                for t in tables.iter_mut() {
                    redact_table(t, secret);
                }
            }
            toml_edit::Item::None => {}
        }
    }
}

fn redact_value(value: &mut toml_edit::Value, secret: bool) {
    match value {
        toml_edit::Value::InlineTable(t) => redact_table(t, secret),
        toml_edit::Value::Array(values) => {
            for v in values.iter_mut() {
                redact_value(v, secret);
            }
        }
        _ if secret => {
            let decor = value.decor().clone();
            *value = toml_edit::Value::from(REDACTED);
            *value.decor_mut() = decor;
        }
        _ => {}
    }
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
    // A secret is text, even one that looks like a number: an error would echo it otherwise.
    let parsed: toml_edit::Value = match value.parse() {
        Ok(v @ toml_edit::Value::String(_)) => v,
        Ok(v) if !is_secret_key(key) => v,
        _ => toml_edit::Value::from(value.to_string()),
    };
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
            message: format!(
                "`{key}` = {}: {message}",
                if is_secret_key(key) { REDACTED } else { value }
            ),
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
    crate::atomic_file::write(path, text.as_bytes()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_told_by_a_word_of_their_name() {
        for key in [
            "bridge.broker_password",
            "passwd",
            "api_token",
            "x.client_secret",
            "tls_private_key",
            "wifi-psk",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "bridge.tls_key",
            "bridge.users_file",
            "limits.max_tokens",
            "node.id",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn show_redacts_secrets_at_any_depth() {
        let mut config = Config::default();
        config.bridge.broker_password = Some("hunter2".into());
        config.bridge.broker_username = Some("gw".into());
        let shown = show(&config);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("broker_password = \"<redacted>\""),
            "{shown}"
        );
        assert!(shown.contains("broker_username = \"gw\""), "{shown}");

        let mut doc: toml_edit::DocumentMut =
            "[a]\nlist = [{ token = \"t1\", name = \"n\" }]\n[[b]]\nsecret = { x = 1 }\n"
                .parse()
                .unwrap();
        redact_table(doc.as_table_mut(), false);
        let text = doc.to_string();
        assert!(!text.contains("t1") && !text.contains("x = 1"), "{text}");
        assert!(text.contains("name = \"n\""), "{text}");
    }
}
