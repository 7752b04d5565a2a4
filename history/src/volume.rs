//! The `history` volume of zenoh's storage manager: every sample of a storage's keys, bounded
//! ([`Series`]), answered only for queries with a `_time` range. A query without one is for
//! the current value, which the members' own queryables answer; answering it here too would
//! give every key twice.
//!
//! Replies are JSON by default, like the members' own (`format=cbor` keeps the CBOR), and carry
//! each sample's zenoh timestamp: the time it was taken, also for a board's replayed readings.

use crate::series::{Limits, Put, Series};
use async_trait::async_trait;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, UNIX_EPOCH};
use swarm_bus::{Energy, SwarmKey, decode, encode, json::to_json};
use tokio::sync::RwLock;
use zenoh::Result as ZResult;
use zenoh::bytes::{Encoding, ZBytes};
use zenoh::key_expr::OwnedKeyExpr;
use zenoh::query::{Parameters, ZenohParameters};
use zenoh::time::Timestamp;
use zenoh_backend_traits::config::{StorageConfig, VolumeConfig};
use zenoh_backend_traits::{
    Capability, History, Persistence, Storage, StorageInsertionResult, StoredData, Volume,
    VolumeInstance,
};
use zenoh_plugin_trait::{Plugin, plugin_long_version, plugin_version};
use zenoh_util::ffi::JsonValue;

/// The name storages give as their `volume`.
pub const VOLUME_NAME: &str = "history";

/// Defaults: a day at a 10 s cadence for 64 keys, about 50 MiB at most.
pub const DEFAULT_LIMITS: Limits = Limits {
    per_key: 8640,
    max_keys: 64,
    max_age_ms: 24 * 3600 * 1000,
};

pub struct HistoryVolume {
    config: VolumeConfig,
}

impl Plugin for HistoryVolume {
    type StartArgs = VolumeConfig;
    type Instance = VolumeInstance;

    const DEFAULT_NAME: &'static str = VOLUME_NAME;
    const PLUGIN_VERSION: &'static str = plugin_version!();
    const PLUGIN_LONG_VERSION: &'static str = plugin_long_version!();

    fn start(_: &str, config: &VolumeConfig) -> ZResult<VolumeInstance> {
        Ok(Box::new(HistoryVolume {
            config: config.clone(),
        }))
    }
}

#[async_trait]
impl Volume for HistoryVolume {
    fn get_admin_status(&self) -> JsonValue {
        self.config.to_json_value().into()
    }

    fn get_capability(&self) -> Capability {
        Capability {
            persistence: Persistence::Volatile,
            history: History::All,
        }
    }

    async fn create_storage(&self, config: StorageConfig) -> ZResult<Box<dyn Storage>> {
        let limits = limits_of(&serde_json::Value::from(&config.volume_cfg))?;
        tracing::info!(
            key_expr = %config.key_expr,
            per_key = limits.per_key,
            max_keys = limits.max_keys,
            max_age_s = limits.max_age_ms / 1000,
            "history storage"
        );
        Ok(Box::new(HistoryStorage {
            config,
            series: Arc::new(RwLock::new(Series::new(limits))),
            refused: Refusals::default(),
        }))
    }
}

/// Reads `samples_per_key`, `max_keys` and `max_age_s` from the storage's volume settings.
pub fn limits_of(cfg: &serde_json::Value) -> ZResult<Limits> {
    let read = |name: &str, default: u64| -> ZResult<u64> {
        match cfg.get(name) {
            None => Ok(default),
            Some(v) => v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                format!("history volume: {name} must be a whole number above 0, not {v}").into()
            }),
        }
    };
    let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(Limits {
        per_key: as_usize(read("samples_per_key", DEFAULT_LIMITS.per_key as u64)?),
        max_keys: as_usize(read("max_keys", DEFAULT_LIMITS.max_keys as u64)?),
        max_age_ms: read("max_age_s", DEFAULT_LIMITS.max_age_ms / 1000)?.saturating_mul(1000),
    })
}

/// A sample as kept: decoded, about half the size of its bytes and their allocation. Replies
/// encode it again (JSON, or CBOR with `format=cbor`).
#[derive(Debug, Clone)]
struct Stored {
    energy: Energy,
    timestamp: Timestamp,
}

/// What the storage refused, by reason; shown in its admin status.
#[derive(Debug, Default)]
struct Refusals {
    not_member: AtomicU64,
    too_old: AtomicU64,
    too_many_keys: AtomicU64,
    malformed: AtomicU64,
}

struct HistoryStorage {
    config: StorageConfig,
    series: Arc<RwLock<Series<Stored>>>,
    refused: Refusals,
}

