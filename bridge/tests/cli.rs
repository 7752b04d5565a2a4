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

#[test]
fn the_config_files_zenoh_table_is_used() {
    // A zenoh config file that zenoh refuses: the bridge must stop on it, which proves the
    // swarm.toml's `[zenoh]` reached the session rather than being skipped.
    let dir = tempfile::tempdir().unwrap();
    let zenoh = dir.path().join("zenoh.json5");
    std::fs::write(&zenoh, "{ transport: { no_such_setting: 1 } }").unwrap();
    let swarm = dir.path().join("swarm.toml");
    std::fs::write(
        &swarm,
        format!("[zenoh]\nconfig_file = {:?}\n", zenoh.to_str().unwrap()),
    )
    .unwrap();
    let mut child = bridge()
        .args(run_on_loopback("127.0.0.1:0"))
        .arg("--config")
        .arg(&swarm)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Ignoring the table, the bridge would start and run: give it a bounded time to refuse.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("swarm-bridge started despite the bad zenoh config file");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert!(!status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("zenoh.json5") && err.contains("no_such_setting"),
        "{err}"
    );
}
