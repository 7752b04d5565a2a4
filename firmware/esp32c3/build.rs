//! Checks the build-time settings and hands them to the crate as
//! `SWARM_FW_<NAME>` variables, so that a missing or malformed value fails the
//! build here with a readable message instead of on the device.

use std::env::{self, VarError};

/// Settings without which the firmware cannot work: (name, what to put there).
const REQUIRED: &[(&str, &str)] = &[
    ("WIFI_SSID", "the Wi-Fi network name"),
    (
        "WIFI_PASS",
        "the Wi-Fi password; set it empty for an open network",
    ),
    ("MQTT_HOST", "the MQTT broker's IPv4 address or host name"),
    ("NODE_ID", "this node's id: a-z, 0-9, '_' and '-'"),
];

/// Settings with a default: (name, default, what it is).
const DEFAULTED: &[(&str, &str, &str)] = &[
    ("MQTT_PORT", "1883", "the MQTT broker's TCP port"),
    ("SWARM", "swarm", "the swarm name: a-z, 0-9, '_' and '-'"),
    (
        "WIFI_COUNTRY",
        "DE",
        "the two-letter Wi-Fi regulatory country code",
    ),
];

/// Settings that may stay unset.
const OPTIONAL: &[&str] = &["MQTT_USER", "MQTT_PASS"];

fn main() {
    for (name, what) in REQUIRED {
        let value = read(name).unwrap_or_else(|| {
            panic!("\n\nset {name}=... ({what}) before building the firmware\n\n")
        });
        export(name, &value);
    }
    for (name, default, _) in DEFAULTED {
        let value = read(name).unwrap_or_else(|| (*default).to_owned());
        export(name, &value);
    }
    for name in OPTIONAL {
        if let Some(value) = read(name) {
            export(name, &value);
        }
    }
}

/// Reads a setting and registers it for rebuilds; an empty value counts as
/// unset except for WIFI_PASS, where empty means "open network".
fn read(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    match env::var(name) {
        Ok(v) if v.is_empty() && name != "WIFI_PASS" => None,
        Ok(v) => Some(v),
        Err(VarError::NotPresent) => None,
        Err(VarError::NotUnicode(_)) => panic!("\n\n{name} must be valid UTF-8\n\n"),
    }
}

fn export(name: &str, value: &str) {
    if let Err(problem) = validate(name, value) {
        panic!("\n\n{name}={value:?} is not usable: {problem}\n\n");
    }
    println!("cargo:rustc-env=SWARM_FW_{name}={value}");
}

fn validate(name: &str, value: &str) -> Result<(), String> {
    // `cargo:rustc-env` is line-based, so a newline would corrupt the build.
    if value.contains(['\n', '\r']) {
        return Err("it contains a line break".into());
    }
    match name {
        // Limits of the 802.11 SSID field and the WPA2 passphrase.
        "WIFI_SSID" if value.len() > 32 => Err("an SSID has at most 32 bytes".into()),
        "WIFI_PASS" if value.len() > 64 => Err("a WPA2 passphrase has at most 64 bytes".into()),
        "WIFI_PASS" if !value.is_empty() && value.len() < 8 => {
            // Only a warning: dummy values must still build (CI, image-size checks).
            println!(
                "cargo:warning=WIFI_PASS has {} bytes; WPA2 needs 8-64, so this firmware will \
                 not join a real network",
                value.len()
            );
            Ok(())
        }
        "MQTT_PORT" => match value.parse::<u16>() {
            Ok(0) | Err(_) => Err("expected a TCP port number 1-65535".into()),
            Ok(_) => Ok(()),
        },
        "SWARM" | "NODE_ID" => topic_level(name, value),
        "WIFI_COUNTRY" => country(value),
        _ => Ok(()),
    }
}

/// The same rules as every other swarm member: `swarm-bus` checks the names, so a board
/// cannot be built under a name the mesh would refuse.
fn topic_level(name: &str, value: &str) -> Result<(), String> {
    let checked = if name == "SWARM" {
        swarm_bus::SwarmName::new(value).map(|_| ())
    } else {
        swarm_bus::NodeId::new(value).map(|_| ())
    };
    checked.map_err(|e| e.to_string())
}

/// Letters only: esp-radio applies the code with a fixed channel range 1-13 and
/// a manual policy, so ESP-IDF's "01" world-safe mode would not be what it
/// promises (it limits scanning to channels 1-11).
fn country(value: &str) -> Result<(), String> {
    let bytes = value.as_bytes();
    if bytes.len() == 2 && bytes.iter().all(u8::is_ascii_uppercase) {
        Ok(())
    } else {
        Err("expected two upper-case letters, e.g. DE, US, GB".into())
    }
}
