//! Logging for both binaries (`swarm-bridge`, and `swarm-node`, which embeds the bridge):
//! stderr, filtered by `SWARM_LOG`, with the chatty zenoh and MQTT crates held to warnings.

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWARM_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,zenoh=warn,rumqttd=warn,rumqttc=warn")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
