//! What `/metrics` says: one snapshot of the node turned into the OpenMetrics text format by
//! prometheus-client, or into the Prometheus text format 0.0.4 that most scrapers and tools
//! read. Built afresh for each scrape from the node's view, so the figures are the view's own
//! and nothing has to be kept in step with it between scrapes.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use swarm_bus::{CadenceMode, Energy, Role, SwarmEnergy};

type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;
type Labelled<M> = Family<Vec<(String, String)>, M>;

/// The two exposition formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0, for scrapers that ask for it (Prometheus does by default).
    OpenMetrics,
    /// The Prometheus text format 0.0.4: what anything else gets, `curl` and promtool included.
    Text,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("encoding the metrics: {0}")]
    Encode(#[from] std::fmt::Error),
    #[error("metric family `{family}` is an OpenMetrics {kind}, which has no text-format form")]
    NoTextForm { family: String, kind: String },
}

/// The node as one scrape sees it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub swarm: String,
    pub node: String,
    pub energy: Option<Energy>,
    pub role: Role,
    pub term: u64,
    pub cadence_ms: u32,
    pub cadence_mode: CadenceMode,
    /// Members this node sees, itself included.
    pub members: usize,
    pub received: u64,
    pub sent: u64,
    pub dropped: swarm_bus::zenoh::DropSnapshot,
    /// The swarm's total, on the leader only (it alone sums it).
    pub total: Option<SwarmEnergy>,
    /// The board's watched inputs (`[board]`) whose level is known: name, active.
    pub board_inputs: Vec<(&'static str, bool)>,
    /// What the bridge in this node refused, by reason; empty without `--bridge`.
    pub bridge_dropped: Vec<(&'static str, u64)>,
    /// Each worker's agreement with recent decisions on replicated tasks: (worker, agreed,
    /// decided).
    pub agreement: Vec<(String, u32, u32)>,
    /// This process's memory as its own /proc says; `None` where it cannot be read.
    pub memory: Option<crate::process_memory::Memory>,
}

/// Units the registry has no name for.
fn other(unit: &str) -> Unit {
    Unit::Other(unit.to_string())
}

fn label(key: &str, value: &str) -> Vec<(String, String)> {
    vec![(key.to_string(), value.to_string())]
}

fn gauge(registry: &mut Registry, name: &str, help: &str, unit: Option<Unit>, value: f64) {
    let g = FloatGauge::default();
    g.set(value);
    match unit {
        Some(unit) => registry.register_with_unit(name, help, unit, g),
        None => registry.register(name, help, g),
    }
}

/// A counter read from a total kept elsewhere (the node's own, restored across restarts).
fn counter(registry: &mut Registry, name: &str, help: &str, unit: Option<Unit>, value: f64) {
    let c = FloatCounter::default();
    c.inc_by(if value.is_finite() {
        value.max(0.0)
    } else {
        0.0
    });
    match unit {
        Some(unit) => registry.register_with_unit(name, help, unit, c),
        None => registry.register(name, help, c),
    }
}

pub fn render(s: &Snapshot, format: Format) -> Result<String, RenderError> {
    let openmetrics = render_openmetrics(s)?;
    match format {
        Format::OpenMetrics => Ok(openmetrics),
        Format::Text => to_text(&openmetrics),
    }
}

/// OpenMetrics 1.0 to the text format 0.0.4. For the types this node exposes they differ in
/// three ways: a counter's HELP and TYPE name its sample (`x_total`) rather than its family
/// (`x`), which is why promtool, reading text, found no help for any counter; the text format
/// has no UNIT line (the unit is in the name already) and no `# EOF`; and `unknown` is
/// `untyped` there.
fn to_text(openmetrics: &str) -> Result<String, RenderError> {
    let types: HashMap<&str, &str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split_once(' '))
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        let Some(comment) = line.strip_prefix("# ") else {
            text.push_str(line);
            text.push('\n');
            continue;
        };
        let (keyword, rest) = comment.split_once(' ').unwrap_or((comment, ""));
        if keyword != "HELP" && keyword != "TYPE" {
            continue;
        }
        let (family, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        let kind = types.get(family).copied().unwrap_or("unknown");
        let (suffix, kind_text) = match kind {
            "counter" => ("_total", "counter"),
            "gauge" => ("", "gauge"),
            "unknown" => ("", "untyped"),
            other => {
                return Err(RenderError::NoTextForm {
                    family: family.to_string(),
                    kind: other.to_string(),
                });
            }
        };
        let tail = if keyword == "TYPE" { kind_text } else { tail };
        writeln!(text, "# {keyword} {family}{suffix} {tail}")?;
    }
    Ok(text)
}

