//! `swarm-node dashboard` and `swarm-node green`: live terminal views of the swarm.
//!
//! The pieces: `feed` turns the bus into inputs, `model` (pure, no IO, no clock) keeps what
//! they mean, the `*_view` modules draw a model at a given time, and `terminal` owns the
//! screen and the keys. This file is the loop that joins them.

pub mod contact;
mod feed;
mod format;
mod green_view;
mod history;
pub mod link;
mod members_view;
mod model;
mod terminal;

#[cfg(test)]
mod snapshot_tests;

use crate::config::Config;
use crate::signals::shutdown_signal;
use model::{Model, Suspicion};
use std::time::Duration;
use swarm_bus::clock::unix_ms;
use terminal::{Key, Screen};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Board {
    /// Members, leader and recent events.
    Members,
    /// Power, energy and CO2 per node and for the swarm.
    Green,
}

/// What the views need besides the model.
#[derive(Debug, Clone, Default)]
pub struct Ui {
    pub swarm: String,
    /// Where the dashboard looks for nodes, for the "waiting" screen.
    pub reach: String,
    /// The first member row shown.
    pub scroll: usize,
}

/// A frame at most this often (4/s): enough to look live, cheap on a Pi.
const FRAME: Duration = Duration::from_millis(250);
/// Ages on screen tick by the second even when nothing arrives.
const REFRESH_MS: u64 = 1_000;
/// The mode column catches changes heartbeats do not show (a pin that keeps the interval).
const STATE_REFRESH: Duration = Duration::from_secs(30);
const PAGE: usize = 10;

pub fn draw(frame: &mut ratatui::Frame, board: Board, model: &Model, now_ms: u64, ui: &Ui) {
    match board {
        Board::Members => members_view::render(frame, model, now_ms, ui),
        Board::Green => green_view::render(frame, model, now_ms, ui),
    }
}

/// Runs until q, Esc, Ctrl-C, SIGINT or SIGTERM.
pub async fn run(config: &Config, board: Board) -> anyhow::Result<()> {
    terminal::ensure_terminal()?;
    let mut stop = Box::pin(shutdown_signal()?);
    // The session before the screen, so a bad endpoint is reported on a plain terminal.
    let mut feed = feed::Feed::open(config).await?;
    let g = &config.adaptive_gossip;
    let mut model = Model::new(Suspicion {
        suspect_after: g.suspect_after,
        floor_ms: g.min_interval_ms,
    });
    let mut ui = Ui {
        swarm: config.node.swarm.to_string(),
        reach: reach(config),
        scroll: 0,
    };
    let mut screen = Screen::enter()?;
    let mut keys = terminal::keys()?;
    let mut frames = tokio::time::interval(FRAME);
    frames.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut refresh = tokio::time::interval(STATE_REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut drawn_ms: Option<u64> = None;
    let mut moved = true;
    loop {
        tokio::select! {
            Some(input) = feed.next() => model.apply(unix_ms(), input),
            key = keys.recv() => match key {
                None | Some(Key::Quit) => break,
                Some(k) => {
                    scroll(&mut ui, k, model.member_count());
                    moved = true;
                }
            },
            _ = frames.tick() => {
                let now = unix_ms();
                model.links(now, feed.links().await);
                if let Some((epoch, asked)) = model.take_roll_call(now) {
                    feed.roll_call(epoch, asked);
                }
                model.tick(now);
                model.set_bus_drops(feed.dropped());
                feed.ask_states(model.take_state_wanted());
                let stale = drawn_ms.is_none_or(|d| now.saturating_sub(d) >= REFRESH_MS);
                if model.take_changed() || std::mem::take(&mut moved) || stale {
                    screen.draw(|f| draw(f, board, &model, now, &ui))?;
                    drawn_ms = Some(now);
                }
            }
            _ = refresh.tick() => feed.ask_all_states(),
            _ = &mut stop => break,
        }
    }
    drop(keys);
    drop(screen);
    feed.close().await;
    Ok(())
}

fn scroll(ui: &mut Ui, key: Key, count: usize) {
    let last = count.saturating_sub(1);
    ui.scroll = match key {
        Key::Up => ui.scroll.saturating_sub(1),
        Key::Down => ui.scroll.saturating_add(1),
        Key::PageUp => ui.scroll.saturating_sub(PAGE),
        Key::PageDown => ui.scroll.saturating_add(PAGE),
        Key::Home => 0,
        Key::End => last,
        Key::Quit | Key::Redraw => ui.scroll,
    }
    .min(last);
}

fn reach(config: &Config) -> String {
    let z = &config.zenoh;
    let connect = if z.connect.is_empty() {
        "no endpoints".to_string()
    } else {
        z.connect.join(", ")
    };
    let scouting = if z.multicast_scouting { "on" } else { "off" };
    format!("connect: {connect}; multicast scouting {scouting}")
}
