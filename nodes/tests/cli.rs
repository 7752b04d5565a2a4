//! The command line as a user meets it: config files, bad flags, bad values.
//! (Living in this package also makes `cargo test` build the `swarm-node` binary that the
//! multi-process tests in `swarm-tests` start.)

use std::path::Path;
use std::process::Command;

fn swarm_node_bin() -> &'static str {
    env!("CARGO_BIN_EXE_swarm-node")
}

/// `swarm-node` with config and state under `dir` and no inherited `SWARM_*` variables, so a
/// developer's own settings stay out of the tests.
fn swarm_node(dir: &Path) -> Command {
    let mut cmd = Command::new(swarm_node_bin());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SWARM_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_STATE_HOME", dir.join("state"));
    cmd
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = swarm_node(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_init_show_set_path() {
    let dir = tempfile::tempdir().unwrap();
    let (code, path, _) = run(dir.path(), &["config", "path"]);
    assert_eq!(code, 0);
    let path = path.trim().to_string();
    assert!(path.ends_with("config/swarm-mesh/swarm.toml"), "{path}");

    // No file needed: show prints the defaults.
    let (code, shown, err) = run(dir.path(), &["config", "show"]);
    assert_eq!(code, 0, "{err}");
    assert!(shown.contains("heartbeat_interval_ms = 500"), "{shown}");

    assert_eq!(run(dir.path(), &["config", "init"]).0, 0);
    let documented = std::fs::read_to_string(&path).unwrap();
    assert!(documented.contains("# swarm-node configuration"));
    let (code, _, err) = run(dir.path(), &["config", "init"]);
    assert_eq!(code, 2);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(run(dir.path(), &["config", "init", "--force"]).0, 0);

    let (code, _, err) = run(
        dir.path(),
        &["config", "set", "energy.carbon_intensity_gco2_kwh", "120"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(dir.path(), &["config", "set", "node.id", "pi-gw-01"]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("carbon_intensity_gco2_kwh = 120"), "{text}");
    assert!(
        text.contains("# swarm-node configuration"),
        "comments were lost"
    );
    let (_, shown, _) = run(dir.path(), &["config", "show"]);
    assert!(shown.contains("id = \"pi-gw-01\""), "{shown}");
}

#[test]
fn bad_config_values_name_key_value_and_what_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "node.class",
            "huge",
            &["class", "huge", "full standard minimal"],
        ),
        ("node.id", "Bad Id", &["node id", "Bad Id", "a-z"]),
        (
            "consensus.heartbeat_interval_ms",
            "5",
            &["consensus.heartbeat_interval_ms", "5", "50 to 60000"],
        ),
        (
            "energy.profile",
            "toaster",
            &["energy.profile", "toaster", "pi4"],
        ),
        (
            "energy.critical_threshold_percent",
            "50",
            &["critical_threshold_percent", "50", "0 to 20"],
        ),
        (
            "energy.idle_watts",
            "nan",
            &["energy.idle_watts", "NaN", "0 to 10000"],
        ),
        (
            "consensus.nonsense",
            "1",
            &["nonsense", "heartbeat_interval_ms"],
        ),
        (
            "nosection",
            "1",
            &["nosection", "node zenoh consensus energy adaptive_gossip"],
        ),
    ];
    for (key, value, needles) in cases {
        let (code, _, err) = run(dir.path(), &["config", "set", key, value]);
        assert_eq!(code, 2, "{key}={value} accepted");
        for needle in *needles {
            assert!(
                err.contains(needle),
                "error for {key}={value} lacks {needle:?}: {err}"
            );
        }
    }
    // Nothing was written by the refused commands.
    let (_, path, _) = run(dir.path(), &["config", "path"]);
    assert!(!Path::new(path.trim()).exists());

    // A broken file is reported with its path, not ignored.
    std::fs::create_dir_all(dir.path().join("config/swarm-mesh")).unwrap();
    std::fs::write(path.trim(), "[energy]\nsample_interval_ms = \"often\"\n").unwrap();
    let (code, _, err) = run(dir.path(), &["config", "show"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("swarm.toml") && err.contains("sample_interval_ms"),
        "{err}"
    );
}

#[test]
fn bad_flags_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(dir.path(), &["run", "--id", "not/valid"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("not/valid") && err.contains("'/' at position 3"),
        "{err}"
    );
    let (code, _, err) = run(dir.path(), &["run", "--id", "x", "--class", "tiny"]);
    assert_eq!(code, 2);
    assert!(err.contains("full standard minimal"), "{err}");
    let (code, _, err) = run(
        dir.path(),
        &["run", "--id", "x", "--heartbeat-ms", "1", "--no-multicast"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("consensus.heartbeat_interval_ms"), "{err}");
    let (code, _, err) = run(
        dir.path(),
        &[
            "run",
            "--id",
            "x",
            "--connect",
            "localhost",
            "--no-multicast",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("localhost"), "{err}");
    // A broker other machines reach, without logins: refused before anything listens.
    let open = [
        "run",
        "--id",
        "x",
        "--no-multicast",
        "--mqtt-listen",
        "0.0.0.0:1",
    ];
    let (code, _, err) = run(dir.path(), &open);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("0.0.0.0:1") && err.contains("--mqtt-allow-anonymous"),
        "{err}"
    );
    assert!(err.contains("swarm-bridge passwd"), "{err}");
    let (code, _, err) = run(dir.path(), &["bench", "--nodes", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--nodes"), "{err}");
    let (code, out, _) = run(dir.path(), &["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("swarm-node "), "{out}");
}

#[test]
fn the_documented_default_file_is_the_default_config() {
    let dir = tempfile::tempdir().unwrap();
    let (_, defaults, _) = run(dir.path(), &["config", "show"]);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/swarm.toml");
    let (code, from_file, err) = run(
        dir.path(),
        &["--config", file.to_str().unwrap(), "config", "show"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(from_file, defaults);
}

#[test]
fn environment_and_flags_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        run(dir.path(), &["config", "set", "node.swarm", "from-file"]).0,
        0
    );
    let (_, shown, _) = run(dir.path(), &["config", "show"]);
    assert!(shown.contains("swarm = \"from-file\""), "{shown}");

    let out = swarm_node(dir.path())
        .args(["config", "show", "--class", "minimal"])
        .env("SWARM_SWARM", "from-env")
        .env("SWARM_HEARTBEAT_MS", "250")
        .env("SWARM_CONNECT", "tcp/127.0.0.1:7447,tcp/127.0.0.1:7448")
        .env("SWARM_NO_MULTICAST", "1")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "swarm = \"from-env\"",
        "class = \"minimal\"",
        "heartbeat_interval_ms = 250",
        "\"tcp/127.0.0.1:7448\"",
        "multicast_scouting = false",
    ] {
        assert!(shown.contains(line), "missing {line}:\n{shown}");
    }

    // A bad value from the environment is refused like one from a flag.
    let out = swarm_node(dir.path())
        .args(["run", "--id", "x", "--no-multicast"])
        .env("SWARM_HEARTBEAT_MS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("consensus.heartbeat_interval_ms") && err.contains("50 to 60000"),
        "{err}"
    );
}

#[test]
fn sim_prints_the_contract_keys_writes_a_series_and_refuses_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("series.csv");
    let csv_arg = csv.to_str().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            "sim",
            "--nodes",
            "30",
            "--duration",
            "40s",
            "--seed",
            "2",
            "--loss",
            "1%",
            "--crash-leader-every",
            "15",
            "--partition",
            "31:5:20%",
            "--json",
            "--csv",
            csv_arg,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["nodes"], 30);
    assert_eq!(r["failovers"], 2, "{r}");
    assert_eq!(r["split_brain"], 0, "{r}");
    assert_eq!(r["partitions"][0]["cut_off"], 6, "{r}");
    assert!(r["partitions"][0]["healed_ms"].is_number(), "{r}");
    for key in [
        "first_leader_ms",
        "failover_ms_max",
        "follower_rx_per_s_mean",
        "leader_rx_per_s_mean",
        "msgs_per_node_hour",
    ] {
        assert!(r[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {r}");
    }
    let series = std::fs::read_to_string(&csv).unwrap();
    let mut lines = series.lines();
    assert_eq!(
        lines.next(),
        Some("second,sent,received,leader_received,leaders,term")
    );
    assert!(lines.count() >= 40, "{series}");

    for bad in [
        vec!["sim", "--nodes", "0"],
        vec!["sim", "--loss", "120"],
        vec!["sim", "--duration", "10 parsecs"],
        vec!["sim", "--partition", "30"],
        vec!["sim", "--partition", "30:0"],
        vec!["sim", "--partition", "30:10:100"],
    ] {
        let (code, _, err) = run(dir.path(), &bad);
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(err.contains("error"), "{bad:?}: {err}");
    }
    let overlapping = ["sim", "--partition", "30:10", "--partition", "35:10"];
    let (code, _, err) = run(dir.path(), &overlapping);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--partition"), "{err}");
}

#[test]
fn config_show_and_set_never_print_a_secret() {
    use std::os::unix::fs::PermissionsExt;
    const SECRET: &str = "hunter2-not-for-terminals";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("swarm.toml");
    std::fs::write(
        &file,
        format!("[bridge]\nbroker_username = \"gw\"\nbroker_password = \"{SECRET}\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = file.to_str().unwrap();

    let (code, shown, err) = run(dir.path(), &["--config", config, "config", "show"]);
    assert_eq!(code, 0, "{err}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!err.contains(SECRET), "{err}");
    assert!(
        shown.contains("broker_password = \"<redacted>\""),
        "{shown}"
    );
    assert!(shown.contains("broker_username = \"gw\""), "{shown}");

    // Setting one does not echo it either; it is stored as text, and the file stays private.
    let args = [
        "--config",
        config,
        "config",
        "set",
        "bridge.broker_password",
    ];
    let (code, out, err) = run(dir.path(), &[&args[..], &["12345678"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("12345678") && !err.contains("12345678"),
        "{out}{err}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("broker_password = \"12345678\""), "{text}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (_, shown, _) = run(dir.path(), &["--config", config, "config", "show"]);
    assert!(!shown.contains("12345678"), "{shown}");
}

#[test]
fn huge_waits_and_timeouts_are_refused_by_clap_not_a_panic() {
    const HUGE: &str = "18446744073709551615";
    let dir = tempfile::tempdir().unwrap();
    let cases: &[&[&str]] = &[
        &["status", "--timeout-ms", HUGE],
        &["energy", "--timeout-ms", HUGE],
        &["energy", "--watch", "--timeout-ms", HUGE],
        &["cadence", "show", "--timeout-ms", HUGE],
        &["cadence", "set", "--mode", "auto", "--timeout-ms", HUGE],
        &["propose", "--cadence", "auto", "--timeout-ms", HUGE],
        &["task", "status", "t1", "--timeout-ms", HUGE],
        &["task", "list", "--timeout-ms", HUGE],
        &["task", "cancel", "t1", "--timeout-ms", HUGE],
        &["task", "submit", "--cap", "echo", "--wait-ms", HUGE],
        // One past the documented maximum, a day.
        &["status", "--timeout-ms", "86400001"],
        &["task", "submit", "--cap", "echo", "--wait-ms", "86400001"],
        &["bench", "--seconds", HUGE],
    ];
    for args in cases {
        let (code, _, err) = run(dir.path(), args);
        let flag = args[args.len() - 2];
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(
            err.contains("86400"),
            "{args:?} does not say the maximum: {err}"
        );
    }
    // The same bound holds for the environment variable.
    let out = swarm_node(dir.path())
        .args(["status", "--no-multicast"])
        .env("SWARM_TIMEOUT_MS", HUGE)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