fn render_openmetrics(s: &Snapshot) -> Result<String, std::fmt::Error> {
    let labels = [
        (Cow::Borrowed("swarm"), Cow::Owned(s.swarm.clone())),
        (Cow::Borrowed("node"), Cow::Owned(s.node.clone())),
    ];
    let mut registry = Registry::with_prefix_and_labels("swarm", labels.into_iter());
    if let Some(e) = &s.energy {
        node_energy(&mut registry, e);
    }
    if let Some(m) = &s.memory {
        process_memory(&mut registry, m);
    }
    let cadence = Labelled::<FloatGauge>::default();
    cadence
        .get_or_create(&label("mode", s.cadence_mode.as_str()))
        .set(f64::from(s.cadence_ms) / 1000.0);
    registry.register_with_unit(
        "cadence_interval",
        "Heartbeat interval in force, by cadence mode",
        Unit::Seconds,
        cadence,
    );
    // A state set: one series per role, 1 for the role held.
    let roles = Labelled::<Gauge>::default();
    for role in Role::ALL {
        roles
            .get_or_create(&label("role", role.as_str()))
            .set(i64::from(*role == s.role));
    }
    registry.register("role", "1 for the role this node holds", roles);
    gauge(
        &mut registry,
        "election_term",
        "Election term",
        None,
        s.term as f64,
    );
    gauge(
        &mut registry,
        "members",
        "Members this node sees, itself included",
        None,
        s.members as f64,
    );
    counter(
        &mut registry,
        "messages_received",
        "Bus messages received and accepted",
        None,
        s.received as f64,
    );
    counter(
        &mut registry,
        "messages_sent",
        "Bus messages published",
        None,
        s.sent as f64,
    );
    let dropped = Labelled::<Counter>::default();
    for (reason, n) in s.dropped {
        dropped.get_or_create(&label("reason", reason)).inc_by(n);
    }
    registry.register(
        "messages_dropped",
        "Bus messages refused on receipt, by reason",
        dropped,
    );
    if !s.bridge_dropped.is_empty() {
        let refused = Labelled::<Counter>::default();
        for (reason, n) in &s.bridge_dropped {
            refused.get_or_create(&label("reason", reason)).inc_by(*n);
        }
        registry.register(
            "bridge_messages_dropped",
            "MQTT messages and connections the bridge refused, by reason",
            refused,
        );
    }
    if let Some(total) = &s.total {
        swarm_energy(&mut registry, total);
    }
    if !s.agreement.is_empty() {
        let ratio = Family::<Vec<(String, String)>, FloatGauge>::default();
        let decided = Labelled::<Gauge>::default();
        for (worker, agreed, out_of) in &s.agreement {
            let l = label("worker", worker);
            let share = if *out_of == 0 {
                1.0
            } else {
                f64::from(*agreed) / f64::from(*out_of)
            };
            ratio.get_or_create(&l).set(share);
            decided.get_or_create(&l).set(i64::from(*out_of));
        }
        registry.register(
            "task_agreement_ratio",
            "Share of recent decisions on replicated tasks each worker's answer agreed with",
            ratio,
        );
        registry.register(
            "task_agreement_decisions",
            "Recent decisions on replicated tasks each worker answered in",
            decided,
        );
    }
    if !s.board_inputs.is_empty() {
        let inputs = Labelled::<Gauge>::default();
        for (name, active) in &s.board_inputs {
            inputs
                .get_or_create(&label("input", name))
                .set(i64::from(*active));
        }
        registry.register("board_input", "The board's inputs: 1 active, 0 not", inputs);
    }
    let mut text = String::new();
    encode(&mut text, &registry)?;
    Ok(text)
}

fn node_energy(registry: &mut Registry, e: &Energy) {
    let power = Labelled::<FloatGauge>::default();
    power
        .get_or_create(&label("source", e.source.as_str()))
        .set(f64::from(e.watts));
    registry.register_with_unit(
        "node_power",
        "Power this node draws, labelled with where the figure comes from",
        other("watts"),
        power,
    );
    counter(
        registry,
        "node_energy",
        "Energy this node has used since its state directory was made",
        Some(Unit::Joules),
        f64::from(e.wh_total) * 3600.0,
    );
    counter(
        registry,
        "node_co2",
        "CO2 emitted for this node's energy at the configured carbon intensity",
        Some(Unit::Grams),
        f64::from(e.co2_g),
    );
    gauge(
        registry,
        "node_cpu_utilisation",
        "CPU utilisation",
        Some(other("ratio")),
        f64::from(e.cpu_pct) / 100.0,
    );
    if let Some(eff) = e.eff_pct {
        gauge(
            registry,
            "node_efficiency",
            "Useful work per joule against the device's best (docs/energy.md#rating)",
            Some(other("ratio")),
            f64::from(eff) / 100.0,
        );
    }
    if let Some(c) = e.temp_c.filter(|c| c.is_finite()) {
        gauge(
            registry,
            "node_temperature",
            "Temperature",
            Some(Unit::Celsius),
            f64::from(c),
        );
    }
    if let Some(pct) = e.battery_pct {
        gauge(
            registry,
            "node_battery",
            "Battery charge",
            Some(other("ratio")),
            f64::from(pct) / 100.0,
        );
    }
    if let Some(charging) = e.charging {
        gauge(
            registry,
            "node_battery_charging",
            "1 while the battery charges",
            None,
            f64::from(u8::from(charging)),
        );
    }
}

