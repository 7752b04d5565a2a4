//! `/metrics` of real nodes, read by an OpenMetrics parser as Prometheus would scrape it, and
//! by promtool in both formats a scraper may ask for.

use openmetrics_parser::openmetrics::parse_openmetrics;
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use std::time::Duration;
use swarm_tests::{Node, eventually, free_port, wait_for_leader};

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// Constant power (idle = max), so the leader's total is exactly the sum of the nodes'.
const ENERGY: &str = "[energy]\nprofile = \"generic-x86\"\nidle_watts = 4\nmax_watts = 4\n\
                      sample_interval_ms = 500\n";

/// What Prometheus 2.x sends when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
     application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// One GET over plain HTTP/1.1: (status line, content type, body).
fn get(port: u16, path: &str) -> std::io::Result<(String, String, String)> {
    get_with(port, path, &[])
}

fn get_with(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(String, String, String)> {
    let response = swarm_tests::http_get_with(port, path, headers)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_string();
    Ok((status, content_type, body.to_string()))
}

fn scrape(port: u16) -> Option<Exposition> {
    let accept = [("Accept", PROMETHEUS_ACCEPT)];
    let (status, content_type, body) = get_with(port, "/metrics", &accept).ok()?;
    assert!(status.contains("200"), "{status}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    Some(parse_openmetrics(&body).unwrap_or_else(|e| panic!("{e:?} in:\n{body}")))
}

fn number(v: &OpenMetricsValue) -> f64 {
    match v {
        OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => n.as_f64(),
        OpenMetricsValue::Counter(c) => c.value.as_f64(),
        other => panic!("not a number: {other:?}"),
    }
}

/// The value of the one sample of `family` whose labels include `label`.
fn value(e: &Exposition, family: &str, label: Option<(&str, &str)>) -> Option<f64> {
    let f = e.families.get(family)?;
    f.iter_samples()
        .find(|s| {
            let set = s.get_labelset().expect("labels");
            label.is_none_or(|(k, v)| set.get_label_value(k) == Some(v))
        })
        .map(|s| number(&s.value))
}

#[tokio::test(flavor = "multi_thread")]
async fn both_nodes_serve_metrics_that_parse_and_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let (m0, m1) = (free_port(), free_port());
    let plain = dir.path().join("plain.toml");
    std::fs::write(&plain, ENERGY).unwrap();
    let with_metrics = dir.path().join("metrics.toml");
    std::fs::write(
        &with_metrics,
        format!("{ENERGY}[metrics]\nlisten = \"127.0.0.1:{m1}\"\n"),
    )
    .unwrap();
    let (p0, p1) = (free_port(), free_port());
    // One through the flag, one through the config file.
    let flag = vec!["--metrics-listen".to_string(), format!("127.0.0.1:{m0}")];
    let n0 = Node::spawn_with_flags(dir.path(), "prom", "n0", p0, &[], Some(&plain), &flag);
    let n1 = Node::spawn_configured(dir.path(), "prom", "n1", p1, &[p0], Some(&with_metrics));
    let logs = || format!("{}\n{}", n0.log_text(), n1.log_text());

    let settings = swarm_bus::zenoh::ZenohSettings {
        mode: swarm_bus::zenoh::SessionMode::Peer,
        listen: vec![],
        connect: vec![swarm_tests::endpoint(p0), swarm_tests::endpoint(p1)],
        multicast_scouting: false,
        ..swarm_bus::zenoh::ZenohSettings::default()
    };
    let session = swarm_bus::zenoh::open(&settings).await.unwrap();
    let keys = swarm_bus::SwarmKeys::new(swarm_bus::SwarmName::new("prom").unwrap());
    let (leader, term) = wait_for_leader(&session, &keys, &["n0", "n1"], Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no leader; logs:\n{}", logs()));
    let leader_port = if leader.as_str() == "n0" { m0 } else { m1 };

    // The leader's scrape, once its total counts both nodes.
    let on_leader = eventually(Duration::from_secs(15), || async {
        let e = scrape(leader_port)?;
        (value(&e, "swarm_total_members", None) == Some(2.0)).then_some(e)
    })
    .await
    .unwrap_or_else(|| panic!("the leader's total never counted both; logs:\n{}", logs()));
    let on_follower =
        scrape(if leader_port == m0 { m1 } else { m0 }).expect("the follower's scrape");

    for (e, role) in [(&on_leader, "leader"), (&on_follower, "follower")] {
        assert_eq!(
            value(e, "swarm_node_power_watts", Some(("source", "model"))),
            Some(4.0)
        );
        assert_eq!(
            value(e, "swarm_role", Some(("role", role))),
            Some(1.0),
            "{role}"
        );
        assert_eq!(value(e, "swarm_election_term", None), Some(term as f64));
        assert_eq!(value(e, "swarm_members", None), Some(2.0));
        let energy = e
            .families
            .get("swarm_node_energy_joules")
            .expect("energy counter");
        assert_eq!(energy.family_type, OpenMetricsType::Counter);
        assert_eq!(energy.unit, "joules");
        assert!(value(e, "swarm_messages_received", None).unwrap() > 0.0);
        assert!(value(e, "swarm_messages_sent", None).unwrap() > 0.0);
        assert_eq!(
            value(e, "swarm_messages_dropped", Some(("reason", "malformed"))),
            Some(0.0)
        );
        assert!(value(e, "swarm_cadence_interval_seconds", None).unwrap() > 0.0);
    }
    assert_eq!(
        value(&on_leader, "swarm_total_power_watts", None),
        Some(8.0)
    );
    assert_eq!(
        value(
            &on_leader,
            "swarm_total_source_power_watts",
            Some(("source", "model"))
        ),
        Some(8.0)
    );
    assert!(
        !on_follower.families.contains_key("swarm_total_power_watts"),
        "only the leader sums"
    );

    // Each node reports its own memory, and it is what the kernel says of that process.
    for (node, port) in [(&n0, m0), (&n1, m1)] {
        let e = scrape(port).expect("a scrape");
        let anon = value(
            &e,
            "swarm_process_resident_memory_bytes",
            Some(("kind", "anonymous")),
        );
        let file = value(
            &e,
            "swarm_process_resident_memory_bytes",
            Some(("kind", "file")),
        );
        let (anon, file) = (anon.expect("anonymous"), file.expect("file"));
        let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid())).unwrap();
        let rss_kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS");
        let reported_kib = (anon + file) / 1024.0;
        assert!(
            anon > 0.0 && reported_kib > rss_kib * 0.8 && reported_kib < rss_kib * 1.25,
            "{} reports {reported_kib} KiB resident, the kernel says {rss_kib}",
            node.id
        );
        assert!(value(&e, "swarm_process_proportional_memory_bytes", None).unwrap() > 0.0);
    }

    // Anything but /metrics is not found.
    let (status, _, _) = get(m0, "/").unwrap();
    assert!(status.contains("404"), "{status}");
    session.close().await.unwrap();
}