fn key_text(key: &Option<OwnedKeyExpr>) -> String {
    key.as_ref().map(|k| k.to_string()).unwrap_or_default()
}

fn unix_ms(timestamp: &Timestamp) -> u64 {
    timestamp
        .get_time()
        .to_system_time()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[async_trait]
impl Storage for HistoryStorage {
    fn get_admin_status(&self) -> JsonValue {
        let mut status = self.config.to_json_value();
        status["refused"] = json!({
            "not_member": self.refused.not_member.load(Relaxed),
            "too_old": self.refused.too_old.load(Relaxed),
            "too_many_keys": self.refused.too_many_keys.load(Relaxed),
            "malformed": self.refused.malformed.load(Relaxed),
        });
        status.into()
    }

    async fn put(
        &mut self,
        key: Option<OwnedKeyExpr>,
        payload: ZBytes,
        encoding: Encoding,
        timestamp: Timestamp,
    ) -> ZResult<StorageInsertionResult> {
        let key = key_text(&key);
        // Only a member's samples are kept: a stray peer's take no room.
        if !crate::admission::members().admits(&key) {
            self.refused.not_member.fetch_add(1, Relaxed);
            return Ok(StorageInsertionResult::Outdated);
        }
        let Ok(energy) = decode::<Energy>(&payload.to_bytes()) else {
            self.refused.malformed.fetch_add(1, Relaxed);
            return Ok(StorageInsertionResult::Outdated);
        };
        let _ = encoding;
        let stored = Stored { energy, timestamp };
        let put = self
            .series
            .write()
            .await
            .put(&key, unix_ms(&timestamp), stored);
        Ok(match put {
            Put::Stored => StorageInsertionResult::Inserted,
            Put::Duplicate => StorageInsertionResult::Outdated,
            Put::TooOld => {
                self.refused.too_old.fetch_add(1, Relaxed);
                StorageInsertionResult::Outdated
            }
            Put::TooManyKeys => {
                self.refused.too_many_keys.fetch_add(1, Relaxed);
                StorageInsertionResult::Outdated
            }
        })
    }

    async fn delete(
        &mut self,
        key: Option<OwnedKeyExpr>,
        _timestamp: Timestamp,
    ) -> ZResult<StorageInsertionResult> {
        self.series.write().await.remove(&key_text(&key));
        Ok(StorageInsertionResult::Deleted)
    }

    async fn get(
        &mut self,
        key: Option<OwnedKeyExpr>,
        parameters: &str,
    ) -> ZResult<Vec<StoredData>> {
        let parameters = Parameters::from(parameters);
        let Some(range) = parameters.time_range() else {
            return Ok(Vec::new());
        };
        let range = range?.resolve();
        let cbor = parameters.get("format") == Some("cbor");
        let key = key_text(&key);
        let node = key
            .parse::<SwarmKey>()
            .ok()
            .and_then(|k| k.node_id().cloned());
        let samples = self.series.read().await.range(&key, |ms| {
            range.contains(UNIX_EPOCH + Duration::from_millis(ms))
        });
        Ok(samples
            .into_iter()
            .map(|(_, s)| {
                let (payload, encoding) = if cbor {
                    (ZBytes::from(encode(&s.energy)), Encoding::APPLICATION_CBOR)
                } else {
                    (
                        ZBytes::from(to_json(&s.energy, node.as_ref()).to_string()),
                        Encoding::APPLICATION_JSON,
                    )
                };
                StoredData {
                    payload,
                    encoding,
                    timestamp: s.timestamp,
                }
            })
            .collect())
    }

    async fn get_all_entries(&self) -> ZResult<Vec<(Option<OwnedKeyExpr>, Timestamp)>> {
        let series = self.series.read().await;
        let mut out = Vec::new();
        for (key, _) in series.keys() {
            let newest = series.range(&key, |_| true).pop();
            if let (Ok(k), Some((_, s))) = (OwnedKeyExpr::try_from(key), newest) {
                out.push((Some(k), s.timestamp));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_volume_settings() {
        assert_eq!(limits_of(&json!({})).unwrap(), DEFAULT_LIMITS);
        let l = limits_of(&json!({"samples_per_key": 10, "max_keys": 3, "max_age_s": 60})).unwrap();
        assert_eq!(
            l,
            Limits {
                per_key: 10,
                max_keys: 3,
                max_age_ms: 60_000
            }
        );
        for bad in [
            json!({"max_keys": 0}),
            json!({"samples_per_key": -1}),
            json!({"max_age_s": "x"}),
        ] {
            assert!(limits_of(&bad).is_err(), "{bad}");
        }
    }
}