fn swarm_energy(registry: &mut Registry, t: &SwarmEnergy) {
    gauge(
        registry,
        "total_power",
        "Power the whole swarm draws, as its leader sums it",
        Some(other("watts")),
        f64::from(t.watts),
    );
    counter(
        registry,
        "total_energy",
        "Energy the swarm's members have used, summed",
        Some(Unit::Joules),
        f64::from(t.wh_total) * 3600.0,
    );
    counter(
        registry,
        "total_co2",
        "CO2 for the swarm's energy, summed",
        Some(Unit::Grams),
        f64::from(t.co2_g),
    );
    gauge(
        registry,
        "total_members",
        "Members in the swarm's sum",
        None,
        f64::from(t.nodes),
    );
    let by_class = Labelled::<FloatGauge>::default();
    for s in &t.by_class {
        by_class
            .get_or_create(&label("class", s.kind.as_str()))
            .set(f64::from(s.watts));
    }
    registry.register_with_unit(
        "total_class_power",
        "The swarm's power by device class",
        other("watts"),
        by_class,
    );
    let by_source = Labelled::<FloatGauge>::default();
    for s in &t.by_source {
        by_source
            .get_or_create(&label("source", s.kind.as_str()))
            .set(f64::from(s.watts));
    }
    registry.register_with_unit(
        "total_source_power",
        "The swarm's power by where the figures come from",
        other("watts"),
        by_source,
    );
    if let Some(eff) = t.eff_pct {
        gauge(
            registry,
            "total_efficiency",
            "The swarm's useful work per joule against its members' best",
            Some(other("ratio")),
            f64::from(eff) / 100.0,
        );
    }
}

