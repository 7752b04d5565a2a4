//! The cadence controller: a mode from loss, battery and the operator's pin; intervals from the
//! mode, the swarm's size and the election's bound.
//!
//! `max_interval_ms` bounds the heartbeat of the leader and of every node in a small swarm.
//! Beyond `small_swarm` members a follower's heartbeat goes to the leader alone and slows
//! linearly with N (up to a third of the membership window), so the leader receives about the
//! same number per second at any size. Energy, which the leader gathers from everyone, also
//! slows linearly; anti-entropy with √N. Energy and anti-entropy stretch up to 16× their
//! (size-scaled) base, which lets emergency mode really save.
//!
//! Arrival jitter counts like loss: followers elect after a fixed election timeout, so
//! heartbeats that arrive half an interval late eat the same margin lost ones do, and a faster
//! beat shortens the longest gap.
//!
//! The node's own sending holds the speed-up back: a node already publishing more than
//! `BUSY_ON` messages a second (a gateway relaying a bridge, a voter answering a storm of
//! pre-votes) is as likely the cause of the loss as its victim, and halving its intervals would
//! add to the congestion. It speeds up again below `BUSY_OFF`.
//!
//! Hysteresis, so noisy inputs do not flap the mode: loss turns `aggressive` on at
//! `LOSS_ON` and off only below `LOSS_OFF` (jitter at `JITTER_ON`, below `JITTER_OFF`); the battery floor rises at a threshold and falls
//! only `battery::MARGIN_PCT` above it; and any change the inputs ask for must hold for
//! `dwell_ms` before it is taken. An operator's pin applies at once.

use super::activity::ActivityMeter;
use super::battery::BatteryFloor;
use super::jitter::JitterTracker;
use super::loss::LossTracker;
use crate::clock::At;
use swarm_bus::{CadenceMode, NodeId};

const LOSS_ON: f64 = 0.10;
const LOSS_OFF: f64 = 0.03;
/// Mean deviation of arrival gaps from the advertised interval, as a share of it.
const JITTER_ON: f64 = 0.5;
const JITTER_OFF: f64 = 0.2;
/// Messages this node itself sends per second.
const BUSY_ON: f64 = 20.0;
const BUSY_OFF: f64 = 10.0;
/// How far energy and anti-entropy intervals may stretch past their base.
const STRETCH: u64 = 16;

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Intervals in `normal` mode for a small swarm.
    pub heartbeat_ms: u32,
    pub energy_ms: u32,
    pub anti_entropy_ms: u32,
    /// Every interval is clamped to `[min_ms, max_ms]`.
    pub min_ms: u32,
    pub max_ms: u32,
    /// The leader's heartbeat never gets slower than this, whatever the mode: followers start
    /// an election after `election_timeout_min_ms`, so a third of it leaves room for two losses.
    pub leader_heartbeat_max_ms: u32,
    /// The slowest a follower of a quiet swarm heartbeats: two thirds of
    /// `election_timeout_max_ms`, the time within which its leader must hear a majority.
    pub quiet_follower_heartbeat_max_ms: u32,
    /// A healthy swarm slows down: with a leader, no loss, no late heartbeats and no burst of
    /// sending for `dwell_ms`, the mode becomes `conservative` (`adaptive_gossip.quiet`).
    pub quiet: bool,
    /// The slowest a follower of a large swarm heartbeats: a third of the membership window,
    /// so it stays a voter with two heartbeats lost.
    pub follower_heartbeat_max_ms: u32,
    pub low_battery_pct: u8,
    pub critical_battery_pct: u8,
    /// How long the inputs must ask for a new mode before it is taken.
    pub dwell_ms: u64,
    /// Members beyond which the swarm is large (`adaptive_gossip.small_swarm`).
    pub small_swarm: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            heartbeat_ms: 500,
            energy_ms: 5_000,
            anti_entropy_ms: 30_000,
            min_ms: 250,
            max_ms: 10_000,
            leader_heartbeat_max_ms: 500,
            quiet: true,
            quiet_follower_heartbeat_max_ms: 2_000,
            follower_heartbeat_max_ms: 200_000,
            low_battery_pct: 20,
            critical_battery_pct: 10,
            dwell_ms: 10_000,
            small_swarm: crate::scale::SMALL_SWARM,
        }
    }
}

