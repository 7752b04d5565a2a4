//! Wiring: one zenoh session, one MQTT side (embedded or external), the mesh in between.

use crate::config::{BridgeConfig, ConfigError, MqttMode};
use crate::homeassistant::HomeAssistantConfig;
use crate::i2c_peripheral::{self, GatewayFeed};
use crate::ingest::Ingest;
use crate::mesh::{self, MeshHandles};
use crate::stats::Stats;
use crate::table::DeviceTable;
use crate::topic::{Scope, TopicError};
use crate::{embedded, external, serial};
use std::sync::{Arc, Mutex};
use swarm_bus::zenoh::BusError;
use swarm_bus::{SwarmKeys, SwarmName};
use zenoh::Session;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("bridge scope/allow/deny")]
    Topic(#[from] TopicError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Embedded(#[from] embedded::EmbeddedError),
    #[error(transparent)]
    External(#[from] external::ExternalError),
    #[error(transparent)]
    HomeAssistant(#[from] crate::homeassistant::HomeAssistantError),
}

/// A running bridge; dropping it stops carrying messages.
pub struct Bridge {
    pub stats: Arc<Stats>,
    pub devices: Arc<Mutex<DeviceTable>>,
    /// The gateway's measured power, when a `[[bridge.i2c]]` monitor without `node_id` runs.
    pub gateway_power: Option<GatewayFeed>,
    task: tokio::task::JoinHandle<()>,
    peripherals: Vec<tokio::task::JoinHandle<()>>,
    home_assistant: Option<tokio::task::JoinHandle<()>>,
    heap: tokio::task::JoinHandle<()>,
    _mesh: MeshHandles,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.task.abort();
        for p in &self.peripherals {
            p.abort();
        }
        if let Some(h) = &self.home_assistant {
            h.abort();
        }
        self.heap.abort();
    }
}

impl Bridge {
    /// Devices online now.
    pub fn online(&self) -> usize {
        mesh::lock(&self.devices).online().count()
    }
}

pub async fn run_bridge(
    session: Session,
    swarm: SwarmName,
    config: &BridgeConfig,
    home_assistant: &HomeAssistantConfig,
) -> Result<Bridge, BridgeError> {
    config.validate()?;
    home_assistant.validate()?;
    config.check_exposure()?;
    let keys = SwarmKeys::new(swarm);
    let include = if config.scope.is_empty() {
        vec![keys.node_subtree()]
    } else {
        config.scope.clone()
    };
    let scope = Scope::new(&include, &config.allow, &config.deny)?;
    let filters = scope.mqtt_filters();
    // Bind first: a busy port should stop start-up before anything is declared in zenoh.
    let listener = match config.mode {
        MqttMode::Embedded => Some(embedded::bind(config.listen).await?),
        MqttMode::External => None,
    };
    let tls = match (config.tls_listen, &config.tls_cert, &config.tls_key) {
        (Some(addr), Some(cert), Some(key)) => Some((
            embedded::bind(addr).await?,
            crate::tls::acceptor(cert, key).map_err(embedded::EmbeddedError::from)?,
        )),
        _ => None,
    };
    let stats = Arc::new(Stats::default());
    let ingest = Ingest::new(keys.clone(), scope, config.json_devices.clone());
    let peripherals = config
        .serial
        .iter()
        .map(|s| s.node_id.clone())
        .chain(config.i2c.iter().filter_map(|m| m.node_id.clone()))
        .collect();
    let (mut uplink, downlink, handles, devices) = mesh::start(
        session.clone(),
        ingest,
        stats.clone(),
        peripherals,
        mesh::TableLimits {
            max_devices: config.max_devices,
            forget_offline_after_s: config.forget_offline_after_s,
        },
    )
    .await?;
    let mut peripherals: Vec<_> = config
        .serial
        .iter()
        .map(|port| serial::spawn(port.clone(), config.max_payload_bytes, uplink.sibling()))
        .collect();
    let mut gateway_power = None;
    for monitor in &config.i2c {
        let feed = monitor.node_id.is_none().then(|| {
            let (tx, rx) = tokio::sync::watch::channel(None);
            gateway_power = Some(rx);
            tx
        });
        peripherals.push(i2c_peripheral::spawn(
            monitor.clone(),
            uplink.sibling(),
            feed,
        ));
    }
    let ha = if home_assistant.enabled {
        let (out, words) = uplink.home_assistant(home_assistant.status_topic());
        Some(
            crate::homeassistant::spawn(
                session,
                keys.clone(),
                home_assistant.clone(),
                stats.clone(),
                out,
                words,
            )
            .await?,
        )
    } else {
        None
    };
    let task = match listener {
        Some(listener) => {
            let ha = home_assistant.enabled.then_some(home_assistant);
            embedded::start(config, keys.clone(), listener, tls, uplink, downlink, ha).await?
        }
        None => {
            let mut filters = filters;
            let mut will = None;
            if home_assistant.enabled {
                filters.push(home_assistant.status_topic());
                // What an earlier run retained for members (the embedded broker keeps none).
                filters.push(keys.ha_availability_filter());
                will = Some(keys.ha_gateway_availability());
            }
            external::start(
                config,
                keys.swarm().as_str(),
                filters,
                will,
                uplink,
                downlink,
            )?
        }
    };
    Ok(Bridge {
        stats,
        devices,
        gateway_power,
        task,
        peripherals,
        home_assistant: ha,
        heap: tokio::spawn(crate::heap::keep_trimmed()),
        _mesh: handles,
    })
}
