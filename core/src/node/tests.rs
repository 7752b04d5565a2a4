use super::*;
use core::time::Duration;
use pacing::configured;

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn core(me: &str, admit: Admit) -> (NodeCore, At) {
    let now = At::from_millis(1_000_000);
    let settings = Settings {
        bootstrap_expect: 0,
        ..Settings::default()
    };
    let core = NodeCore::new(id(me), settings, Persisted::default(), now, 7, admit);
    (core, now)
}

fn members() -> Admit {
    Admit::Members { max_members: 4 }
}

fn leader_hb(term: u64, seq: u64) -> Heartbeat {
    swarm_bus::samples::leader_heartbeat(term, seq)
}

fn changed(out: &[Output]) -> Option<&Leadership> {
    out.iter().find_map(|o| match o {
        Output::Changed(l) => Some(l),
        _ => None,
    })
}

#[test]
fn a_stranger_is_refused_and_creates_no_state() {
    let (mut c, now) = core("a", members());
    let out = c.handle(
        now,
        Input::Heartbeat {
            from: id("x"),
            hb: leader_hb(5, 1),
        },
    );
    assert_eq!(
        out,
        vec![Output::Refused {
            from: id("x"),
            what: "heartbeat",
            why: Refused::NonMember
        }]
    );
    assert!(c.members().unwrap().is_empty());
    assert_eq!(c.leadership().term, 0, "its term reached nobody");
    let out = c.handle(now, Input::LeaderInfo(info("x", 9)));
    assert!(matches!(
        out[..],
        [Output::Refused {
            why: Refused::NonMember,
            ..
        }]
    ));
    assert_eq!(c.leadership().leader, None);
}

fn info(node: &str, term: u64) -> LeaderInfo {
    LeaderInfo {
        node: id(node),
        role: Role::Leader,
        term,
        leader: None,
        since_ms: None,
        voters: None,
        heir: None,
    }
}

#[test]
fn a_member_is_followed_and_its_heartbeats_counted() {
    let (mut c, now) = core("a", members());
    assert_eq!(
        c.handle(now, Input::TokenAppeared(id("b"))),
        vec![Output::Joined(id("b"))]
    );
    assert!(c.handle(now, Input::TokenAppeared(id("b"))).is_empty());
    assert!(
        c.handle(now, Input::TokenAppeared(id("a"))).is_empty(),
        "its own token is no peer"
    );
    let out = c.handle(
        now,
        Input::Heartbeat {
            from: id("b"),
            hb: leader_hb(3, 1),
        },
    );
    assert_eq!(out[0], Output::FirstHeartbeat(id("b")));
    assert!(
        matches!(out.last(), Some(Output::Pace(_))),
        "the change ends with its pace: {out:?}"
    );
    let l = changed(&out).expect("follows the leader it heard");
    assert_eq!(
        (l.role, l.term, l.leader.clone()),
        (Role::Follower, 3, Some(id("b")))
    );
    let again = c.handle(
        now,
        Input::Heartbeat {
            from: id("b"),
            hb: leader_hb(3, 2),
        },
    );
    assert!(!again.contains(&Output::FirstHeartbeat(id("b"))));
    assert_eq!(c.members().unwrap().live(), vec![id("b")]);
    assert_eq!(
        c.handle(now, Input::TokenGone(id("b")))[0],
        Output::Gone(id("b"))
    );
    assert!(c.members().unwrap().is_empty());
}

#[test]
fn a_full_member_table_refuses_the_next_token() {
    let (mut c, now) = core("a", members());
    for n in ["b", "c", "d", "e"] {
        assert_eq!(c.handle(now, Input::TokenAppeared(id(n))).len(), 1);
    }
    let out = c.handle(now, Input::TokenAppeared(id("f")));
    assert!(matches!(
        out[..],
        [Output::Refused {
            why: Refused::MembersFull,
            ..
        }]
    ));
    assert_eq!(c.members().unwrap().len(), 4);
    assert!(!c.is_member(&id("f")));
}