#[test]
fn a_taken_metrics_port_stops_the_node_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let flag = vec!["--metrics-listen".to_string(), format!("127.0.0.1:{port}")];
    let mut node = Node::spawn_with_flags(dir.path(), "taken", "n0", free_port(), &[], None, &flag);
    let status = node.wait(Duration::from_secs(20)).expect("the node stops");
    assert!(!status.success());
    let log = node.log_text();
    assert!(
        log.contains(&format!("metrics listener on 127.0.0.1:{port}")),
        "{log}"
    );
}

/// A one-node swarm's leader serving `/metrics`, once its scrape has the swarm's total: the
/// fullest scrape there is.
struct Leader {
    node: Node,
    metrics: u16,
    _dir: tempfile::TempDir,
}

async fn a_leader(swarm: &str) -> Leader {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("swarm.toml");
    std::fs::write(&config, ENERGY).unwrap();
    let metrics = free_port();
    let flag = vec![
        "--metrics-listen".to_string(),
        format!("127.0.0.1:{metrics}"),
    ];
    let node = Node::spawn_with_flags(
        dir.path(),
        swarm,
        "n0",
        free_port(),
        &[],
        Some(&config),
        &flag,
    );
    let led = eventually(Duration::from_secs(20), || async {
        let (_, _, body) = get(metrics, "/metrics").ok()?;
        (body.contains("swarm_total_members") && body.contains(r#"role="leader"} 1"#)).then_some(())
    })
    .await;
    assert!(led.is_some(), "n0 never led; log:\n{}", node.log_text());
    Leader {
        node,
        metrics,
        _dir: dir,
    }
}

/// `promtool check metrics` of `body`: (exit code, what it printed). Panics without promtool:
/// a check that cannot run must not pass.
fn promtool(body: &str) -> (i32, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool (Debian package prometheus): {e}"));
    let mut stdin = child.stdin.take().expect("promtool's stdin");
    stdin
        .write_all(body.as_bytes())
        .expect("writing to promtool");
    drop(stdin);
    let out = child.wait_with_output().expect("promtool's result");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), said)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_text_format_is_the_default_and_passes_promtool() {
    let leader = a_leader("promtext").await;
    for accept in [None, Some("*/*"), Some("text/plain;version=0.0.4")] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let (status, content_type, body) = get_with(leader.metrics, "/metrics", &headers).unwrap();
        assert!(status.contains("200"), "{status}");
        assert_eq!(
            content_type, "text/plain; version=0.0.4; charset=utf-8",
            "Accept {accept:?}"
        );
        assert!(
            !body.contains("# UNIT") && !body.contains("# EOF"),
            "{body}"
        );
        let (code, said) = promtool(&body);
        assert_eq!(
            code, 0,
            "promtool on the text format said:\n{said}\nof:\n{body}"
        );
        // Counters are typed under their samples' names, the way text-format readers look.
        for line in [
            "# TYPE swarm_messages_sent_total counter",
            "# TYPE swarm_total_energy_joules_total counter",
            "# TYPE swarm_node_power_watts gauge",
        ] {
            assert!(body.lines().any(|l| l == line), "no `{line}` in:\n{body}");
        }
    }
    drop(leader.node);
}

