//! The zenoh configs shipped in config/ are accepted by zenoh itself.

use std::path::PathBuf;
use swarm_bus::zenoh::{SessionMode, ZenohSettings};

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config")
        .join(name)
}

#[test]
fn peer_and_router_configs_parse() {
    for name in ["zenoh-peer.json5", "zenoh-router.json5"] {
        zenoh::Config::from_file(shipped(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_session_opens_from_the_peer_config_with_loopback_overrides() {
    let port = swarm_tests::free_port();
    let settings = ZenohSettings {
        mode: SessionMode::Peer,
        listen: vec![swarm_tests::endpoint(port)],
        connect: Vec::new(),
        multicast_scouting: false,
        config_file: Some(shipped("zenoh-peer.json5")),
        ..ZenohSettings::default()
    };
    let session = swarm_bus::zenoh::open(&settings).await.unwrap();
    // The override replaced the file's 0.0.0.0:7447: the session listens on our loopback port.
    std::net::TcpStream::connect(("127.0.0.1", port))
        .expect("session not listening on the override");
    session.close().await.unwrap();
}

#[test]
fn a_missing_zenoh_config_file_is_a_clear_error() {
    let settings = ZenohSettings {
        config_file: Some(PathBuf::from("/nonexistent/zenoh.json5")),
        ..ZenohSettings::default()
    };
    let err = settings.to_zenoh_config().unwrap_err().to_string();
    assert!(err.contains("/nonexistent/zenoh.json5"), "{err}");
}
