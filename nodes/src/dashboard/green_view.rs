//! `swarm-node green`: what each node and the whole swarm draws, has used and emitted.

use super::Ui;
use super::format::{cadence, or_dash, waiting};
use super::model::{HISTORY, Member, Model, eff_pct};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, RenderDirection, Row, Sparkline, Table};
use swarm_bus::Rating;

/// Widths of the columns around the history; the history takes what is left.
const WATTS_W: u16 = 9;
const SOURCE_W: u16 = 8;
const WH_W: u16 = 11;
const CO2_W: u16 = 10;
const CADENCE_W: u16 = 21;
const RATING_W: u16 = 8;
const SPACING: u16 = 2;

pub fn render(frame: &mut Frame, model: &Model, now_ms: u64, ui: &Ui) {
    let [total, nodes, footer] = Layout::vertical([
        Constraint::Length(6),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    render_total(frame, total, model, now_ms, ui);
    render_nodes(frame, nodes, model, now_ms, ui);
    frame.render_widget(super::format::footer(model, true), footer);
}

fn render_total(frame: &mut Frame, area: Rect, model: &Model, now_ms: u64, ui: &Ui) {
    let mut title = vec![Span::raw(format!(" swarm {} · power ", ui.swarm))];
    if let Some(standing) = super::format::standing(model, now_ms) {
        title.extend([Span::raw("· "), standing, Span::raw(" ")]);
    }
    let block = Block::bordered().title(Line::from(title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [line, spark] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
    let t = model.totals();
    let mut spans = vec![Span::raw(" "), Span::raw(super::format::last_known(model))];
    spans.push(if t.reporting == 0 {
        Span::raw("no energy samples yet").dim()
    } else {
        Span::raw(format!(
            "total {:.1} W · {:.3} Wh · {:.2} g CO2 · rating {} · {} of {} node(s) reporting",
            t.watts,
            t.wh,
            t.co2_g,
            rating(t.eff_pct),
            t.reporting,
            model.member_count()
        ))
        .bold()
    });
    let text = Line::from(spans);
    frame.render_widget(text, line);
    // Newest at the right edge: handed over newest first and drawn right to left.
    let deciwatts: Vec<u64> = model
        .total_history()
        .iter()
        .rev()
        .map(|w| (f64::from(w) * 10.0).round() as u64)
        .collect();
    frame.render_widget(
        Sparkline::default()
            .data(&deciwatts)
            .direction(RenderDirection::RightToLeft)
            .green(),
        spark.inner(ratatui::layout::Margin::new(1, 0)),
    );
}

fn render_nodes(frame: &mut Frame, area: Rect, model: &Model, now_ms: u64, ui: &Ui) {
    let count = model.member_count();
    if count == 0 {
        frame.render_widget(waiting(ui, " nodes ", model, now_ms), area);
        return;
    }
    let fits = usize::from(area.height.saturating_sub(3)).max(1);
    let first = ui.scroll.min(count.saturating_sub(fits));
    let shown: Vec<&Member> = model.members().skip(first).take(fits).collect();
    let id_w = shown
        .iter()
        .map(|m| m.id.as_str().len())
        .max()
        .unwrap_or(2)
        .clamp(2, 24) as u16;
    let fixed = id_w + WATTS_W + SOURCE_W + WH_W + CO2_W + CADENCE_W + RATING_W + SPACING * 7;
    let history_w = area
        .width
        .saturating_sub(2 + fixed)
        .min(HISTORY as u16)
        .max(1);
    let widths = [
        Constraint::Length(id_w),
        Constraint::Length(WATTS_W),
        Constraint::Length(history_w),
        Constraint::Length(SOURCE_W),
        Constraint::Length(WH_W),
        Constraint::Length(CO2_W),
        Constraint::Length(CADENCE_W),
        Constraint::Length(RATING_W),
    ];
    let header = Row::new([
        "ID".to_string(),
        "WATTS".into(),
        format!("LAST {HISTORY} SAMPLES"),
        "SOURCE".into(),
        "ENERGY".into(),
        "CO2".into(),
        "CADENCE".into(),
        "RATING".into(),
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = shown.iter().map(|m| node_row(m, usize::from(history_w)));
    let title = super::format::table_title("nodes", count, first, shown.len(), fits, model);
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(SPACING)
        .block(Block::bordered().title(title));
    frame.render_widget(table, area);
}

fn node_row<'a>(m: &Member, history_w: usize) -> Row<'a> {
    let e = m.energy.as_ref();
    let row = Row::new([
        m.id.to_string(),
        or_dash(e.map(|e| format!("{:.1} W", e.watts))),
        m.watts.sparkline(history_w),
        or_dash(e.map(|e| e.source)),
        or_dash(e.map(|e| format!("{:.3} Wh", e.wh_total))),
        or_dash(e.map(|e| format!("{:.2} g", e.co2_g))),
        cadence(m.cadence),
        rating(e.and_then(eff_pct)),
    ]);
    if m.unconfirmed { row.dark_gray() } else { row }
}

/// The letter and the figure it comes from, as `swarm-node energy` prints it.
fn rating(eff_pct: Option<u8>) -> String {
    or_dash(eff_pct.map(|p| format!("{} ({p}%)", Rating::from_eff_pct(p))))
}