/// What the node should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub mode: CadenceMode,
    pub pinned: bool,
    pub heartbeat_ms: u32,
    pub energy_ms: u32,
    pub anti_entropy_ms: u32,
}

#[derive(Debug, Clone)]
pub struct CadenceController {
    settings: Settings,
    mode: CadenceMode,
    pinned: Option<CadenceMode>,
    /// A mode the inputs have asked for since this time.
    pending: Option<(CadenceMode, u64)>,
    lossy: bool,
    jittery: bool,
    busy: bool,
    battery_floor: BatteryFloor,
    loss: LossTracker,
    jitter: JitterTracker,
    activity: ActivityMeter,
    live_peers: usize,
    leader: bool,
    /// A leader is known (this node or another): a swarm in an election is never quiet.
    led: bool,
}

impl CadenceController {
    pub fn new(settings: Settings) -> Self {
        Self {
            loss: LossTracker::new(settings.dwell_ms.max(1_000), u64::from(settings.min_ms)),
            jitter: JitterTracker::new(settings.dwell_ms.max(1_000)),
            activity: ActivityMeter::new(settings.dwell_ms.max(1_000)),
            settings,
            mode: CadenceMode::Normal,
            pinned: None,
            pending: None,
            lossy: false,
            jittery: false,
            busy: false,
            battery_floor: BatteryFloor::default(),
            live_peers: 0,
            leader: false,
            led: false,
        }
    }

    /// A heartbeat from `peer`, numbered `seq`, advertising its interval `cadence_ms`. A gap in
    /// `seq` counts as loss only as far as the time since the peer's last heartbeat and its
    /// advertised interval (taken as at least `min_ms`) allow.
    pub fn heartbeat_from(&mut self, peer: &NodeId, seq: u64, cadence_ms: u32, now: At) {
        let now_ms = now.as_millis();
        self.loss.heartbeat(peer, seq, cadence_ms, now_ms);
        self.jitter.heartbeat(peer, seq, cadence_ms, now_ms);
    }

    /// `count` messages left this node (heartbeats, energy, votes, announcements).
    pub fn sent(&mut self, count: u64, now: At) {
        let now_ms = now.as_millis();
        self.activity.sent(count, now_ms);
    }

    pub fn peer_left(&mut self, peer: &NodeId) {
        self.loss.forget(peer);
        self.jitter.forget(peer);
    }

    pub fn set_live_peers(&mut self, n: usize) {
        self.live_peers = n;
    }

    pub fn set_leader(&mut self, leader: bool) {
        self.leader = leader;
    }

    /// Whether a leader is known. Losing it ends a quiet pace at once, not after the dwell:
    /// the election that follows needs every heartbeat.
    pub fn set_led(&mut self, led: bool) {
        self.led = led;
        if !led && self.quiet() {
            self.mode = self.wanted();
            self.pending = None;
        }
    }

    /// Slowed because all is well, not because the operator or the battery asked.
    pub fn quiet(&self) -> bool {
        self.mode == CadenceMode::Conservative
            && self.pinned.is_none()
            && self.battery_floor.applied_to(CadenceMode::Normal) == CadenceMode::Normal
    }

    /// `None`: on mains. Charging lifts the floor like mains does.
    pub fn set_battery(&mut self, pct: Option<u8>, charging: bool) {
        let l = &self.settings;
        self.battery_floor
            .observe(pct, charging, l.low_battery_pct, l.critical_battery_pct);
    }

    /// The operator's mode, or `None` to let the inputs decide again. Takes effect at once.
    pub fn pin(&mut self, mode: Option<CadenceMode>) {
        self.pinned = mode;
        self.pending = None;
        self.mode = self.wanted();
    }

    fn wanted(&self) -> CadenceMode {
        let healthy = !self.lossy && !self.jittery && !self.busy;
        let chosen = self
            .pinned
            .unwrap_or(if (self.lossy || self.jittery) && !self.busy {
                CadenceMode::Aggressive
            } else if self.settings.quiet && self.led && healthy {
                CadenceMode::Conservative
            } else {
                CadenceMode::Normal
            });
        // A battery about to die outranks the operator and the network.
        self.battery_floor.applied_to(chosen)
    }