#[test]
fn what_a_leader_said_before_its_leave_does_not_bring_it_back() {
    let (mut c, now) = core("a", members());
    c.handle(now, Input::TokenAppeared(id("b")));
    c.handle(
        now,
        Input::Heartbeat {
            from: id("b"),
            hb: leader_hb(4, 7),
        },
    );
    let out = c.handle(
        now,
        Input::Leave {
            from: id("b"),
            term: 4,
        },
    );
    assert_eq!(
        out[0],
        Output::LeftCleanly {
            peer: id("b"),
            term: 4
        }
    );
    assert_eq!(
        c.leadership().leader,
        None,
        "a leader's Leave ends its lead"
    );
    // Overtaken on other subscriptions: a later heartbeat and its announcement.
    let late = c.handle(
        now,
        Input::Heartbeat {
            from: id("b"),
            hb: leader_hb(4, 8),
        },
    );
    assert!(late.is_empty(), "{late:?}");
    assert!(c.handle(now, Input::LeaderInfo(info("b", 4))).is_empty());
    assert_eq!(c.leadership().leader, None);
    // A later term is a restarted process that won since.
    let out = c.handle(
        now + Duration::from_millis(10),
        Input::LeaderInfo(info("b", 5)),
    );
    assert_eq!(changed(&out).and_then(|l| l.leader.clone()), Some(id("b")));
}

#[test]
fn a_vote_is_stored_before_it_is_sent() {
    let (mut c, now) = core("a", members());
    c.handle(now, Input::TokenAppeared(id("b")));
    let later = now + Duration::from_secs(5);
    let req = VoteRequest {
        term: 1,
        pre_vote: false,
        class: DeviceClass::Full,
        voters: 2,
    };
    let out = c.handle(
        later,
        Input::Vote {
            from: id("b"),
            vote: Vote::Request(req),
        },
    );
    let stored = out
        .iter()
        .position(|o| matches!(o, Output::PersistVote { term: 1, .. }))
        .expect("the vote is stored");
    let sent = out
        .iter()
        .position(|o| matches!(o, Output::Reply(r) if r.granted))
        .expect("and granted");
    assert!(stored < sent, "{out:?}");
}

#[test]
fn energy_is_kept_for_members_only_and_only_when_newer() {
    let (mut c, now) = core("a", members());
    let sample = |ts_ms| Energy {
        ts_ms,
        ..swarm_bus::samples::energy()
    };
    let from_b = |c: &mut NodeCore, ts| {
        c.handle(
            now,
            Input::PeerEnergy {
                from: id("b"),
                sample: sample(ts),
            },
        )
    };
    assert!(matches!(
        from_b(&mut c, 1)[..],
        [Output::Refused {
            what: "energy sample",
            ..
        }]
    ));
    c.handle(now, Input::TokenAppeared(id("b")));
    assert_eq!(from_b(&mut c, 10), vec![Output::EnergyKept(id("b"))]);
    assert!(from_b(&mut c, 5).is_empty(), "older than the one held");
}

#[test]
fn the_large_simulator_admits_everyone_and_keeps_no_table() {
    let (mut c, now) = core("a", Admit::Everyone);
    let out = c.handle(
        now,
        Input::Heartbeat {
            from: id("b"),
            hb: leader_hb(2, 1),
        },
    );
    assert_eq!(changed(&out).and_then(|l| l.leader.clone()), Some(id("b")));
    assert!(c.members().is_none());
    assert!(c.handle(now, Input::TokenAppeared(id("c"))).is_empty());
}

