//! `swarm-node energy [--json]`.

use super::{SwarmView, or_dash, table};
use swarm_bus::json::to_json;

/// The same JSON object per node as its `energy` queryable answers.
pub fn json(view: &SwarmView) -> serde_json::Value {
    serde_json::Value::Array(
        view.energy
            .iter()
            .map(|(id, e)| to_json(e, Some(id)))
            .collect(),
    )
}

pub fn render(view: &SwarmView) -> String {
    let mut t = table(&[
        "ID", "WATTS", "SOURCE", "CPU", "TEMP", "BATTERY", "WH TOTAL", "CO2",
    ]);
    let (mut watts, mut wh, mut co2) = (0.0f64, 0.0f64, 0.0f64);
    for (id, e) in &view.energy {
        watts += f64::from(e.watts);
        wh += f64::from(e.wh_total);
        co2 += f64::from(e.co2_g);
        t.add_row(vec![
            id.to_string(),
            format!("{:.2} W", e.watts),
            e.source.to_string(),
            format!("{}%", e.cpu_pct),
            or_dash(e.temp_c.map(|c| format!("{c:.0} °C"))),
            or_dash(e.battery_pct.map(|b| format!("{b}%"))),
            format!("{:.3} Wh", e.wh_total),
            format!("{:.2} g", e.co2_g),
        ]);
    }
    format!(
        "{t}\n{} node(s): {watts:.2} W now, {wh:.3} Wh, {co2:.2} g CO2\n",
        view.energy.len()
    )
}
