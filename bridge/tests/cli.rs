//! The `swarm-bridge` binary as a user runs it.

use std::process::Command;

fn bridge() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm-bridge"));
    cmd.env_remove("SWARM_CONFIG").env("SWARM_LOG", "error");
    cmd
}

#[test]
fn passwd_writes_a_hash_and_never_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users");
    for user in ["esp-1", "esp-2", "esp-1"] {
        let out = bridge()
            .args([
                "passwd",
                file.to_str().unwrap(),
                user,
                "--password",
                "hunter2",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("hunter2"));
    assert_eq!(
        text.lines().count(),
        2,
        "esp-1 replaced, not repeated:\n{text}"
    );
    let users = swarm_bridge::auth::Users::load(&file).unwrap();
    assert!(users.verify("esp-1", "hunter2"));
    assert!(!users.verify("esp-1", "hunter3"));
}

#[test]
fn passwd_refuses_a_user_that_is_not_a_device_id() {
    let dir = tempfile::tempdir().unwrap();
    let out = bridge()
        .args([
            "passwd",
            dir.path().join("u").to_str().unwrap(),
            "Not An Id",
            "--password",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("device id"));
}

/// `swarm-bridge run` with zenoh and MQTT both on loopback.
fn run_on_loopback(mqtt: &str) -> [&str; 6] {
    [
        "run",
        "--no-multicast",
        "--listen",
        "tcp/127.0.0.1:0",
        "--mqtt-listen",
        mqtt,
    ]
}

#[test]
fn a_busy_mqtt_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = bridge().args(run_on_loopback(&addr)).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("listening for MQTT on {addr}")),
        "{err}"
    );
}

#[test]
fn a_users_file_with_plain_passwords_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "esp-1:hunter2\n").unwrap();
    let out = bridge()
        .args(run_on_loopback("127.0.0.1:0"))
        .arg("--users-file")
        .arg(&users)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 1") && !err.contains("hunter2"), "{err}");
}
