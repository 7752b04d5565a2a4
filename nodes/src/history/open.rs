//! A zenoh session with zenoh's storage manager in the same runtime, keeping the members'
//! energy samples in the `history` volume (crate swarm-history).

use super::settings::HistorySettings;
use serde_json::json;
use swarm_bus::SwarmKeys;
use swarm_bus::zenoh::{BusError, ZenohSettings};
use zenoh::internal::plugins::PluginsManager;
use zenoh::internal::runtime::RuntimeBuilder;

/// The storage manager's name in zenoh's config (`plugins/<name>`).
const PLUGIN: &str = "storage_manager";

/// The storage manager's settings: one storage of every member's `energy` in the history
/// volume.
pub fn storage_config(keys: &SwarmKeys, history: &HistorySettings) -> serde_json::Value {
    json!({
        "volumes": { swarm_history::VOLUME_NAME: {} },
        "storages": {
            "swarm_energy": {
                "key_expr": keys.all(swarm_bus::Leaf::Energy),
                "complete": false,
                "volume": {
                    "id": swarm_history::VOLUME_NAME,
                    "samples_per_key": history.samples_per_member,
                    "max_keys": history.max_members,
                    "max_age_s": history.max_age_s,
                },
            },
        },
    })
}

/// Opens the session as `swarm_bus::zenoh::open` does, with the storage manager running in it.
/// Samples need zenoh timestamps to be stored, so timestamping is turned on.
pub async fn open(
    settings: &ZenohSettings,
    keys: &SwarmKeys,
    history: &HistorySettings,
) -> Result<zenoh::Session, BusError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| BusError {
        context: format!("starting history: {what}"),
        message: e.to_string(),
    };
    let mut config = settings.to_zenoh_config()?;
    config
        .insert_json5("timestamping/enabled", "true")
        .map_err(|e| fail("timestamping", &e))?;
    config
        .insert_json5(
            &format!("plugins/{PLUGIN}"),
            &storage_config(keys, history).to_string(),
        )
        .map_err(|e| fail("storage settings", &e))?;
    let mut plugins = PluginsManager::static_plugins_only();
    plugins
        .declare_static_plugin::<zenoh_plugin_storage_manager::StoragesPlugin, &str>(PLUGIN, true);
    let mut runtime = RuntimeBuilder::new(config)
        .plugins_manager(plugins)
        .build()
        .await
        .map_err(|e| fail("zenoh runtime", &e))?;
    let session = zenoh::session::init(runtime.clone().into())
        .await
        .map_err(|e| fail("session", &e))?;
    runtime
        .start()
        .await
        .map_err(|e| fail("zenoh runtime", &e))?;
    admit_members_only(&session, keys).await?;
    Ok(session)
}

/// The history keeps members' samples only: the volume asks the set this watch keeps. The
/// watch ends with the session.
async fn admit_members_only(session: &zenoh::Session, keys: &SwarmKeys) -> Result<(), BusError> {
    let watch = swarm_bus::zenoh::watch_members(session, keys).await?;
    let members = swarm_history::admission::members();
    members.watch();
    let keys = keys.clone();
    tokio::spawn(async move {
        while let Some(event) = watch.recv().await {
            match event {
                swarm_bus::zenoh::MemberEvent::Joined(id) => members.joined(keys.node(&id)),
                swarm_bus::zenoh::MemberEvent::Left(id) => members.left(&keys.node(&id)),
            }
        }
    });
    Ok(())
}