#[test]
fn heartbeats_count_up_and_a_leader_leaves_out_its_own_id() {
    let (mut c, now) = core("a", members());
    let hb = c.next_heartbeat(now, 500);
    assert_eq!((hb.seq, hb.role, hb.leader), (1, Role::Follower, None));
    assert_eq!(c.next_heartbeat(now, 500).seq, 2);
    assert_eq!(c.heartbeat_now(now, 250).seq, 2, "not sent: no new number");
    // Alone with no voter expected, it elects itself once its timeout runs out.
    let mut at = now;
    while c.leadership().role != Role::Leader {
        at = c.next_wakeup().unwrap_or(at + Duration::from_millis(100));
        c.handle(at, Input::Tick);
        assert!(at < now + Duration::from_secs(10), "never led");
    }
    let hb = c.next_heartbeat(at, 500);
    assert_eq!((hb.role, hb.leader), (Role::Leader, None));
}

/// A node with adaptive pacing, in a swarm that is large beyond 2 members.
fn adaptive(me: &str) -> (NodeCore, At) {
    let (c, now) = core(me, members());
    let settings = crate::cadence::Settings {
        small_swarm: 2,
        ..crate::cadence::Settings::default()
    };
    (c.with_pacing(Pacing::adaptive(settings, None)), now)
}

fn paces(out: &[Output]) -> Vec<Decision> {
    out.iter()
        .filter_map(|o| match o {
            Output::Pace(d) => Some(*d),
            _ => None,
        })
        .collect()
}

fn command(op: CommandOp, arg: u32) -> Input {
    Input::Command(Command { op, arg })
}

#[test]
fn a_pinned_mode_is_kept_then_in_force_and_unpinning_lets_go() {
    let (mut c, now) = adaptive("a");
    let out = c.handle(
        now,
        command(CommandOp::SetMode, CadenceMode::Conservative as u32),
    );
    assert_eq!(
        out[0],
        Output::PersistPin(Some(CadenceMode::Conservative)),
        "kept before it is applied"
    );
    let d = paces(&out);
    assert_eq!(d.len(), 1, "{out:?}");
    assert!(
        d[0].pinned && d[0].mode == CadenceMode::Conservative,
        "{d:?}"
    );
    let normal = configured(&crate::cadence::Settings::default());
    assert!(
        d[0].heartbeat_ms > normal.heartbeat_ms,
        "conservative is slower: {d:?}"
    );

    let out = c.handle(now, command(CommandOp::SetMode, swarm_bus::UNPIN_MODE));
    assert_eq!(out[0], Output::PersistPin(None));
    assert_eq!(paces(&out)[0].mode, CadenceMode::Normal);
    assert!(!paces(&out)[0].pinned);
}

#[test]
fn a_bad_command_is_refused_by_name_and_changes_nothing() {
    let (mut c, now) = adaptive("a");
    let before = c.pace();
    for (op, arg, why) in [
        (CommandOp::SetMode, 77, "no such cadence mode"),
        (CommandOp::SetMode, u32::MAX, "no such cadence mode"),
        (CommandOp::Reboot, 0, "not one a node obeys"),
    ] {
        assert_eq!(
            c.handle(now, command(op, arg)),
            vec![Output::CommandRefused { op, arg, why }]
        );
    }
    assert_eq!(c.pace(), before);
    assert_eq!(
        c.handle(now, command(CommandOp::Identify, 5)),
        vec![Output::Identify(5)]
    );
}

#[test]
fn with_adaptive_gossip_off_the_configured_intervals_stay() {
    let (mut c, now) = core("a", members());
    let fixed = c.pace();
    let out = c.handle(
        now,
        command(CommandOp::SetMode, CadenceMode::Conservative as u32),
    );
    assert_eq!(
        paces(&out),
        vec![fixed],
        "a pin is kept but changes no interval"
    );
    assert_eq!(c.handle(now, Input::Retune), vec![Output::Pace(fixed)]);
}

