//! Whole frames of both dashboards, drawn from a model fed a fixed story at fixed times.
//! A change to what a user sees is a reviewed snapshot diff.

use super::contact::HOLD_MS;
use super::model::tests::{energy, hb, id, links, state};
use super::model::{Input, Model, Suspicion, TOTAL_EVERY_MS};
use super::{Board, Ui, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use swarm_bus::{CadenceMode, Leave, PowerSource, Role};

const T0: u64 = 1_700_000_000_000;

fn ui() -> Ui {
    Ui {
        swarm: "lab".into(),
        reach: "connect: tcp/127.0.0.1:7447; multicast scouting off".into(),
        scroll: 0,
    }
}

fn frame(board: Board, model: &Model, now_ms: u64, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| draw(f, board, model, now_ms, &ui()))
        .unwrap();
    terminal.backend().to_string()
}

/// Three nodes; pi-d leaves cleanly and pi-e crashes; pi-a led term 1 and left, pi-b won
/// term 2; pi-c is pinned conservative and has gone quiet.
fn story() -> (Model, u64) {
    let mut m = Model::new(Suspicion::default());
    m.links(T0, links(&["r"]));
    for (n, at) in [
        ("pi-a", 0),
        ("pi-b", 10),
        ("pi-c", 20),
        ("pi-d", 30),
        ("pi-e", 40),
    ] {
        m.apply(T0 + at, Input::Joined(id(n)));
    }
    m.apply(
        T0 + 100,
        Input::Heartbeat(id("pi-a"), hb(Role::Leader, 1, None, 500)),
    );
    for n in ["pi-b", "pi-c", "pi-d", "pi-e"] {
        m.apply(
            T0 + 120,
            Input::Heartbeat(id(n), hb(Role::Follower, 1, Some("pi-a"), 500)),
        );
    }
    m.apply(
        T0 + 150,
        Input::State(id("pi-b"), state(CadenceMode::Normal, false, 500)),
    );
    m.apply(
        T0 + 150,
        Input::State(id("pi-c"), state(CadenceMode::Conservative, true, 1000)),
    );
    m.apply(T0 + 5_000, Input::Leave(id("pi-d"), Leave { term: 1 }));
    m.apply(T0 + 5_002, Input::TokenGone(id("pi-d")));
    m.apply(T0 + 6_000, Input::TokenGone(id("pi-e")));
    m.links(T0 + 6_000 + HOLD_MS, links(&["r"]));
    // pi-a stops cleanly; pi-b wins term 2 (pi-c hears of the term first).
    m.apply(T0 + 8_000, Input::Leave(id("pi-a"), Leave { term: 1 }));
    m.apply(T0 + 8_001, Input::TokenGone(id("pi-a")));
    m.apply(
        T0 + 8_020,
        Input::Heartbeat(id("pi-c"), hb(Role::Follower, 2, None, 1000)),
    );
    m.apply(
        T0 + 8_030,
        Input::Heartbeat(id("pi-b"), hb(Role::Leader, 2, None, 500)),
    );
    m.apply(T0 + 9_000, Input::Joined(id("pi-a")));
    m.apply(
        T0 + 9_100,
        Input::Heartbeat(id("pi-a"), hb(Role::Follower, 2, Some("pi-b"), 500)),
    );
    m.apply(
        T0 + 9_150,
        Input::State(id("pi-a"), state(CadenceMode::Aggressive, false, 250)),
    );
    // Energy: pi-a and pi-b report every second, pi-c twice, from watts that wander.
    for s in 0..20u64 {
        let at = T0 + 9_200 + s * TOTAL_EVERY_MS;
        let wave = (s % 5) as f32;
        let mut a = energy(5.0 + wave, 1.234 + s as f32 * 0.001, 0.41);
        a.source = PowerSource::Rapl;
        a.eff_pct = Some(92);
        m.apply(at, Input::Energy(id("pi-a"), a));
        m.apply(
            at,
            Input::Energy(id("pi-b"), energy(3.0 - wave * 0.5, 0.5, 0.2)),
        );
        if s % 10 == 0 {
            let mut c = energy(1.5, 0.25, 0.1);
            c.source = PowerSource::Battery;
            c.eff_pct = Some(40);
            m.apply(at, Input::Energy(id("pi-c"), c));
        }
        m.tick(at);
    }
    let now = T0 + 29_000;
    for (n, role, leader) in [
        ("pi-a", Role::Follower, Some("pi-b")),
        ("pi-b", Role::Leader, None),
    ] {
        m.apply(now - 300, Input::Heartbeat(id(n), hb(role, 2, leader, 500)));
    }
    (m, now)
}

#[test]
fn members_dashboard() {
    let (model, now) = story();
    insta::assert_snapshot!(frame(Board::Members, &model, now, 120, 40));
}

#[test]
fn green_dashboard() {
    let (model, now) = story();
    insta::assert_snapshot!(frame(Board::Green, &model, now, 120, 30));
}

/// The story, then the dashboard's own link closes 2 s before `now`: zenoh withdraws every
/// token, and the members stay, unconfirmed.
fn lost() -> (Model, u64) {
    let (mut m, now) = story();
    for n in ["pi-a", "pi-b", "pi-c"] {
        m.apply(now - 2_010, Input::TokenGone(id(n)));
    }
    m.links(now - 2_000, links(&[]));
    m.links(now, links(&[]));
    (m, now)
}

#[test]
fn members_dashboard_without_contact() {
    let (model, now) = lost();
    insta::assert_snapshot!(frame(Board::Members, &model, now, 120, 40));
}

#[test]
fn green_dashboard_without_contact() {
    let (model, now) = lost();
    insta::assert_snapshot!(frame(Board::Green, &model, now, 120, 30));
}

#[test]
fn an_empty_swarm_is_waited_for() {
    let model = Model::new(Suspicion::default());
    insta::assert_snapshot!("empty_members", frame(Board::Members, &model, T0, 80, 20));
    insta::assert_snapshot!("empty_green", frame(Board::Green, &model, T0, 80, 16));
}

#[test]
fn a_small_terminal_shows_what_fits_without_panicking() {
    let (model, now) = story();
    for (w, h) in [(1, 1), (10, 5), (40, 12), (300, 3)] {
        for board in [Board::Members, Board::Green] {
            let text = frame(board, &model, now, w, h);
            assert_eq!(text.lines().count(), usize::from(h));
        }
    }
}