/// The node's own memory, as it reads it: on a Pi, the figure to hold against the footprint
/// bench's (docs/bridge.md).
fn process_memory(registry: &mut Registry, m: &crate::process_memory::Memory) {
    const KIB: f64 = 1024.0;
    let resident = Labelled::<FloatGauge>::default();
    for (kind, kib) in [("anonymous", m.anon), ("file", m.file)] {
        resident
            .get_or_create(&label("kind", kind))
            .set(kib as f64 * KIB);
    }
    registry.register_with_unit(
        "process_resident_memory",
        "This process's resident memory by kind: anonymous (its own heap and stacks) or file-backed (mostly the binary's code, shared with other processes running it)",
        Unit::Bytes,
        resident,
    );
    gauge(
        registry,
        "process_proportional_memory",
        "This process's proportional set size: resident memory with shared pages split among the processes sharing them",
        Some(Unit::Bytes),
        m.pss as f64 * KIB,
    );
    gauge(
        registry,
        "process_peak_resident_memory",
        "The most resident memory this process has held",
        Some(Unit::Bytes),
        m.peak as f64 * KIB,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            swarm: "lab".into(),
            node: "pi-a".into(),
            energy: Some(swarm_bus::samples::energy()),
            role: Role::Leader,
            term: 7,
            cadence_ms: 500,
            cadence_mode: CadenceMode::Normal,
            members: 3,
            received: 120,
            sent: 80,
            dropped: {
                let drops = swarm_bus::zenoh::DropCounters::default();
                drops.count_decode(&swarm_bus::DecodeError::Truncated);
                for _ in 0..2 {
                    drops.count_decode(&swarm_bus::DecodeError::Malformed {
                        expected: "test",
                        detail: String::new(),
                    });
                }
                drops.count_refused(swarm_bus::zenoh::Refused::NonMember);
                drops.snapshot()
            },
            total: Some(swarm_bus::samples::swarm_energy()),
            board_inputs: vec![("power_good", true)],
            bridge_dropped: vec![("device_claim", 3), ("acl", 0)],
            agreement: vec![("esp-04".into(), 3, 4)],
            memory: Some(crate::process_memory::Memory {
                rss: 18_000,
                anon: 2_500,
                file: 15_500,
                peak: 20_000,
                pss: 6_000,
            }),
        }
    }

    #[test]
    fn names_follow_the_conventions_and_values_are_the_snapshot() {
        let text = render(&snapshot(), Format::OpenMetrics).unwrap();
        for line in [
            r#"swarm_node_power_watts{swarm="lab",node="pi-a",source="model"} 3.25"#,
            r#"swarm_node_energy_joules_total{swarm="lab",node="pi-a"} 4444200.0"#,
            r#"swarm_node_co2_grams_total{swarm="lab",node="pi-a"} 592.5"#,
            r#"swarm_cadence_interval_seconds{swarm="lab",node="pi-a",mode="normal"} 0.5"#,
            r#"swarm_role{swarm="lab",node="pi-a",role="leader"} 1"#,
            r#"swarm_role{swarm="lab",node="pi-a",role="follower"} 0"#,
            r#"swarm_election_term{swarm="lab",node="pi-a"} 7.0"#,
            r#"swarm_messages_sent_total{swarm="lab",node="pi-a"} 80.0"#,
            r#"swarm_messages_dropped_total{swarm="lab",node="pi-a",reason="malformed"} 2"#,
            r#"swarm_messages_dropped_total{swarm="lab",node="pi-a",reason="non_member"} 1"#,
            r#"swarm_bridge_messages_dropped_total{swarm="lab",node="pi-a",reason="device_claim"} 3"#,
            r#"swarm_total_power_watts{swarm="lab",node="pi-a"} 14.75"#,
            r#"swarm_total_source_power_watts{swarm="lab",node="pi-a",source="rapl"} 8.25"#,
            r#"swarm_board_input{swarm="lab",node="pi-a",input="power_good"} 1"#,
            r#"swarm_task_agreement_ratio{swarm="lab",node="pi-a",worker="esp-04"} 0.75"#,
            r#"swarm_task_agreement_decisions{swarm="lab",node="pi-a",worker="esp-04"} 4"#,
            r#"swarm_process_resident_memory_bytes{swarm="lab",node="pi-a",kind="anonymous"} 2560000.0"#,
            r#"swarm_process_resident_memory_bytes{swarm="lab",node="pi-a",kind="file"} 15872000.0"#,
            r#"swarm_process_proportional_memory_bytes{swarm="lab",node="pi-a"} 6144000.0"#,
            r#"swarm_process_peak_resident_memory_bytes{swarm="lab",node="pi-a"} 20480000.0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn a_follower_without_a_sample_says_less_but_still_says_who_it_is() {
        let text = render(
            &Snapshot {
                energy: None,
                total: None,
                role: Role::Follower,
                ..snapshot()
            },
            Format::OpenMetrics,
        )
        .unwrap();
        assert!(!text.contains("swarm_node_power_watts"), "{text}");
        assert!(!text.contains("swarm_total_"), "{text}");
        assert!(text.contains(r#"swarm_role{swarm="lab",node="pi-a",role="follower"} 1"#));
    }

    #[test]
    fn the_text_format_names_counters_by_their_samples_and_has_no_unit_or_eof() {
        let text = render(&snapshot(), Format::Text).unwrap();
        for line in [
            "# HELP swarm_messages_sent_total Bus messages published.",
            "# TYPE swarm_messages_sent_total counter",
            r#"swarm_messages_sent_total{swarm="lab",node="pi-a"} 80.0"#,
            "# TYPE swarm_node_energy_joules_total counter",
            "# HELP swarm_node_power_watts Power this node draws, labelled with where the figure \
             comes from.",
            "# TYPE swarm_node_power_watts gauge",
            r#"swarm_node_power_watts{swarm="lab",node="pi-a",source="model"} 3.25"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(
            !text.contains("# UNIT") && !text.contains("# EOF"),
            "{text}"
        );
        // Every sample is announced by a TYPE and a HELP of its own name.
        for sample in text.lines().filter(|l| !l.starts_with('#')) {
            let name = sample.split(['{', ' ']).next().unwrap();
            for keyword in ["TYPE", "HELP"] {
                let line = format!("# {keyword} {name} ");
                assert!(
                    text.contains(&line),
                    "no `{line}` for `{sample}` in:\n{text}"
                );
            }
        }
    }

    #[test]
    fn the_text_format_spells_unknown_untyped_and_refuses_types_it_cannot_say() {
        let om = "# HELP a_thing Something.\n# TYPE a_thing unknown\na_thing 1\n# EOF\n";
        assert_eq!(
            to_text(om).unwrap(),
            "# HELP a_thing Something.\n# TYPE a_thing untyped\na_thing 1\n"
        );
        let info = "# TYPE build info\nbuild_info{version=\"1\"} 1\n# EOF\n";
        assert!(matches!(
            to_text(info),
            Err(RenderError::NoTextForm { family, kind }) if family == "build" && kind == "info"
        ));
    }
}