#[test]
fn a_dying_battery_slows_the_pace_whatever_the_pin() {
    let (mut c, now) = adaptive("a");
    c.handle(
        now,
        command(CommandOp::SetMode, CadenceMode::Aggressive as u32),
    );
    assert!(
        c.handle(
            now,
            Input::OwnEnergy(Energy {
                battery_pct: Some(5),
                charging: Some(false),
                ..swarm_bus::samples::energy()
            })
        )
        .is_empty()
    );
    // Asked for long enough (the dwell), not on one reading.
    c.handle(now, Input::Retune);
    let later = now + Duration::from_secs(11);
    let d = paces(&c.handle(later, Input::Retune))[0];
    assert_ne!(
        d.mode,
        CadenceMode::Aggressive,
        "the floor outranks the operator: {d:?}"
    );
}

#[test]
fn the_member_count_paces_a_node_and_a_stranger_cannot_inflate_it() {
    let (mut c, now) = adaptive("a");
    let alone = paces(&c.handle(now, Input::Retune))[0];
    // Under `Admit::Members` the count is the member table's, not what an adapter claims.
    assert!(c.handle(now, Input::Population(5_000)).is_empty());
    assert_eq!(paces(&c.handle(now, Input::Retune))[0], alone);
    for peer in ["b", "c", "d"] {
        c.handle(now, Input::TokenAppeared(id(peer)));
    }
    let four = paces(&c.handle(now, Input::Retune))[0];
    assert!(four.energy_ms > alone.energy_ms, "{alone:?} then {four:?}");
    c.handle(now, Input::TokenAppeared(id("e")));
    let five = paces(&c.handle(now, Input::Retune))[0];
    assert!(five.energy_ms > four.energy_ms, "{four:?} then {five:?}");
    // The table is full (4 peers): a sixth token is refused, and the pace does not move.
    let out = c.handle(now, Input::TokenAppeared(id("f")));
    assert!(matches!(out[..], [Output::Refused { .. }]), "{out:?}");
    assert_eq!(paces(&c.handle(now, Input::Retune))[0], five);
    c.handle(now, Input::TokenGone(id("d")));
    assert_eq!(paces(&c.handle(now, Input::Retune))[0], four);
}

#[test]
fn the_simulator_tells_its_core_how_many_are_up() {
    let (c, now) = core("a", Admit::Everyone);
    let mut c = c.with_pacing(Pacing::adaptive(crate::cadence::Settings::default(), None));
    // 500 is far beyond a small swarm: the intervals stretch.
    let alone = paces(&c.handle(now, Input::Retune))[0];
    c.handle(now, Input::Population(500));
    assert!(paces(&c.handle(now, Input::Retune))[0].energy_ms > alone.energy_ms);
}

#[test]
fn a_change_of_leadership_ends_with_its_pace() {
    let (mut c, now) = adaptive("a");
    c.handle(now, Input::TokenAppeared(id("b")));
    let out = c.handle(
        now,
        Input::Heartbeat {
            from: id("b"),
            hb: leader_hb(3, 1),
        },
    );
    let change_at = out.iter().position(|o| matches!(o, Output::Changed(_)));
    assert!(change_at.is_some(), "{out:?}");
    assert!(matches!(out.last(), Some(Output::Pace(_))), "{out:?}");
}

fn subscribed(out: &[Output]) -> Option<&Want> {
    out.iter().find_map(|o| match o {
        Output::Subscribe(w) => Some(w),
        _ => None,
    })
}

