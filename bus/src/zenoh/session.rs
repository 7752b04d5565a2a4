//! Opening a zenoh session from the `[zenoh]` settings.

use super::BusError;
use super::tls::TlsFiles;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    /// Talk to other peers directly; found by multicast scouting or `connect`.
    #[default]
    Peer,
    /// Talk only through a zenohd router listed in `connect`.
    Client,
}

/// The `[zenoh]` section: how a process joins the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZenohSettings {
    pub mode: SessionMode,
    /// Locators to listen on, e.g. `tcp/0.0.0.0:7447`; empty = zenoh's default for the mode.
    pub listen: Vec<String>,
    /// Locators to connect to: peers, or the router in client mode.
    pub connect: Vec<String>,
    /// Find peers on the LAN by UDP multicast (zenoh scouting).
    pub multicast_scouting: bool,
    /// A zenoh JSON5 config file loaded first; the keys above override it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_file: Option<PathBuf>,
    /// Mutual TLS: a directory with the swarm's `ca.pem` and this process's `<name>.pem` and
    /// `<name>.key` (`swarm-node certs`). Every link is then TLS, both ends proving a
    /// certificate from that CA, and plain `tcp/` endpoints are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_dir: Option<PathBuf>,
    /// Whose certificate in `tls_dir` this process presents; a node's id by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_name: Option<String>,
}

impl Default for ZenohSettings {
    fn default() -> Self {
        Self {
            mode: SessionMode::Peer,
            listen: Vec::new(),
            connect: Vec::new(),
            multicast_scouting: true,
            config_file: None,
            tls_dir: None,
            tls_name: None,
        }
    }
}

impl ZenohSettings {
    /// The zenoh config these settings describe.
    pub fn to_zenoh_config(&self) -> Result<zenoh::Config, BusError> {
        let mut config = match &self.config_file {
            Some(path) => zenoh::Config::from_file(path).map_err(|e| {
                BusError::new(format!("reading zenoh config {}", path.display()), e)
            })?,
            None => zenoh::Config::default(),
        };
        let mode = match self.mode {
            SessionMode::Peer => "\"peer\"",
            SessionMode::Client => "\"client\"",
        };
        let set = |config: &mut zenoh::Config, key: &str, value: String| {
            config
                .insert_json5(key, &value)
                .map_err(|e| BusError::new(format!("zenoh setting {key} = {value}"), e))
        };
        set(&mut config, "mode", mode.to_string())?;
        if self.config_file.is_none() {
            // An idle link sends a keep-alive every lease / this; zenoh's 4 made the links
            // between quiet followers (which carry nothing else) the bulk of an idle swarm's
            // packets. Over TCP a keep-alive is late, never lost, so 2 keeps a lease's margin.
            set(
                &mut config,
                "transport/link/tx/keep_alive",
                KEEP_ALIVES_PER_LEASE.to_string(),
            )?;
        }
        if !self.listen.is_empty() {
            set(&mut config, "listen/endpoints", json_list(&self.listen))?;
        }
        if !self.connect.is_empty() {
            set(&mut config, "connect/endpoints", json_list(&self.connect))?;
        }
        set(
            &mut config,
            "scouting/multicast/enabled",
            self.multicast_scouting.to_string(),
        )?;
        if let Some(files) = self.tls_files()? {
            files.apply(&mut config, &self.listen, &self.connect)?;
        }
        Ok(config)
    }

    /// The TLS files these settings name, checked to exist; `None` without `tls_dir`.
    pub fn tls_files(&self) -> Result<Option<TlsFiles>, BusError> {
        let Some(dir) = &self.tls_dir else {
            return Ok(None);
        };
        let name = self.tls_name.as_deref().ok_or_else(|| {
            BusError::msg("zenoh.tls_dir is set but not whose certificate to use (tls_name)")
        })?;
        TlsFiles::in_dir(dir, name).map(Some)
    }

    /// The config of a short-lived observer (CLI, tests): same network, no listener, so it
    /// never advertises an address for others to dial.
    pub fn to_observer_config(&self) -> Result<zenoh::Config, BusError> {
        let mut config = self.to_zenoh_config()?;
        config
            .insert_json5("listen/endpoints", "[]")
            .map_err(|e| BusError::new("zenoh setting listen/endpoints = []", e))?;
        Ok(config)
    }
}

/// Keep-alives per lease (zenoh's `transport.link.tx.keep_alive`, default 4).
pub const KEEP_ALIVES_PER_LEASE: u32 = 2;

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Opens a session; fails with zenoh's reason (bad locator, port in use, router unreachable).
pub async fn open(settings: &ZenohSettings) -> Result<zenoh::Session, BusError> {
    open_config(settings.to_zenoh_config()?).await
}

/// Opens an observer session (see [`ZenohSettings::to_observer_config`]).
pub async fn open_observer(settings: &ZenohSettings) -> Result<zenoh::Session, BusError> {
    open_config(settings.to_observer_config()?).await
}

/// An observer that may start before the node it connects to: a client keeps trying its
/// endpoints for up to `wait` (zenoh's client default is one try) before it gives up.
pub async fn open_observer_waiting(
    settings: &ZenohSettings,
    wait: std::time::Duration,
) -> Result<zenoh::Session, BusError> {
    let mut config = settings.to_observer_config()?;
    let ms = wait.as_millis().to_string();
    config
        .insert_json5("connect/timeout_ms", &ms)
        .map_err(|e| BusError::new(format!("zenoh setting connect/timeout_ms = {ms}"), e))?;
    open_config(config).await
}

async fn open_config(config: zenoh::Config) -> Result<zenoh::Session, BusError> {
    zenoh::open(config)
        .await
        .map_err(|e| BusError::new("opening the zenoh session", e))
}
