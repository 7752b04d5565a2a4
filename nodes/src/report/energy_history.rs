//! `swarm-node energy --since 1h`: every member's samples over a past span, from the history
//! a gateway keeps (docs/history.md), asked with zenoh's `_time` selector.

use super::open_settled;
use crate::config::Config;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use swarm_bus::zenoh::relayed_selector;
use swarm_bus::{Energy, Leaf, NodeId, SwarmKey, SwarmKeys, decode, json::to_json};
use zenoh::query::{ConsolidationMode, QueryTarget};

/// Reads `90s`, `30m`, `1h`, `2d` (or plain seconds) as seconds.
pub fn parse_span(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}`: a whole number then s, m, h or d (say 1h)"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit is s, m, h or d")),
    };
    match n.checked_mul(scale) {
        Some(s) if s > 0 && s <= 366 * 86_400 => Ok(s),
        _ => Err(format!("`{text}`: between 1 s and a year")),
    }
}

/// The selector for the samples of the last `since_s` seconds, in CBOR, of the members
/// `key_expr` names (every member's energy, or one member's).
fn selector_of(key_expr: &str, since_s: u64) -> String {
    format!("{key_expr}?_time=[now(-{since_s}s)..];format=cbor")
}

/// Samples by member, each member's in time order.
pub type ByMember = BTreeMap<NodeId, Vec<Energy>>;

pub async fn gather(
    session: &zenoh::Session,
    keys: &SwarmKeys,
    since_s: u64,
    timeout: Duration,
) -> anyhow::Result<(ByMember, u64)> {
    gather_of(session, &keys.all(Leaf::Energy), since_s, timeout).await
}

/// As `gather`, for the members `key_expr` names.
pub async fn gather_of(
    session: &zenoh::Session,
    key_expr: &str,
    since_s: u64,
    timeout: Duration,
) -> anyhow::Result<(ByMember, u64)> {
    let selector = selector_of(key_expr, since_s);
    // Marked relayed: a node that relays queries for a lone querier passes this one on once.
    let (key, params) = selector.split_once('?').unwrap_or((&selector, ""));
    let replies = session
        .get(relayed_selector(key, params))
        .target(QueryTarget::All)
        .consolidation(ConsolidationMode::None)
        .timeout(timeout)
        .await
        .map_err(|e| anyhow::anyhow!("asking for history: {e}"))?;
    let mut by_member = ByMember::new();
    let mut unreadable = 0u64;
    while let Ok(reply) = replies.recv_async().await {
        let Ok(sample) = reply.result() else {
            unreadable += 1;
            continue;
        };
        let id = sample
            .key_expr()
            .as_str()
            .parse::<SwarmKey>()
            .ok()
            .and_then(|k| k.node_id().cloned());
        match (id, decode::<Energy>(&sample.payload().to_bytes())) {
            (Some(id), Ok(e)) => by_member.entry(id).or_default().push(e),
            _ => unreadable += 1,
        }
    }
    for samples in by_member.values_mut() {
        samples.sort_by_key(|e| e.ts_ms);
        samples.dedup_by_key(|e| e.ts_ms);
    }
    Ok((by_member, unreadable))
}

pub async fn run(
    config: &Config,
    since: &str,
    timeout_ms: u64,
    json_out: bool,
) -> anyhow::Result<()> {
    let since_s = parse_span(since).map_err(|e| anyhow::anyhow!("--since {e}"))?;
    let keys = SwarmKeys::new(config.node.swarm.clone());
    let session = open_settled(config).await?;
    let (by_member, unreadable) =
        gather(&session, &keys, since_s, Duration::from_millis(timeout_ms)).await?;
    if json_out {
        let members: serde_json::Map<String, serde_json::Value> = by_member
            .iter()
            .map(|(id, samples)| {
                let list = samples.iter().map(|e| to_json(e, Some(id))).collect();
                (id.to_string(), serde_json::Value::Array(list))
            })
            .collect();
        println!(
            "{}",
            json!({"since_s": since_s, "members": members, "unreadable": unreadable})
        );
    } else {
        print!("{}", table(&by_member, since_s));
        if unreadable > 0 {
            eprintln!("{unreadable} replies could not be read");
        }
    }
    Ok(())
}

/// One line per member: how many samples, their span, mean power and the energy drawn.
pub fn table(by_member: &ByMember, since_s: u64) -> String {
    if by_member.is_empty() {
        return format!(
            "no history for the last {since_s} s: is a gateway keeping it ([history] in \
             config/swarm.toml, on where the bridge runs)?\n"
        );
    }
    let mut out = format!(
        "{:<16} {:>8} {:>10} {:>10} {:>9}\n",
        "ID", "SAMPLES", "SPAN", "MEAN W", "WH"
    );
    for (id, samples) in by_member {
        let (first, last) = match (samples.first(), samples.last()) {
            (Some(f), Some(l)) => (f, l),
            _ => continue,
        };
        let mean = samples.iter().map(|e| f64::from(e.watts)).sum::<f64>() / samples.len() as f64;
        let drawn = f64::from(last.wh_total - first.wh_total).max(0.0);
        let span_s = last.ts_ms.saturating_sub(first.ts_ms) / 1000;
        out += &format!(
            "{:<16} {:>8} {:>8} s {:>10.2} {:>9.3}\n",
            id.as_str(),
            samples.len(),
            span_s,
            mean,
            drawn
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::{SwarmName, samples};

    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(parse_span("90s"), Ok(90));
        assert_eq!(parse_span("30m"), Ok(1800));
        assert_eq!(parse_span("1h"), Ok(3600));
        assert_eq!(parse_span("2d"), Ok(172_800));
        assert_eq!(parse_span("45"), Ok(45));
        for bad in ["", "h", "1y", "-1h", "0s", "99999999999999999999d", "400d"] {
            assert!(parse_span(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_selector_is_zenohs_time_range() {
        let keys = SwarmKeys::new(SwarmName::new("home").unwrap());
        assert_eq!(
            selector_of(&keys.all(Leaf::Energy), 3600),
            "swarm/home/node/*/energy?_time=[now(-3600s)..];format=cbor"
        );
        assert_eq!(
            selector_of(&keys.energy(&NodeId::new("esp-0").unwrap()), 600),
            "swarm/home/node/esp-0/energy?_time=[now(-600s)..];format=cbor"
        );
    }

    #[test]
    fn the_table_sums_each_member() {
        let mut a = samples::energy();
        let mut b = samples::energy();
        a.ts_ms = 1_000_000;
        a.watts = 2.0;
        a.wh_total = 10.0;
        b.ts_ms = 1_060_000;
        b.watts = 4.0;
        b.wh_total = 10.5;
        let by = ByMember::from([(NodeId::new("pi-1").unwrap(), vec![a, b])]);
        let t = table(&by, 3600);
        assert!(t.contains("pi-1"), "{t}");
        assert!(t.contains("60 s"), "{t}");
        assert!(t.contains("3.00"), "{t}");
        assert!(t.contains("0.500"), "{t}");
        assert!(table(&ByMember::new(), 60).contains("no history"));
    }
}
