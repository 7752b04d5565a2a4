//! eclipse's zenoh-plugin-mqtt in a process of its own, configured as zenoh-bridge-mqtt would
//! be with `--no-multicast-scouting -l ENDPOINT -p ADDR`: peer mode, timestamps and admin
//! space on, every topic bridged.
//!
//! Usage: eclipse-mqtt-bridge --mqtt 127.0.0.1:18841 --listen tcp/127.0.0.1:7496

use std::process::ExitCode;
use zenoh::config::Config;
use zenoh::internal::plugins::PluginsManager;
use zenoh::internal::runtime::RuntimeBuilder;

fn flag(args: &[String], name: &str) -> Option<String> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

fn config(mqtt: &str, listen: &str) -> Result<Config, String> {
    let mut config = Config::default();
    for (key, value) in [
        ("mode", r#""peer""#.to_string()),
        ("listen/endpoints", format!(r#"["{listen}"]"#)),
        ("scouting/multicast/enabled", "false".into()),
        ("timestamping/enabled", "true".into()),
        ("adminspace/enabled", "true".into()),
        ("plugins/mqtt", format!(r#"{{"port": "{mqtt}"}}"#)),
    ] {
        config
            .insert_json5(key, &value)
            .map_err(|e| format!("config {key} = {value}: {e}"))?;
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    zenoh::init_log_from_env_or("warn");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mqtt = flag(&args, "--mqtt").unwrap_or_else(|| "127.0.0.1:1883".into());
    let listen = flag(&args, "--listen").unwrap_or_else(|| "tcp/127.0.0.1:7447".into());
    let config = match config(&mqtt, &listen) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("eclipse-mqtt-bridge: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut plugins = PluginsManager::static_plugins_only();
    plugins.declare_static_plugin::<zenoh_plugin_mqtt::MqttPlugin, &str>("mqtt", true);
    let mut runtime = match RuntimeBuilder::new(config)
        .plugins_manager(plugins)
        .build()
        .await
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("eclipse-mqtt-bridge: building the zenoh runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = runtime.start().await {
        eprintln!("eclipse-mqtt-bridge: starting zenoh: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("eclipse-mqtt-bridge: MQTT {mqtt}, zenoh {listen}");
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}