    /// Re-evaluates the mode at `now` and returns the intervals to use from now on.
    pub fn tick(&mut self, now: At) -> Decision {
        let now_ms = now.as_millis();
        let loss = self.loss.loss_rate(now_ms);
        self.lossy = if self.lossy {
            loss > LOSS_OFF
        } else {
            loss >= LOSS_ON
        };
        let sending = self.activity.per_s(now_ms);
        self.busy = if self.busy {
            sending > BUSY_OFF
        } else {
            sending >= BUSY_ON
        };
        let jitter = self.jitter.jitter(now_ms);
        self.jittery = if self.jittery {
            jitter > JITTER_OFF
        } else {
            jitter >= JITTER_ON
        };
        let wanted = self.wanted();
        if wanted == self.mode {
            self.pending = None;
        } else {
            match self.pending {
                Some((mode, since)) if mode == wanted => {
                    if now_ms.saturating_sub(since) >= self.settings.dwell_ms {
                        self.mode = wanted;
                        self.pending = None;
                    }
                }
                _ => self.pending = Some((wanted, now_ms)),
            }
        }
        self.decision()
    }

    pub fn decision(&self) -> Decision {
        let l = &self.settings;
        let scaled = |base: u32, size: u64, ceiling: u64| -> u32 {
            let ms = u64::from(base) * self.mode.interval_halves() / 2 * size / 100;
            ms.clamp(u64::from(l.min_ms), ceiling.max(u64::from(l.min_ms)))
                .min(u64::from(u32::MAX)) as u32
        };
        let members = self.live_peers as u64 + 1;
        let small = u64::from(l.small_swarm.max(1));
        let large = members > small;
        // Size factors in percent: followers' heartbeats and energy (both gathered by the
        // leader alone) slow with N, anti-entropy with √N.
        let sqrt_factor = if large {
            // 100·√(members/small) in integers (no floating-point sqrt without std).
            (members.saturating_mul(100_000_000) / small).isqrt() / 100
        } else {
            100
        };
        let linear_factor = (members * 100 / small).max(100);
        // Energy and anti-entropy may stretch to `STRETCH`× their size-scaled base, or
        // emergency mode could not save what it must.
        let stretch = |base: u32, size: u64| u64::from(base) * STRETCH * size / 100;
        let heartbeat_ceiling = if large && !self.leader {
            l.follower_heartbeat_max_ms.max(l.max_ms)
        } else {
            l.max_ms
        };
        let mut heartbeat_ms = scaled(l.heartbeat_ms, linear_factor, u64::from(heartbeat_ceiling));
        if self.leader {
            // Not even in a quiet swarm: followers grant a pre-vote once they have not heard
            // the leader for the shortest timeout less an interval, so a slower leader would
            // be replaced whenever one of its heartbeats ran a little late.
            heartbeat_ms = heartbeat_ms.min(l.leader_heartbeat_max_ms.max(l.min_ms.min(l.max_ms)));
        } else if self.quiet() {
            // A quiet follower is heard by the leader alone, which needs a majority within
            // the longest election timeout: its bound leaves room for one late heartbeat.
            heartbeat_ms = heartbeat_ms
                .saturating_mul(2)
                .min(l.quiet_follower_heartbeat_max_ms.max(heartbeat_ms));
        }
        Decision {
            mode: self.mode,
            pinned: self.pinned.is_some(),
            heartbeat_ms,
            energy_ms: scaled(
                l.energy_ms,
                linear_factor,
                stretch(l.energy_ms, linear_factor),
            ),
            anti_entropy_ms: scaled(
                l.anti_entropy_ms,
                sqrt_factor,
                stretch(l.anti_entropy_ms, sqrt_factor),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn controller() -> CadenceController {
        CadenceController::new(Settings::default())
    }

    /// Feeds `peers` peers' heartbeats every 500 ms for `ms`, dropping those `drop` picks.
    fn feed(c: &mut CadenceController, from: u64, ms: u64, drop: impl Fn(u64) -> bool) -> u64 {
        let mut now = from;
        while now < from + ms {
            let seq = now / 500;
            for p in ["a", "b", "c"] {
                if !drop(seq) {
                    c.heartbeat_from(&NodeId::new(p).unwrap(), seq, 500, At::from_millis(now));
                }
            }
            c.tick(At::from_millis(now));
            now += 500;
        }
        now
    }

    #[test]
    fn battery_thresholds_slow_the_node_after_the_dwell() {
        let mut c = controller();
        c.set_battery(Some(50), false);
        assert_eq!(c.tick(At::from_millis(0)).mode, CadenceMode::Normal);
        c.set_battery(Some(15), false);
        assert_eq!(
            c.tick(At::from_millis(1_000)).mode,
            CadenceMode::Normal,
            "not before the dwell"
        );
        assert_eq!(
            c.tick(At::from_millis(11_000)).mode,
            CadenceMode::Conservative
        );
        c.set_battery(Some(5), false);
        c.tick(At::from_millis(12_000));
        let d = c.tick(At::from_millis(22_000));
        assert_eq!(d.mode, CadenceMode::Emergency);
        assert_eq!(d.heartbeat_ms, 2_000);
        assert_eq!(d.energy_ms, 20_000);
        c.set_battery(Some(12), false);
        c.tick(At::from_millis(23_000));
        assert_eq!(
            c.tick(At::from_millis(40_000)).mode,
            CadenceMode::Emergency,
            "12 % is inside the margin"
        );
        c.set_battery(Some(60), true);
        c.tick(At::from_millis(41_000));
        assert_eq!(
            c.tick(At::from_millis(51_000)).mode,
            CadenceMode::Normal,
            "charging lifts the floor"
        );
    }

    #[test]
    fn loss_speeds_the_swarm_up_until_it_heals() {
        let mut c = controller();
        let now = feed(&mut c, 0, 20_000, |_| false);
        assert_eq!(c.decision().mode, CadenceMode::Normal);
        // Every fifth heartbeat lost: 20 %.
        let now = feed(&mut c, now, 30_000, |seq| seq % 5 == 0);
        assert_eq!(c.decision().mode, CadenceMode::Aggressive);
        assert_eq!(c.decision().heartbeat_ms, 250);
        let now = feed(&mut c, now, 5_000, |_| false);
        assert_eq!(c.decision().mode, CadenceMode::Aggressive, "not healed yet");
        feed(&mut c, now, 40_000, |_| false);
        assert_eq!(c.decision().mode, CadenceMode::Normal);
    }

    #[test]
    fn a_healthy_led_swarm_goes_quiet_after_the_dwell_and_wakes_at_once_without_a_leader() {
        let mut c = controller();
        // No leader known: never quiet, however healthy.
        let now = feed(&mut c, 0, 20_000, |_| false);
        assert_eq!(c.decision().mode, CadenceMode::Normal);
        c.set_led(true);
        let now = feed(&mut c, now, 5_000, |_| false);
        assert_eq!(
            c.decision().mode,
            CadenceMode::Normal,
            "not before the dwell"
        );
        let now = feed(&mut c, now, 10_000, |_| false);
        let d = c.decision();
        assert_eq!(d.mode, CadenceMode::Conservative);
        assert!(c.quiet());
        // A follower heartbeats every 2 s (its leader's quorum check allows 3 s).
        assert_eq!((d.heartbeat_ms, d.energy_ms), (2_000, 10_000));
        // The leader keeps its pace: failover waits on it.
        c.set_leader(true);
        assert_eq!(c.decision().heartbeat_ms, 500);
        c.set_leader(false);
        // The leader is lost: normal pace at once, no dwell.
        c.set_led(false);
        assert_eq!(c.decision().mode, CadenceMode::Normal);
        assert_eq!(c.decision().heartbeat_ms, 500);
        assert!(!c.quiet());
        let now = feed(&mut c, now, 20_000, |_| false);
        assert_eq!(c.decision().mode, CadenceMode::Normal, "still leaderless");
        // Quiet again, then loss: the swarm speeds up past normal.
        c.set_led(true);
        let now = feed(&mut c, now, 20_000, |_| false);
        assert_eq!(c.decision().mode, CadenceMode::Conservative);
        feed(&mut c, now, 30_000, |seq| seq % 5 == 0);
        assert_eq!(c.decision().mode, CadenceMode::Aggressive);
    }

    #[test]
    fn quiet_is_off_when_configured_so_pinned_or_the_battery_decides() {
        let mut off = CadenceController::new(Settings {
            quiet: false,
            ..Settings::default()
        });
        off.set_led(true);
        feed(&mut off, 0, 30_000, |_| false);
        assert_eq!(off.decision().mode, CadenceMode::Normal);

        let mut pinned = controller();
        pinned.set_led(true);
        pinned.pin(Some(CadenceMode::Normal));
        feed(&mut pinned, 0, 30_000, |_| false);
        assert_eq!(pinned.decision().mode, CadenceMode::Normal);

        // A low battery also means conservative, but that is not quiet: losing the leader
        // keeps it saving.
        let mut low = controller();
        low.set_battery(Some(15), false);
        low.set_led(true);
        feed(&mut low, 0, 30_000, |_| false);
        assert_eq!(low.decision().mode, CadenceMode::Conservative);
        assert!(!low.quiet());
        low.set_led(false);
        assert_eq!(low.decision().mode, CadenceMode::Conservative);
    }

    #[test]
    fn a_node_busy_sending_does_not_speed_up_on_loss_until_it_quietens() {
        // Every fifth heartbeat from peers lost, and the node itself sending `per_s` a second.
        let run = |c: &mut CadenceController, from: u64, ms: u64, per_s: u64| {
            let mut now = from;
            while now < from + ms {
                c.sent(per_s / 2, At::from_millis(now));
                now = feed(c, now, 500, |seq| seq % 5 == 0);
            }
            now
        };
        let mut c = controller();
        let now = run(&mut c, 0, 40_000, 30);
        assert_eq!(c.decision().mode, CadenceMode::Normal, "busy: no speed-up");
        run(&mut c, now, 40_000, 0);
        assert_eq!(c.decision().mode, CadenceMode::Aggressive, "quiet again");
        // Its ordinary chatter (a few a second) never counts as busy.
        let mut quiet = controller();
        run(&mut quiet, 0, 40_000, 4);
        assert_eq!(quiet.decision().mode, CadenceMode::Aggressive);
    }

    #[test]
    fn jitter_speeds_the_swarm_up_until_arrivals_are_steady_again() {
        let mut c = controller();
        let peer = NodeId::new("a").unwrap();
        let (mut now, mut seq) = (0u64, 0u64);
        let mut beat = |c: &mut CadenceController, late: bool| {
            seq += 1;
            now += 500;
            // Late ones arrive 400 ms after their time, so gaps alternate 900 and 100 ms.
            let at = if late && seq % 2 == 0 { now + 400 } else { now };
            c.heartbeat_from(&peer, seq, 500, At::from_millis(at));
            c.tick(At::from_millis(at)).mode
        };
        for _ in 0..40 {
            beat(&mut c, false);
        }
        assert_eq!(c.decision().mode, CadenceMode::Normal);
        let modes: Vec<CadenceMode> = (0..60).map(|_| beat(&mut c, true)).collect();
        assert_eq!(modes.last(), Some(&CadenceMode::Aggressive), "{modes:?}");
        assert_eq!(
            modes.first(),
            Some(&CadenceMode::Normal),
            "waits for the dwell"
        );
        for _ in 0..10 {
            beat(&mut c, false);
        }
        assert_eq!(
            c.decision().mode,
            CadenceMode::Aggressive,
            "not steady long enough"
        );
        for _ in 0..80 {
            beat(&mut c, false);
        }
        assert_eq!(c.decision().mode, CadenceMode::Normal);
    }

    #[test]
    fn a_sender_jumping_its_seq_on_time_does_not_speed_the_swarm_up() {
        let mut c = controller();
        let liar = NodeId::new("liar").unwrap();
        let mut seq = 0u64;
        let mut now = 0u64;
        let mut modes = Vec::new();
        for beat in 0..200u64 {
            now = feed(&mut c, now, 500, |_| false);
            // On time, but the sequence leaps: 5 -> 1,000,000 once, by 900 every beat after.
            seq = match beat {
                0 => 5,
                1 => 1_000_000,
                _ => seq + 900,
            };
            c.heartbeat_from(&liar, seq, 500, At::from_millis(now));
            modes.push(c.tick(At::from_millis(now)).mode);
        }
        assert!(modes.iter().all(|m| *m == CadenceMode::Normal), "{modes:?}");
        // Real loss from the same sender still counts: every other beat missing, in time too.
        for _ in 0..60 {
            now = feed(&mut c, now, 1_000, |_| false);
            seq += 2;
            c.heartbeat_from(&liar, seq, 500, At::from_millis(now));
            c.tick(At::from_millis(now));
        }
        assert_eq!(c.decision().mode, CadenceMode::Aggressive);
    }

    #[test]
    fn a_bigger_swarm_talks_less_per_node_but_the_leader_keeps_its_pace() {
        let mut c = controller();
        let small = c.tick(At::from_millis(0));
        c.set_live_peers(999);
        let big = c.tick(At::from_millis(0));
        assert!(big.heartbeat_ms > small.heartbeat_ms, "{big:?}");
        assert!(big.energy_ms > small.energy_ms, "{big:?}");
        assert!(big.anti_entropy_ms > small.anti_entropy_ms, "{big:?}");
        c.set_leader(true);
        assert_eq!(c.tick(At::from_millis(0)).heartbeat_ms, 500);
        c.set_battery(Some(1), false);
        c.tick(At::from_millis(0));
        let d = c.tick(At::from_millis(20_000));
        assert_eq!(d.mode, CadenceMode::Emergency);
        assert_eq!(d.heartbeat_ms, 500, "failover bounds hold in every mode");
    }

    #[test]
    fn a_pin_applies_at_once_and_the_battery_still_wins() {
        let mut c = controller();
        c.pin(Some(CadenceMode::Conservative));
        assert_eq!(c.decision().mode, CadenceMode::Conservative);
        assert!(c.decision().pinned);
        c.pin(Some(CadenceMode::Aggressive));
        c.set_battery(Some(3), false);
        c.tick(At::from_millis(0));
        assert_eq!(c.tick(At::from_millis(10_000)).mode, CadenceMode::Emergency);
        c.set_battery(None, false);
        c.pin(None);
        assert_eq!(c.decision().mode, CadenceMode::Normal);
        assert!(!c.decision().pinned);
    }

    #[test]
    fn emergency_sends_at_least_four_times_fewer_messages() {
        let per_hour = |d: Decision| 3_600_000 / d.heartbeat_ms + 3_600_000 / d.energy_ms;
        let mut normal = controller();
        let mut emergency = controller();
        emergency.pin(Some(CadenceMode::Emergency));
        let (n, e) = (
            per_hour(normal.tick(At::from_millis(0))),
            per_hour(emergency.tick(At::from_millis(0))),
        );
        assert!(n >= 4 * e, "normal {n}/h, emergency {e}/h");
    }

    proptest! {
        /// Inputs hovering around every threshold change the mode at most once per dwell.
        #[test]
        fn noisy_inputs_do_not_flap(
            noise in proptest::collection::vec((0u8..40, 0u8..25, 0u64..400), 50..400),
        ) {
            let mut c = controller();
            let peer = NodeId::new("p").unwrap();
            let mut seq = 0u64;
            let mut changes = 0u32;
            let mut last = c.decision().mode;
            let mut now = 0u64;
            for (battery, lost, late) in noise {
                // Battery within ±20 of the thresholds, loss 0–24 % around 3 % and 10 %,
                // arrivals up to 0.8 of an interval late, around both jitter thresholds.
                c.set_battery(Some(battery), false);
                // Skipped heartbeats leave a time gap too, or they would not count as lost.
                let skipped = u64::from(lost) / 8;
                seq += 1 + skipped;
                now += 500 * skipped;
                c.heartbeat_from(&peer, seq, 500, At::from_millis(now + late));
                let mode = c.tick(At::from_millis(now + late)).mode;
                if mode != last {
                    changes += 1;
                    last = mode;
                }
                now += 500;
            }
            let allowed = 1 + (now / Settings::default().dwell_ms) as u32;
            prop_assert!(changes <= allowed, "{changes} changes in {now} ms");
        }
    }
}
