//! `swarm-node energy [--json] [--total] [--watch]`: every member's power and the swarm's sum.

use super::{SwarmView, or_dash, table};
use swarm_bus::json::to_json;
use swarm_bus::{Energy, Rating, SwarmEnergy};

/// One object per member: what its `energy` queryable answers, plus its rating letter.
pub fn json(view: &SwarmView) -> serde_json::Value {
    serde_json::Value::Array(
        view.energy
            .iter()
            .map(|(id, e)| {
                let mut row = to_json(e, Some(id));
                add_rating(&mut row, e.eff_pct);
                row
            })
            .collect(),
    )
}

/// The leader's total as its queryable answers it, plus the rating letter; or, when no leader
/// answered, the same sum made here from the members that did (`leader` is then absent).
pub fn total_json(view: &SwarmView) -> serde_json::Value {
    let mut value = match &view.total {
        Some(total) => to_json(total, None),
        None => serde_json::json!({
            "nodes": view.energy.len(),
            "watts": sum(view, |e| e.watts),
            "wh_total": sum(view, |e| e.wh_total),
            "co2_g": sum(view, |e| e.co2_g),
        }),
    };
    add_rating(&mut value, view.total.as_ref().and_then(|t| t.eff_pct));
    value
}

fn add_rating(value: &mut serde_json::Value, eff_pct: Option<u8>) {
    if let (serde_json::Value::Object(map), Some(pct)) = (value, eff_pct) {
        let letter = Rating::from_eff_pct(pct).to_string();
        map.insert("rating".into(), serde_json::Value::String(letter));
    }
}

fn sum(view: &SwarmView, field: impl Fn(&Energy) -> f32) -> f64 {
    view.energy.values().map(|e| f64::from(field(e))).sum()
}

fn rating(eff_pct: Option<u8>) -> String {
    or_dash(eff_pct.map(|p| format!("{} ({p}%)", Rating::from_eff_pct(p))))
}

pub fn render(view: &SwarmView) -> String {
    let mut t = table(&[
        "ID", "WATTS", "SOURCE", "CPU", "TEMP", "BATTERY", "WH TOTAL", "CO2", "RATING",
    ]);
    for (id, e) in &view.energy {
        t.add_row(vec![
            id.to_string(),
            format!("{:.2} W", e.watts),
            e.source.to_string(),
            format!("{}%", e.cpu_pct),
            or_dash(e.temp_c.map(|c| format!("{c:.0} °C"))),
            or_dash(e.battery_pct.map(|b| format!("{b}%"))),
            format!("{:.3} Wh", e.wh_total),
            format!("{:.2} g", e.co2_g),
            rating(e.eff_pct),
        ]);
    }
    let summary = match &view.total {
        Some(total) => render_total(total),
        None => format!(
            "{} node(s): {:.2} W now, {:.3} Wh, {:.2} g CO2 (no leader answered: summed here)\n",
            view.energy.len(),
            sum(view, |e| e.watts),
            sum(view, |e| e.wh_total),
            sum(view, |e| e.co2_g),
        ),
    };
    format!("{t}\n{summary}")
}

/// The leader's total, its rating, and where the watts come from.
fn render_total(total: &SwarmEnergy) -> String {
    let classes: Vec<String> = total
        .by_class
        .iter()
        .map(|s| format!("{} {:.2} W ({})", s.kind, s.watts, s.nodes))
        .collect();
    let sources: Vec<String> = total
        .by_source
        .iter()
        .map(|s| format!("{} {:.2} W ({})", s.kind, s.watts, s.nodes))
        .collect();
    format!(
        "swarm: {} node(s), {:.2} W now, {:.3} Wh, {:.2} g CO2, rating {} (summed by {}, term {})\n\
         by class: {}\nby source: {}\n",
        total.nodes,
        total.watts,
        total.wh_total,
        total.co2_g,
        rating(total.eff_pct),
        total.leader,
        total.term,
        or_dash((!classes.is_empty()).then(|| classes.join(", "))),
        or_dash((!sources.is_empty()).then(|| sources.join(", "))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::NodeId;

    fn view(total: Option<SwarmEnergy>) -> SwarmView {
        let mut view = SwarmView::default();
        for (id, watts) in [("pi-a", 3.0), ("pi-b", 2.5)] {
            let e = Energy {
                watts,
                ..swarm_bus::samples::energy()
            };
            view.energy.insert(NodeId::new(id).unwrap(), e);
        }
        view.total = total;
        view
    }

    #[test]
    fn the_leader_total_is_shown_with_its_rating_and_breakdowns() {
        let text = render(&view(Some(swarm_bus::samples::swarm_energy())));
        assert!(text.contains("rating E (23%)"), "{text}");
        assert!(text.contains("summed by pi-gw-01, term 7"), "{text}");
        assert!(
            text.contains("by source: model 6.25 W (2), rapl 8.25 W (1)"),
            "{text}"
        );
        // Each member's own rating: the sample states 41 %.
        assert!(text.contains("D (41%)"), "{text}");
        let total = total_json(&view(Some(swarm_bus::samples::swarm_energy())));
        assert_eq!(total["rating"], "E");
        assert_eq!(total["leader"], "pi-gw-01");
    }

    #[test]
    fn without_a_leader_the_members_are_summed_here() {
        let text = render(&view(None));
        assert!(text.contains("2 node(s): 5.50 W now"), "{text}");
        assert!(text.contains("no leader answered"), "{text}");
        let total = total_json(&view(None));
        assert_eq!(total["watts"], 5.5);
        assert!(total.get("leader").is_none(), "{total}");
        let rows = json(&view(None));
        assert_eq!(rows[0]["rating"], "D");
        assert_eq!(rows[0]["source"], "model");
    }
}
