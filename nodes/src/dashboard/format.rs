//! Text and small widgets both dashboards share, so they read alike.

use super::Ui;
use super::contact::Standing;
use super::model::Model;
use ratatui::layout::Alignment;
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use swarm_bus::CadenceMode;

/// "340 ms", "4.2 s", "12 min 5 s", "3 h 20 min".
pub fn ago(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

pub fn interval(ms: u32) -> String {
    if ms < 10_000 {
        format!("{ms} ms")
    } else {
        format!("{} s", ms / 1000)
    }
}

pub fn or_dash<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// The mode from the node's own state answer. A heartbeat's interval alone cannot tell it:
/// the leader's is capped, a large swarm stretches followers' with its size, and the base is
/// each node's own config.
pub fn cadence(c: Option<(CadenceMode, bool)>) -> String {
    match c {
        Some((mode, true)) => format!("{mode} (pinned)"),
        Some((mode, false)) => mode.to_string(),
        None => "-".into(),
    }
}

/// What an empty swarm shows: that we are listening, and where.
pub fn waiting<'a>(ui: &Ui, title: &'a str, model: &Model, now_ms: u64) -> Paragraph<'a> {
    let what = match model.standing() {
        Standing::Lost { since_ms } => Line::from(format!(
            "lost contact with the swarm {} ago; reconnecting …",
            ago(now_ms.saturating_sub(since_ms))
        ))
        .bold()
        .red(),
        _ => Line::from(format!("waiting for nodes of swarm {} …", ui.swarm)).bold(),
    };
    Paragraph::new(vec![
        Line::default(),
        what,
        Line::from(ui.reach.clone()).dim(),
    ])
    .alignment(Alignment::Center)
    .block(Block::bordered().title(title))
}

/// Whether the dashboard sees the swarm, for its header; `None` while all is well.
pub fn standing<'a>(model: &Model, now_ms: u64) -> Option<Span<'a>> {
    match model.standing() {
        Standing::Lost { since_ms } => Some(
            Span::raw(format!(
                "lost contact with the swarm for {}",
                ago(now_ms.saturating_sub(since_ms))
            ))
            .bold()
            .red(),
        ),
        Standing::InContact if model.unconfirmed() > 0 => Some(
            Span::raw("back in contact, checking who is still there")
                .bold()
                .yellow(),
        ),
        Standing::InContact | Standing::Waiting => None,
    }
}

/// Before figures that may be out of date: they are, while out of contact.
pub fn last_known(model: &Model) -> &'static str {
    match model.standing() {
        Standing::Lost { .. } => "last known: ",
        _ => "",
    }
}

/// " members (3) ", " members 1–10 of 40 (↑↓ scroll) ", with how many are unconfirmed.
pub fn table_title(
    what: &str,
    count: usize,
    first: usize,
    shown: usize,
    fits: usize,
    model: &Model,
) -> String {
    let unconfirmed = match model.unconfirmed() {
        0 => String::new(),
        n => format!(", {n} unconfirmed"),
    };
    if count > fits {
        format!(
            " {what} {}–{} of {count}{unconfirmed} (↑↓ scroll) ",
            first + 1,
            first + shown
        )
    } else {
        format!(" {what} ({count}{unconfirmed}) ")
    }
}

pub fn footer<'a>(model: &Model, scrolls: bool) -> Line<'a> {
    let mut spans = vec![Span::raw(" q").bold(), Span::raw(" quit")];
    if scrolls {
        spans.push(Span::raw("  ↑↓").bold());
        spans.push(Span::raw(" scroll"));
    }
    spans.push(Span::raw(format!(
        "   {} bad message(s) dropped",
        model.dropped()
    )));
    if model.refused() > 0 {
        spans.push(
            Span::raw(format!(
                ", {} node(s) over the {} shown",
                model.refused(),
                super::model::MAX_MEMBERS
            ))
            .yellow(),
        );
    }
    Line::from(spans).dim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_every_scale() {
        assert_eq!(ago(340), "340 ms");
        assert_eq!(ago(4_240), "4.2 s");
        assert_eq!(ago(725_000), "12 min 5 s");
        assert_eq!(ago(12_000_000), "3 h 20 min");
        assert!(ago(u64::MAX).ends_with(" min"));
    }
}
