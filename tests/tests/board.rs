//! `swarm-node identify`: the command reaches the named node alone, an unknown id is refused,
//! and a node configured with a GPIO pin it cannot drive refuses to start, saying why.

use std::time::Duration;
use swarm_tests::{Mesh, eventually, run_cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_reaches_the_named_node_only() {
    let mesh = Mesh::start("board", 2);
    let session = swarm_tests::loopback_session(None, Some(mesh.nodes[0].port)).await;
    mesh.wait_for_full_mesh(&session, 2).await;

    let (code, out, err) = mesh.cli(&["identify", "n1", "--seconds", "3"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("asked n1"), "{out}");
    // Host builds have no GPIO, so n1 says it heard the request and has nothing to blink.
    let heard = eventually(Duration::from_secs(5), || async {
        mesh.nodes[1]
            .log_text()
            .contains("identify: this node has no board.led_pin")
            .then_some(())
    })
    .await;
    assert!(
        heard.is_some(),
        "n1 did not log the identify:\n{}",
        mesh.logs()
    );
    assert!(
        !mesh.nodes[0].log_text().contains("identify"),
        "n0 obeyed n1's identify:\n{}",
        mesh.logs()
    );

    let (code, _, err) = mesh.cli(&["identify", "n9"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("no node `n9`") && err.contains("n0, n1"),
        "{err}"
    );
}

#[test]
fn a_pin_this_build_cannot_drive_or_a_pin_used_twice_stops_the_node_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("swarm.toml");
    std::fs::write(&config, "[board]\nled_pin = 17\n").unwrap();
    let config = config.to_str().unwrap();
    let (code, _, err) = run_cli(
        dir.path(),
        &[
            "--config",
            config,
            "run",
            "--id",
            "n0",
            "--no-multicast",
            "--listen",
            "tcp/127.0.0.1:0",
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("board.led_pin = 17") && err.contains("no GPIO support"),
        "{err}"
    );

    let twice = dir.path().join("twice.toml");
    std::fs::write(&twice, "[board]\nled_pin = 4\nbutton_pin = 4\n").unwrap();
    let (code, _, err) = run_cli(
        dir.path(),
        &[
            "--config",
            twice.to_str().unwrap(),
            "run",
            "--id",
            "n0",
            "--no-multicast",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("both GPIO 4"), "{err}");
}