#[test]
fn a_follower_of_a_large_swarm_hears_its_leader_alone_and_says_so_once() {
    let now = At::from_millis(1_000_000);
    // Large beyond 2 voters, so a handful of members make one.
    let settings = Settings {
        bootstrap_expect: 0,
        small_swarm: 2,
        ..Settings::default()
    };
    let mut c = NodeCore::new(id("a"), settings, Persisted::default(), now, 7, members());
    for peer in ["b", "c", "d"] {
        c.handle(now, Input::TokenAppeared(id(peer)));
    }
    let follower_hb = |seq| Heartbeat {
        role: Role::Follower,
        leader: Some(id("b")),
        ..leader_hb(3, seq)
    };
    let mut wants = Vec::new();
    for (from, hb) in [
        ("b", leader_hb(3, 1)),
        ("c", follower_hb(1)),
        ("d", follower_hb(1)),
    ] {
        let out = c.handle(now, Input::Heartbeat { from: id(from), hb });
        wants.extend(subscribed(&out).cloned());
    }
    assert_eq!(
        wants,
        vec![Want::Leader(id("b"))],
        "said once, when it became large"
    );
    // The leader's next heartbeat, and a stranger's, change nothing.
    let out = c.handle(
        now,
        Input::Heartbeat {
            from: id("b"),
            hb: leader_hb(3, 2),
        },
    );
    assert_eq!(subscribed(&out), None, "{out:?}");
    let out = c.handle(
        now,
        Input::Heartbeat {
            from: id("x"),
            hb: leader_hb(9, 1),
        },
    );
    assert_eq!(subscribed(&out), None, "{out:?}");
}

#[test]
fn a_small_swarm_keeps_hearing_everyone_without_a_word() {
    let (mut c, now) = core("a", members());
    c.handle(now, Input::TokenAppeared(id("b")));
    let out = c.handle(
        now,
        Input::Heartbeat {
            from: id("b"),
            hb: leader_hb(3, 1),
        },
    );
    assert!(changed(&out).is_some());
    assert_eq!(subscribed(&out), None, "everyone, as at the start: {out:?}");
}

fn snapshots(out: &[Output]) -> Vec<&Snapshot> {
    out.iter()
        .filter_map(|o| match o {
            Output::Snapshot(s) => Some(&**s),
            _ => None,
        })
        .collect()
}

#[test]
fn without_snapshots_asked_for_the_core_hands_out_none() {
    let (mut c, now) = core("a", members());
    let out = c.handle(now, Input::TokenAppeared(id("b")));
    assert!(snapshots(&out).is_empty());
    assert_eq!(c.next_wakeup(), c.election().next_wakeup());
}

#[test]
fn a_change_of_membership_or_leadership_is_shown_at_once() {
    let every = Duration::from_millis(100);
    let (c, now) = core("a", members());
    let mut c = c.with_snapshots(every);
    let first = c.handle(now, Input::Tick);
    assert_eq!(snapshots(&first).len(), 1, "readers start with one");
    assert!(matches!(first.last(), Some(Output::Snapshot(_))), "last");
    let out = c.handle(now, Input::TokenAppeared(id("b")));
    let shown = snapshots(&out);
    assert_eq!(shown.len(), 1, "a joiner goes out at once: {out:?}");
    assert_eq!(
        shown[0].members.get(&id("b")),
        Some(&MemberView::default()),
        "known, not heard yet"
    );
    let out = c.handle(
        now,
        Input::Heartbeat {
            from: id("b"),
            hb: leader_hb(3, 1),
        },
    );
    let shown = snapshots(&out);
    assert_eq!(shown.len(), 1, "{out:?}");
    assert_eq!(shown[0].leadership.leader, Some(id("b")));
    assert_eq!(shown[0].leadership.term, 3);
    assert!(shown[0].members[&id("b")].heard);
}

#[test]
fn samples_and_counters_are_shown_at_most_every_interval() {
    let every = Duration::from_millis(100);
    let (c, now) = core("a", members());
    let mut c = c.with_snapshots(every);
    c.handle(now, Input::Tick);
    c.handle(now, Input::TokenAppeared(id("b")));
    let hb = c.next_heartbeat(now, 500);
    // The seq moved: due within `every`, and the core wakes its adapter for it.
    assert_eq!(
        c.next_wakeup(),
        Some(now + every).min(c.election().next_wakeup())
    );
    let out = c.handle(now + Duration::from_millis(10), Input::Tick);
    assert!(snapshots(&out).is_empty(), "held back: {out:?}");
    let out = c.handle(now + every, Input::Tick);
    assert_eq!(snapshots(&out).len(), 1, "{out:?}");
    assert_eq!(snapshots(&out)[0].seq, hb.seq);
    assert!(
        snapshots(&c.handle(now + every * 2, Input::Tick)).is_empty(),
        "nothing moved since"
    );
}