#[tokio::test(flavor = "multi_thread")]
async fn openmetrics_when_asked_for_parses_and_promtool_finds_nothing_but_its_counter_names() {
    let leader = a_leader("promom").await;
    for accept in [PROMETHEUS_ACCEPT, "application/openmetrics-text"] {
        let (status, content_type, body) =
            get_with(leader.metrics, "/metrics", &[("Accept", accept)]).unwrap();
        assert!(status.contains("200"), "{status}");
        assert_eq!(
            content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "Accept {accept:?}"
        );
        let parsed = parse_openmetrics(&body).unwrap_or_else(|e| panic!("{e:?} in:\n{body}"));
        assert_eq!(
            parsed.families["swarm_total_energy_joules"].family_type,
            OpenMetricsType::Counter
        );
        // promtool lints the text format only (all versions, to this day), where an OpenMetrics
        // counter `x` with samples `x_total` reads as an untyped `x_total` without help. That,
        // and only for families this very body declares as counters with help, is allowed;
        // anything else it finds (a missing help, a bad unit, a parse error) fails.
        let (code, said) = promtool(&body);
        assert!(
            code == 0 || code == 3,
            "promtool failed ({code}):\n{said}\nof:\n{body}"
        );
        let counters_with_help: Vec<&str> = body
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
            .filter(|name| body.contains(&format!("# HELP {name} ")))
            .collect();
        assert!(counters_with_help.len() >= 4, "{body}");
        for problem in said.lines() {
            let explained = problem
                .strip_suffix("_total no help text")
                .is_some_and(|family| counters_with_help.contains(&family));
            assert!(explained, "promtool: `{problem}` in:\n{body}");
        }
    }
    drop(leader.node);
}
