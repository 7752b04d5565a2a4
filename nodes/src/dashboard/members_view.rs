//! `swarm-node dashboard`: who is in the swarm, who leads, and what just happened.

use super::Ui;
use super::format::{ago, cadence, interval, or_dash, waiting};
use super::model::{Departure, EventKind, Member, Model};
use crate::report::time_of_day;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table};
use swarm_bus::Role;

/// Rows of the events pane, borders included: enough for an election's story (leave, new
/// term, new leader) with room to spare; on a short terminal a third of it, so the members
/// keep the most.
const EVENTS_HEIGHT: u16 = 12;

pub fn render(frame: &mut Frame, model: &Model, now_ms: u64, ui: &Ui) {
    let area = frame.area();
    let events_height = EVENTS_HEIGHT.min(area.height.saturating_sub(4) / 3 + 2);
    let [header, members, events, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Fill(1),
        Constraint::Length(events_height),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(header_line(model, now_ms, ui), header);
    render_members(frame, members, model, now_ms, ui);
    render_events(frame, events, model, now_ms);
    frame.render_widget(super::format::footer(model, true), footer);
}

fn header_line<'a>(model: &Model, now_ms: u64, ui: &Ui) -> Paragraph<'a> {
    let mut spans = vec![Span::raw(" ")];
    if let Some(standing) = super::format::standing(model, now_ms) {
        spans.extend([standing, Span::raw(" · ")]);
    }
    spans.push(Span::raw(super::format::last_known(model)));
    match model.leader() {
        Some(l) => {
            spans.push(Span::raw("leader "));
            spans.push(Span::raw(l.to_string()).bold().green());
            spans.push(Span::raw(format!(" · term {}", model.term())));
            if let Some(since) = model.leader_since_ms() {
                spans.push(Span::raw(format!(
                    " · for {}",
                    ago(now_ms.saturating_sub(since))
                )));
            }
            if let Some(v) = model.voters() {
                spans.push(Span::raw(format!(" · {v} voters")));
            }
        }
        None if model.term() > 0 => {
            spans.push(Span::raw("no leader").bold().yellow());
            spans.push(Span::raw(format!(" · term {}", model.term())));
        }
        None => spans.push(Span::raw("no leader seen yet").bold()),
    }
    spans.push(Span::raw(match model.member_count() {
        1 => " · 1 member".to_string(),
        n => format!(" · {n} members"),
    }));
    if model.unconfirmed() > 0 {
        spans.push(Span::raw(format!(" ({} unconfirmed)", model.unconfirmed())).yellow());
    }
    Paragraph::new(Line::from(spans))
        .block(Block::bordered().title(format!(" swarm {} ", ui.swarm)))
}

fn render_members(frame: &mut Frame, area: Rect, model: &Model, now_ms: u64, ui: &Ui) {
    let count = model.member_count();
    if count == 0 {
        frame.render_widget(waiting(ui, " members ", model, now_ms), area);
        return;
    }
    // Borders and the column header take three rows; only the rows that fit are built, so
    // ten thousand members cost what a screenful does.
    let fits = usize::from(area.height.saturating_sub(3)).max(1);
    let first = ui.scroll.min(count.saturating_sub(fits));
    let shown: Vec<&Member> = model.members().skip(first).take(fits).collect();
    let id_width = model
        .members()
        .skip(first)
        .take(fits)
        .map(|m| m.id.as_str().len())
        .max()
        .unwrap_or(2)
        .clamp(2, 24) as u16;
    let rows = shown.iter().map(|m| member_row(model, m, now_ms));
    let widths = [
        Constraint::Length(id_width),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(id_width.max(6)),
        Constraint::Length(14),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    let header = Row::new([
        "ID",
        "CLASS",
        "ROLE",
        "TERM",
        "LEADER",
        "HEARTBEAT",
        "EVERY",
        "CADENCE",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let title = super::format::table_title("members", count, first, shown.len(), fits, model);
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(2)
        .block(Block::bordered().title(title));
    frame.render_widget(table, area);
}

fn member_row<'a>(model: &Model, m: &Member, now_ms: u64) -> Row<'a> {
    let hb = m.heartbeat.as_ref();
    let age = m.heartbeat_age_ms(now_ms).map(ago);
    let suspect = model.suspect(m, now_ms);
    // Unconfirmed says more than an age that only grows because we cannot hear.
    let heard = match age {
        _ if m.unconfirmed => "unconfirmed".into(),
        _ if m.asleep(now_ms).is_some() => {
            format!(
                "asleep until {}",
                time_of_day(m.asleep_until_ms.unwrap_or(0))
            )
        }
        Some(a) if suspect => format!("{a} suspect"),
        Some(a) => a,
        None => "-".into(),
    };
    let role = hb.map(|h| h.role);
    let row = Row::new([
        m.id.to_string(),
        or_dash(m.class),
        or_dash(role),
        or_dash(hb.map(|h| h.term)),
        or_dash(hb.and_then(|h| h.leader_of(&m.id))),
        heard,
        or_dash(hb.map(|h| interval(h.cadence_ms))),
        cadence(m.cadence),
    ]);
    match role {
        _ if m.unconfirmed => row.dark_gray(),
        _ if suspect => row.yellow(),
        Some(Role::Leader) => row.green().bold(),
        Some(Role::Candidate) => row.cyan(),
        _ => row,
    }
}

fn render_events(frame: &mut Frame, area: Rect, model: &Model, now_ms: u64) {
    let fits = usize::from(area.height.saturating_sub(2));
    let lines: Vec<Line> = model
        .events()
        .take(fits)
        .map(|e| {
            let when = format!(
                " {:>10}  ",
                format!("{} ago", ago(now_ms.saturating_sub(e.at_ms)))
            );
            let (text, style) = event_text(&e.kind);
            Line::from(vec![Span::raw(when).dim(), Span::styled(text, style)])
        })
        .collect();
    let block = Block::bordered().title(" recent events, newest first ");
    if lines.is_empty() {
        frame.render_widget(Paragraph::new(" none yet").dim().block(block), area);
    } else {
        frame.render_widget(Paragraph::new(lines).block(block), area);
    }
}

fn event_text(kind: &EventKind) -> (String, Style) {
    let plain = Style::new();
    match kind {
        EventKind::Joined(id) => (format!("{id} joined"), plain),
        EventKind::Left {
            id,
            how: Departure::Leave,
            was_leader,
        } => (
            format!("{id}{} left cleanly (said Leave)", led(*was_leader)),
            plain,
        ),
        EventKind::Left {
            id,
            how: Departure::TokenGone,
            was_leader,
        } => (
            format!(
                "{id}{} gone: token withdrawn without a Leave (crash or cut off)",
                led(*was_leader)
            ),
            Style::new().yellow(),
        ),
        EventKind::Left {
            id,
            how: Departure::Unseen,
            was_leader,
        } => (
            format!(
                "{id}{} gone: not in the swarm when contact came back (left unseen)",
                led(*was_leader)
            ),
            Style::new().yellow(),
        ),
        EventKind::LostContact => (
            "lost contact with the swarm: this dashboard's own link closed; \
             members kept, unconfirmed"
                .into(),
            Style::new().red().bold(),
        ),
        EventKind::BackInContact => (
            "back in contact with the swarm; asking who is still there".into(),
            Style::new().green(),
        ),
        EventKind::Election { term } => (format!("term {term}: election"), Style::new().cyan()),
        EventKind::NewLeader {
            term,
            leader,
            previous,
        } => (
            match previous {
                Some(p) => format!("term {term}: {leader} leads (was {p})"),
                None => format!("term {term}: {leader} leads"),
            },
            Style::new().green(),
        ),
        EventKind::TwoLeaders {
            term,
            first,
            second,
        } => (
            format!("term {term}: TWO LEADERS, {first} and {second} (split brain)"),
            Style::new().red().bold(),
        ),
    }
}

fn led(was_leader: bool) -> &'static str {
    if was_leader { " (the leader)" } else { "" }
}