#[test]
fn its_own_energy_is_shown_at_once_and_a_stranger_changes_no_snapshot() {
    let (c, now) = core("a", members());
    let mut c = c.with_snapshots(Duration::from_secs(3600));
    c.handle(now, Input::Tick);
    let sample = swarm_bus::samples::energy();
    let out = c.handle(now, Input::OwnEnergy(sample.clone()));
    assert_eq!(snapshots(&out)[0].energy, Some(sample));
    let out = c.handle(
        now,
        Input::Heartbeat {
            from: id("x"),
            hb: leader_hb(9, 1),
        },
    );
    assert!(
        snapshots(&out).is_empty(),
        "a refusal shows nothing: {out:?}"
    );
    assert!(c.snapshot(now).members.is_empty());
}

#[test]
fn a_heartbeat_sent_once_the_interval_passed_is_shown_with_its_count() {
    let every = Duration::from_millis(100);
    let (c, now) = core("a", members());
    let mut c = c.with_snapshots(every);
    c.handle(now, Input::Tick);
    let later = now + every;
    let hb = c.next_heartbeat(later, 500);
    let out = c.handle(later, Input::Sent(1));
    assert_eq!(
        snapshots(&out).iter().map(|s| s.seq).collect::<Vec<_>>(),
        vec![hb.seq],
        "no extra wake-up needed: {out:?}"
    );
    assert!(out.len() == 1, "a count has no other output: {out:?}");
}

#[test]
fn a_follower_of_a_quiet_small_swarm_hears_its_leader_alone_until_the_leader_is_gone() {
    let (c, start) = core("a", members());
    let mut c = c.with_pacing(Pacing::adaptive(crate::cadence::Settings::default(), None));
    for peer in ["b", "c"] {
        c.handle(start, Input::TokenAppeared(id(peer)));
    }
    let follower_hb = |seq| Heartbeat {
        role: Role::Follower,
        leader: Some(id("b")),
        ..leader_hb(3, seq)
    };
    let mut wants = Vec::new();
    let mut now = start;
    // Twelve healthy seconds: past the 10 s dwell.
    for seq in 1..=24 {
        now = start + core::time::Duration::from_millis(500 * seq);
        for (from, hb) in [("b", leader_hb(3, seq)), ("c", follower_hb(seq))] {
            let out = c.handle(now, Input::Heartbeat { from: id(from), hb });
            wants.extend(subscribed(&out).cloned());
        }
        let out = c.handle(now, Input::Retune);
        wants.extend(subscribed(&out).cloned());
    }
    assert_eq!(
        wants,
        vec![Want::Leader(id("b"))],
        "quiet: the leader alone"
    );
    assert_eq!(c.pace().mode, CadenceMode::Conservative);
    // The leader goes: the pace is normal and everyone is heard again at once.
    let out = c.handle(now, Input::TokenGone(id("b")));
    let mut out_all = out;
    for ms in (100..6_000).step_by(100) {
        out_all.extend(c.handle(now + core::time::Duration::from_millis(ms), Input::Tick));
    }
    assert_eq!(subscribed(&out_all), Some(&Want::Everyone), "{out_all:?}");
    assert_eq!(c.pace().mode, CadenceMode::Normal);
}

/// Twelve healthy seconds of b's heartbeats, past the 10 s dwell: the swarm is quiet. Returns
/// the time of the last.
fn led_quietly_by_b(c: &mut NodeCore, start: At) -> At {
    let mut now = start;
    for seq in 1..=24 {
        now = start + core::time::Duration::from_millis(500 * seq);
        c.handle(
            now,
            Input::Heartbeat {
                from: id("b"),
                hb: leader_hb(3, seq),
            },
        );
        c.handle(now, Input::Retune);
    }
    now
}

