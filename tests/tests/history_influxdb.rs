//! Long retention as docs/history.md sets it up: zenohd with the storage manager and the
//! InfluxDB v1 volume, against a real InfluxDB (Debian's `influxd` 1.6) started here on
//! loopback. A node's samples come back by `_time` range, and are still there after the router
//! restarts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use swarm_bus::{Energy, Leaf, SwarmKeys, SwarmName, decode};
use swarm_tests::{Node, endpoint, free_port, loopback_session, zenoh_plugin_dir, zenohd_bin};
use zenoh::query::{ConsolidationMode, QueryTarget};

const SWARM: &str = "influx";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `influxd` with its data under `dir`, HTTP on `port`, nothing else listening beyond loopback.
fn influxd(dir: &Path, port: u16) -> Killed {
    let conf = dir.join("influxdb.conf");
    std::fs::write(
        &conf,
        format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n\
             [monitor]\n  store-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n",
            rpc = free_port(),
            d = dir.display()
        ),
    )
    .unwrap();
    let log = dir.join("influxd.log");
    let child = Command::new("influxd")
        .arg("-config")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.join("influxd.err")).unwrap())
        .spawn()
        .expect("starting influxd (Debian package influxdb)");
    wait_for_port(port, "influxd", &log);
    Killed(child)
}

/// zenohd with the storage manager keeping the swarm's energy in InfluxDB.
fn zenohd(dir: &Path, port: u16, influx_port: u16) -> (Killed, PathBuf) {
    let conf = dir.join("zenohd.json5");
    let libs = zenoh_plugin_dir();
    let keys = SwarmKeys::new(SwarmName::new(SWARM).unwrap());
    std::fs::write(
        &conf,
        format!(
            r#"{{
  listen: {{ endpoints: ["{listen}"] }},
  scouting: {{ multicast: {{ enabled: false }} }},
  timestamping: {{ enabled: {{ router: true }} }},
  plugins_loading: {{ enabled: true, search_dirs: ["{libs}"] }},
  plugins: {{
    storage_manager: {{
      backend_search_dirs: ["{libs}"],
      volumes: {{ influxdb: {{ url: "http://127.0.0.1:{influx_port}" }} }},
      storages: {{
        swarm_energy: {{
          key_expr: "{key}",
          volume: {{ id: "influxdb", db: "swarm_influx", create_db: true, on_closure: "do_nothing" }},
        }},
      }},
    }},
  }},
}}"#,
            listen = endpoint(port),
            libs = libs.display(),
            key = keys.all(Leaf::Energy),
        ),
    )
    .unwrap();
    let log = dir.join("zenohd.log");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let child = Command::new(zenohd_bin())
        .arg("-c")
        .arg(&conf)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("starting zenohd");
    wait_for_port(port, "zenohd", &log);
    (Killed(child), log)
}

/// Every sample (its `ts_ms`) of the past `since_s` that the router's storage answers.
async fn history(session: &zenoh::Session, since_s: u64) -> Vec<u64> {
    let keys = SwarmKeys::new(SwarmName::new(SWARM).unwrap());
    let replies = session
        .get(format!(
            "{}?_time=[now(-{since_s}s)..]",
            keys.all(Leaf::Energy)
        ))
        .target(QueryTarget::All)
        .consolidation(ConsolidationMode::None)
        .timeout(Duration::from_secs(5))
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Ok(reply) = replies.recv_async().await {
        let sample = reply.result().expect("an Ok reply");
        let e: Energy = decode(&sample.payload().to_bytes()).expect("the CBOR sample as put");
        out.push(e.ts_ms);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_kept_in_influxdb_survive_a_router_restart() {
    let dir = tempfile::tempdir().unwrap();
    let influx_port = free_port();
    let _influx = influxd(dir.path(), influx_port);
    let router_port = free_port();
    let (router, log) = zenohd(dir.path(), router_port, influx_port);
    let config = dir.path().join("swarm.toml");
    std::fs::write(&config, "[energy]\nsample_interval_ms = 250\n").unwrap();
    let node = Node::spawn_configured(
        dir.path(),
        SWARM,
        "pi-1",
        free_port(),
        &[router_port],
        Some(&config),
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let observer = loopback_session(None, Some(router_port)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = history(&observer, 60).await;
    assert!(
        before.len() >= 20,
        "{} replies from InfluxDB; router log:\n{}",
        before.len(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // zenoh-backend-influxdb lists a key once per InfluxDB series, and the storage manager asks
    // for each listed key: a wildcard query gets every sample once per series (twice here).
    // docs/history.md says so; `swarm-node energy --since` keeps each once.
    let replies = before.len();
    let mut before = before;
    before.sort();
    before.dedup();
    eprintln!("{replies} replies, {} distinct samples", before.len());
    assert!(before.len() >= 10, "{} distinct samples", before.len());
    drop(node);

    // The router goes and comes back; InfluxDB kept what it stored.
    drop(router);
    drop(observer);
    let (_router, _) = zenohd(dir.path(), router_port, influx_port);
    let observer = loopback_session(None, Some(router_port)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = history(&observer, 120).await;
    let lost: Vec<&u64> = before.iter().filter(|t| !after.contains(t)).collect();
    assert!(lost.is_empty(), "lost in the restart: {lost:?}");
    eprintln!(
        "{} samples before the restart, {} after",
        before.len(),
        after.len()
    );
}