#[test]
fn a_quiet_follower_answers_its_leaders_heartbeat_only_when_its_own_is_nearly_due() {
    let (c, start) = core("a", members());
    let mut c = c.with_pacing(Pacing::adaptive(crate::cadence::Settings::default(), None));
    c.handle(start, Input::TokenAppeared(id("b")));
    assert!(!c.answers_leader(&id("b"), 500, 10_000), "not quiet yet");
    led_quietly_by_b(&mut c, start);
    assert_eq!(c.pace().heartbeat_ms, 2_000);
    // Due within the leader's next interval: answer now.
    assert!(c.answers_leader(&id("b"), 500, 1_600));
    assert!(!c.answers_leader(&id("b"), 500, 1_400), "not due yet");
    // Only the leader's heartbeat, and a forged pace cannot make it answer every time.
    assert!(!c.answers_leader(&id("x"), 500, 1_600));
    assert!(!c.answers_leader(&id("b"), u32::MAX, 900));
    assert!(c.answers_leader(&id("b"), u32::MAX, 1_000));
}

fn resubscribed(out: &[Output]) -> usize {
    out.iter()
        .filter(|o| matches!(o, Output::Resubscribe(_)))
        .count()
}

#[test]
fn a_quiet_follower_that_stops_hearing_its_leader_hears_everyone_and_declares_it_anew_until_heard()
{
    let (c, start) = core("a", members());
    let mut c = c.with_pacing(Pacing::adaptive(crate::cadence::Settings::default(), None));
    for peer in ["b", "c"] {
        c.handle(start, Input::TokenAppeared(id(peer)));
    }
    let ms = core::time::Duration::from_millis;
    let mut now = led_quietly_by_b(&mut c, start);
    assert_eq!(c.pace().mode, CadenceMode::Conservative);
    assert!(c.quiet_follower());
    // The leader's heartbeats stop reaching this node (its subscription's declaration was
    // lost), while its token stays and nobody grants a pre-vote: the others still hear it.
    let deaf_from = now;
    let mut wants = Vec::new();
    let mut fresh = Vec::new();
    let mut prevotes = 0;
    for step in 1..=120 {
        now = deaf_from + ms(100 * step);
        let out = c.handle(now, Input::Tick);
        prevotes += out
            .iter()
            .filter(|o| matches!(o, Output::RequestVotes(r) if r.pre_vote))
            .count();
        wants.extend(subscribed(&out).cloned());
        fresh.push(resubscribed(&out));
    }
    assert_eq!(c.election().leader(), Some(&id("b")), "still believed in");
    assert!(prevotes >= 3, "{prevotes} rounds of pre-votes in 12 s");
    assert_eq!(wants, vec![Want::Everyone], "the first round: everyone");
    assert_eq!(c.pace().mode, CadenceMode::Normal, "no longer quiet");
    assert_eq!(
        fresh.iter().sum::<usize>(),
        prevotes - 1,
        "declared anew on every later round"
    );
    // Heard again: no more declarations, and quiet again once the silence, which counts as
    // loss, has aged out and the dwell has passed.
    let heard_from = now;
    let mut out_all = Vec::new();
    for seq in 1..=80 {
        now = heard_from + ms(500 * seq);
        out_all.extend(c.handle(
            now,
            Input::Heartbeat {
                from: id("b"),
                hb: leader_hb(3, 100 + seq),
            },
        ));
        out_all.extend(c.handle(now, Input::Tick));
        out_all.extend(c.handle(now, Input::Retune));
    }
    assert_eq!(resubscribed(&out_all), 0, "{out_all:?}");
    assert_eq!(subscribed(&out_all), Some(&Want::Leader(id("b"))));
    assert_eq!(c.pace().mode, CadenceMode::Conservative);
}
