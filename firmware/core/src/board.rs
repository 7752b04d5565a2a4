//! The board's reporting: what to publish and when, what a command changes, and when to sleep.

use crate::backlog::{Backlog, Reading, Stamp};
use crate::battery::BatteryModel;
use crate::cadence::Cadence;
use crate::command::{self, Order, Rejection};
use crate::power::{EnergyMeter, PowerState};
use crate::settings::Settings;
use crate::time::TimeSync;
use crate::update::{Running, Slot, Step, Updater};
use alloc::string::String;
use alloc::vec::Vec;
use swarm_bus::{
    CadenceMode, DeviceClass, FirmwareChunk, FirmwareOffer, Heartbeat, Leaf, Presence, Role,
    SwarmKeys, decode, encode,
};

pub const ONLINE: &[u8] = b"online";
pub const OFFLINE: &[u8] = b"offline";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub status: String,
    pub heartbeat: String,
    pub energy: String,
    pub cmd: String,
    pub replay: String,
    /// Updates come down here; reports go up on `firmware`.
    pub ota: String,
    pub firmware: String,
}

/// One publication the session should send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub topic: String,
    pub payload: Vec<u8>,
    /// QoS 1 when set: the broker acknowledges it.
    pub acked: bool,
    pub retain: bool,
    /// The backlog's reading this publication carries: acknowledged, it leaves the backlog.
    pub reading: Option<u32>,
}

impl Outgoing {
    /// Bytes of the MQTT 5 PUBLISH on the wire: fixed header, topic, packet id for QoS 1, an
    /// empty property block, payload.
    pub fn wire_bytes(&self) -> usize {
        let body = 2 + self.topic.len() + if self.acked { 2 } else { 0 } + 1 + self.payload.len();
        let length_bytes = match body {
            0..=127 => 1,
            128..=16_383 => 2,
            16_384..=2_097_151 => 3,
            _ => 4,
        };
        1 + length_bytes + body
    }
}

/// What the session does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Cadence changed (or nothing to do): keep serving.
    Continue,
    Identify {
        secs: u32,
    },
    Sleep {
        ms: u64,
    },
    Reboot,
}

/// Bytes and awake time of one report cycle: connect (if it had to), publish, until asleep or
/// the next cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CycleFigures {
    pub bytes_sent: usize,
    pub publications: u32,
}

pub struct Board {
    settings: Settings,
    topics: Topics,
    cadence: Cadence,
    pub meter: EnergyMeter,
    seq: u64,
    next_report_ms: Option<u64>,
    battery_pct: Option<u8>,
    charging: Option<bool>,
    pub rejected: u32,
    cycle: CycleFigures,
    /// Wall-clock time from the gateway.
    pub time: TimeSync,
    /// Energy readings the broker has not acknowledged yet.
    pub backlog: Backlog,
    /// While no session is up: when the next reading is taken for the backlog.
    next_offline_ms: Option<u64>,
    /// The firmware it runs and any update under way.
    pub update: Updater,
}

impl Board {
    pub fn new(settings: Settings, meter: EnergyMeter) -> Self {
        let keys = SwarmKeys::new(settings.swarm.clone());
        let id = &settings.node;
        let topics = Topics {
            status: keys.node_leaf(id, Leaf::Status),
            heartbeat: keys.heartbeat(id),
            energy: keys.energy(id),
            cmd: keys.node_leaf(id, Leaf::Cmd),
            replay: keys.node_leaf(id, Leaf::Replay),
            ota: keys.node_leaf(id, Leaf::Ota),
            firmware: keys.node_leaf(id, Leaf::Firmware),
        };
        let update = Updater::new(
            Running {
                version: settings.version.clone(),
                sha256: None,
                slot: 0,
            },
            settings.chip,
        );
        let mut board = Self {
            cadence: Cadence::new(settings.cadence.clone()),
            settings,
            topics,
            meter,
            seq: 0,
            next_report_ms: None,
            battery_pct: None,
            charging: None,
            rejected: 0,
            cycle: CycleFigures::default(),
            time: TimeSync::default(),
            backlog: Backlog::default(),
            next_offline_ms: None,
            update,
        };
        // Until a first session comes up, readings go into the backlog from one interval
        // after boot.
        board.next_offline_ms = Some(board.energy_interval_ms());
        board
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    pub fn mode(&self) -> CadenceMode {
        self.cadence.mode()
    }

    pub fn heartbeat_ms(&self) -> u32 {
        self.cadence.heartbeat_ms()
    }

    /// The retained `online` sent right after CONNACK; the Last-Will says `offline`.
    pub fn online(&self) -> Outgoing {
        Outgoing {
            topic: self.topics.status.clone(),
            payload: ONLINE.into(),
            acked: true,
            retain: true,
            reading: None,
        }
    }

    /// A session came up: report at once.
    pub fn on_connected(&mut self, now_ms: u64) {
        self.meter.enter(PowerState::RadioOn, now_ms);
        self.next_report_ms = Some(now_ms);
        self.next_offline_ms = None;
    }

    /// A fresh ADC reading of the battery pin, or `None` on mains power.
    pub fn observe_battery(&mut self, pin_mv: Option<u16>, charging: bool) {
        let pct = pin_mv
            .and_then(|mv| self.settings.battery.cell_mv(mv))
            .map(BatteryModel::charge_pct);
        self.battery_pct = pct;
        self.charging = pin_mv.map(|_| charging);
        self.cadence.observe_battery(pct, charging);
    }

    pub fn battery_pct(&self) -> Option<u8> {
        self.battery_pct
    }

    /// When the next report is due, if a session is up.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.next_report_ms
    }

    /// The publications due at `now_ms`: a heartbeat, and an energy report every
    /// `energy_every`-th time. `unix_ms`: wall-clock time if the board has a clock of its own;
    /// the gateway's time, once heard, comes first.
    pub fn due(&mut self, now_ms: u64, unix_ms: Option<u64>) -> Vec<Outgoing> {
        let unix_ms = self.time.unix_ms(now_ms).or(unix_ms);
        let Some(at) = self.next_report_ms.filter(|at| now_ms >= *at) else {
            return Vec::new();
        };
        let interval = self.cadence.heartbeat_ms();
        // A board that fell far behind (a stall, a slow reconnect) does not burst to catch up.
        let next = at + u64::from(interval);
        self.next_report_ms = Some(if next <= now_ms {
            now_ms + u64::from(interval)
        } else {
            next
        });
        self.meter.settle(now_ms);
        let mut out = Vec::with_capacity(2);
        out.push(self.heartbeat(interval, unix_ms));
        let every = u64::from(self.settings.cadence.energy_every.max(1));
        if self.seq.is_multiple_of(every) {
            let reading = self.reading(now_ms, unix_ms);
            let seq = self.backlog.push(reading);
            out.push(Outgoing {
                topic: self.topics.energy.clone(),
                payload: encode(&reading.energy(unix_ms.unwrap_or(0))),
                acked: true,
                retain: false,
                reading: Some(seq),
            });
        }
        self.seq += 1;
        for o in &out {
            self.cycle.bytes_sent += o.wire_bytes();
            self.cycle.publications += 1;
        }
        out
    }

    /// A heartbeat promising the next within `cadence_ms`, stamped with the time if known.
    fn heartbeat(&self, cadence_ms: u32, unix_ms: Option<u64>) -> Outgoing {
        let heartbeat = Heartbeat {
            term: 0,
            role: Role::Observer,
            leader: None,
            seq: self.seq,
            cadence_ms,
            class: DeviceClass::Minimal,
            voters: None,
            at_ms: unix_ms,
        };
        Outgoing {
            topic: self.topics.heartbeat.clone(),
            payload: encode(&heartbeat),
            acked: false,
            retain: false,
            reading: None,
        }
    }

    /// Said just before a deep sleep of `sleep_ms`: `asleep <seconds>` on the retained status
    /// (the bridge keeps the board present and holds its commands), and a heartbeat that
    /// promises the next one after the sleep, so nobody takes the silence for a fault.
    pub fn asleep(&mut self, now_ms: u64, sleep_ms: u64) -> Vec<Outgoing> {
        let secs = u32::try_from(sleep_ms.div_ceil(1000)).unwrap_or(u32::MAX);
        let status = Outgoing {
            topic: self.topics.status.clone(),
            payload: Presence::Asleep { secs }.to_bytes(),
            acked: true,
            retain: true,
            reading: None,
        };
        let cadence = u32::try_from(sleep_ms).unwrap_or(u32::MAX);
        let heartbeat = self.heartbeat(
            cadence.max(self.cadence.heartbeat_ms()),
            self.time.unix_ms(now_ms),
        );
        self.seq += 1;
        alloc::vec![status, heartbeat]
    }

    /// The energy reading at `now_ms`, on the wall clock if it is known. A board's awake share
    /// is not work done: it carries no efficiency rating of its own.
    fn reading(&mut self, now_ms: u64, unix_ms: Option<u64>) -> Reading {
        let profile = self.settings.power;
        Reading {
            at: unix_ms.map_or(Stamp::Boot(now_ms), Stamp::Unix),
            watts: self.meter.period_watts(&profile),
            wh_total: self.meter.wh_total(&profile),
            // The estimate's own view: share of time awake.
            cpu_pct: awake_pct(&self.meter),
            battery_pct: self.battery_pct,
            charging: self.charging,
        }
    }

    /// How often an energy reading is taken.
    fn energy_interval_ms(&self) -> u64 {
        u64::from(self.cadence.heartbeat_ms())
            .saturating_mul(u64::from(self.settings.cadence.energy_every.max(1)))
    }

    /// While no session is up, readings go on at the energy cadence, into the backlog. Returns
    /// whether one was taken; `next_offline_due_ms` says when to call again.
    pub fn measure_offline(&mut self, now_ms: u64) -> bool {
        let Some(at) = self.next_offline_ms.filter(|at| now_ms >= *at) else {
            return false;
        };
        let interval = self.energy_interval_ms();
        let next = at.saturating_add(interval);
        self.next_offline_ms = Some(if next <= now_ms {
            now_ms.saturating_add(interval)
        } else {
            next
        });
        self.meter.settle(now_ms);
        let unix_ms = self.time.unix_ms(now_ms);
        let reading = self.reading(now_ms, unix_ms);
        self.backlog.push(reading);
        true
    }

    /// When the next offline reading is due, while no session is up.
    pub fn next_offline_due_ms(&self) -> Option<u64> {
        self.next_offline_ms
    }

    /// The oldest reading the broker has not taken and that is not in flight, on the `replay`
    /// topic, once its time is known.
    pub fn replay(&mut self, now_ms: u64, in_flight: &[u32]) -> Option<Outgoing> {
        let time = self.time;
        self.backlog.place(|at| boot_to_unix(&time, now_ms, at));
        let (seq, reading) = self.backlog.oldest_not_in(in_flight)?;
        let Stamp::Unix(ts_ms) = reading.at else {
            // Wait for the gateway's time.
            return None;
        };
        let o = Outgoing {
            topic: self.topics.replay.clone(),
            payload: encode(&reading.energy(ts_ms)),
            acked: true,
            retain: false,
            reading: Some(seq),
        };
        self.cycle.bytes_sent += o.wire_bytes();
        self.cycle.publications += 1;
        Some(o)
    }

    /// Applies a command from the `cmd` topic. Cadence orders take effect at once (the next
    /// report goes out now, at the new cadence); the rest are for the session to carry out.
    pub fn on_command(&mut self, payload: &[u8], now_ms: u64) -> Result<Action, Rejection> {
        let order = command::read(payload, &self.settings.cadence).inspect_err(|_| {
            self.rejected = self.rejected.saturating_add(1);
        })?;
        Ok(match order {
            Order::SetInterval { ms } => {
                self.cadence.set_base_ms(ms);
                self.next_report_ms = self.next_report_ms.map(|_| now_ms);
                Action::Continue
            }
            Order::SetMode(mode) => {
                self.cadence.pin(mode);
                self.next_report_ms = self.next_report_ms.map(|_| now_ms);
                Action::Continue
            }
            Order::Identify { secs } => Action::Identify { secs },
            Order::Sleep { secs } => Action::Sleep {
                ms: u64::from(secs) * 1000,
            },
            Order::Reboot => Action::Reboot,
            Order::Time { unix_s } => {
                self.time.heard(now_ms, unix_s);
                let time = self.time;
                self.backlog.place(|at| boot_to_unix(&time, now_ms, at));
                Action::Continue
            }
        })
    }

    /// The firmware report, QoS 0: a lost one is asked again by the pusher's next offer.
    pub fn firmware_report(&self) -> Outgoing {
        Outgoing {
            topic: self.topics.firmware.clone(),
            payload: encode(&self.update.report()),
            acked: false,
            retain: false,
            reading: None,
        }
    }

    /// An update message from the `ota` topic: an offer or a chunk, told apart by its tag.
    pub fn on_update(&mut self, payload: &[u8], slot: &mut dyn Slot) -> Result<Step, Rejection> {
        if let Ok(chunk) = decode::<FirmwareChunk>(payload) {
            return Ok(self.update.on_chunk(&chunk, slot));
        }
        match decode::<FirmwareOffer>(payload) {
            Ok(offer) => Ok(self.update.on_offer(&offer, slot)),
            Err(e) => {
                self.rejected = self.rejected.saturating_add(1);
                Err(Rejection(alloc::format!("not an update message: {e}")))
            }
        }
    }

    /// After the reports of a cycle went out: how long to deep-sleep, when the settings ask
    /// for sleep at this cadence. The time already awake in this cycle is taken off. Never
    /// while an update comes in.
    pub fn sleep_after_reports(&self, now_ms: u64) -> Option<u64> {
        if self.update.busy() {
            return None;
        }
        let from = self.settings.deep_sleep_from_ms?;
        let interval = self.cadence.heartbeat_ms();
        if interval < from {
            return None;
        }
        let next = self.next_report_ms?;
        Some(next.saturating_sub(now_ms))
    }

    /// The figures of the cycle so far, and a fresh count for the next.
    pub fn take_cycle(&mut self) -> CycleFigures {
        core::mem::take(&mut self.cycle)
    }

    /// The session ended; reports wait for the next one.
    pub fn on_disconnected(&mut self, now_ms: u64) {
        self.next_report_ms = None;
        self.next_offline_ms = Some(now_ms.saturating_add(self.energy_interval_ms()));
        self.meter.enter(PowerState::CpuActive, now_ms);
    }
}

/// A monotonic time of this boot on the wall clock, if the time is known now. Readings older
/// than the boot's start (`at > now`) cannot be.
fn boot_to_unix(time: &TimeSync, now_ms: u64, at_ms: u64) -> Option<u64> {
    let age = now_ms.checked_sub(at_ms)?;
    time.unix_ms(now_ms)?.checked_sub(age)
}

fn awake_pct(m: &EnergyMeter) -> u8 {
    let total = m.radio_ms + m.cpu_ms + m.sleep_ms;
    if total == 0 {
        return 100;
    }
    ((m.radio_ms + m.cpu_ms) * 100 / total) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::{Command, CommandOp, Energy, NodeId, SwarmName, decode};

    fn board() -> Board {
        let settings = Settings::new(SwarmName::new("lab").unwrap(), NodeId::new("c3").unwrap());
        Board::new(settings, EnergyMeter::default())
    }

    #[test]
    fn wire_bytes_count_the_mqtt_5_publish() {
        let o = Outgoing {
            topic: "a/b".into(),
            payload: alloc::vec![0; 10],
            acked: true,
            retain: false,
            reading: None,
        };
        // 1 type + 1 length + 2 topic length + 3 topic + 2 packet id + 1 properties + 10.
        assert_eq!(o.wire_bytes(), 20);
        let big = Outgoing {
            payload: alloc::vec![0; 200],
            acked: false,
            ..o
        };
        assert_eq!(big.wire_bytes(), 1 + 2 + 2 + 3 + 1 + 200);
    }

    #[test]
    fn topics_are_the_swarm_bus_keys() {
        let b = board();
        assert_eq!(b.topics().status, "swarm/lab/node/c3/status");
        assert_eq!(b.topics().cmd, "swarm/lab/node/c3/cmd");
        assert_eq!(b.topics().energy, "swarm/lab/node/c3/energy");
    }

    #[test]
    fn reports_follow_the_cadence_and_never_burst() {
        let mut b = board();
        assert!(b.due(0, None).is_empty(), "nothing before a session");
        b.on_connected(1000);
        let first = b.due(1000, Some(42));
        assert_eq!(first.len(), 2);
        let hb: Heartbeat = decode(&first[0].payload).unwrap();
        assert_eq!(
            (hb.seq, hb.cadence_ms, hb.class),
            (0, 10_000, DeviceClass::Minimal)
        );
        let energy: Energy = decode(&first[1].payload).unwrap();
        assert_eq!(energy.ts_ms, 42);
        assert!(first[1].acked && !first[0].acked);
        assert!(b.due(10_999, None).is_empty());
        let second = b.due(11_000, None);
        assert_eq!(second.len(), 2);
        // A stall of a minute gives one report, then the cadence resumes from now.
        let third = b.due(71_000, None);
        assert_eq!(third.len(), 2);
        assert!(b.due(71_001, None).is_empty());
        assert_eq!(b.next_due_ms(), Some(81_000));
        let figures = b.take_cycle();
        assert_eq!(figures.publications, 6);
        let all = first.iter().chain(&second).chain(&third);
        assert_eq!(
            figures.bytes_sent,
            all.map(Outgoing::wire_bytes).sum::<usize>()
        );
        assert_eq!(b.take_cycle(), CycleFigures::default(), "a fresh count");
    }

    #[test]
    fn a_cadence_command_applies_at_once() {
        let mut b = board();
        b.on_connected(0);
        b.due(0, None);
        let cmd = encode(&Command {
            op: CommandOp::SetInterval,
            arg: 2000,
        });
        assert_eq!(b.on_command(&cmd, 500), Ok(Action::Continue));
        let hb: Heartbeat = decode(&b.due(500, None)[0].payload).unwrap();
        assert_eq!(hb.cadence_ms, 2000);
        assert_eq!(b.next_due_ms(), Some(2500));
        let pin = encode(&Command {
            op: CommandOp::SetMode,
            arg: 3,
        });
        b.on_command(&pin, 600).unwrap();
        assert_eq!(b.mode(), CadenceMode::Emergency);
        assert_eq!(b.heartbeat_ms(), 8000);
        assert!(b.on_command(b"\xff\x00", 700).is_err());
        assert_eq!(b.rejected, 1);
    }

    #[test]
    fn a_low_battery_reading_slows_the_reports() {
        let mut b = board();
        b.observe_battery(Some(1900), false); // 3.8 V cell: 40 %
        assert_eq!(b.battery_pct(), Some(40));
        assert_eq!(b.mode(), CadenceMode::Normal);
        b.observe_battery(Some(1860), false); // 3.72 V: under 20 %
        assert_eq!(b.mode(), CadenceMode::Conservative);
        b.observe_battery(Some(1700), false); // 3.4 V: almost empty
        assert_eq!(b.mode(), CadenceMode::Emergency);
        b.observe_battery(None, false);
        assert_eq!(b.mode(), CadenceMode::Normal, "on mains");
    }

    #[test]
    fn deep_sleep_fills_the_gap_to_the_next_report() {
        let mut settings =
            Settings::new(SwarmName::new("lab").unwrap(), NodeId::new("c3").unwrap());
        settings.cadence.base_ms = 60_000;
        settings.deep_sleep_from_ms = Some(30_000);
        let mut b = Board::new(settings, EnergyMeter::default());
        b.on_connected(0);
        b.due(0, None);
        assert_eq!(b.sleep_after_reports(1_500), Some(58_500));
        let fast = encode(&Command {
            op: CommandOp::SetInterval,
            arg: 10_000,
        });
        b.on_command(&fast, 2000).unwrap();
        assert_eq!(
            b.sleep_after_reports(2000),
            None,
            "too short a cadence to sleep"
        );
    }

    #[test]
    fn garbage_on_the_update_topic_is_rejected_and_counted() {
        struct NoSlot;
        impl Slot for NoSlot {
            fn capacity(&self) -> u32 {
                0
            }
            fn write(&mut self, _: u32, _: &[u8]) -> Result<(), String> {
                Err("no".into())
            }
            fn read(&mut self, _: u32, _: &mut [u8]) -> Result<(), String> {
                Err("no".into())
            }
            fn activate(&mut self) -> Result<(), String> {
                Err("no".into())
            }
        }
        let mut b = board();
        assert!(b.on_update(b"\xff\x00", &mut NoSlot).is_err());
        let cmd = encode(&Command {
            op: CommandOp::Reboot,
            arg: 0,
        });
        assert!(
            b.on_update(&cmd, &mut NoSlot).is_err(),
            "a command is no update"
        );
        assert_eq!(b.rejected, 2);
        assert_eq!(b.update.phase(), swarm_bus::FirmwarePhase::Idle);
    }

    #[test]
    fn a_sleep_command_asks_the_session_to_sleep() {
        let mut b = board();
        let sleep = encode(&Command {
            op: CommandOp::Sleep,
            arg: 30,
        });
        assert_eq!(b.on_command(&sleep, 0), Ok(Action::Sleep { ms: 30_000 }));
    }

    #[test]
    fn the_gateways_time_stamps_the_samples_from_then_on() {
        let mut b = board();
        b.on_connected(1000);
        let first = b.due(1000, None);
        let before: Energy = decode(&first[1].payload).unwrap();
        assert_eq!(before.ts_ms, 0, "no time known yet");
        let unstamped: Heartbeat = decode(&first[0].payload).unwrap();
        assert_eq!(unstamped.at_ms, None, "no time known yet");
        let time = encode(&Command {
            op: CommandOp::Time,
            arg: 1_780_000_000,
        });
        assert_eq!(b.on_command(&time, 5_000), Ok(Action::Continue));
        // The next energy report, 10 s after the first, at the gateway's time plus 6 s.
        let later = b.due(11_000, Some(42));
        let energy: Energy = decode(&later[1].payload).unwrap();
        assert_eq!(energy.ts_ms, 1_780_000_006_000, "the gateway's time wins");
        let heartbeat: Heartbeat = decode(&later[0].payload).unwrap();
        assert_eq!(heartbeat.at_ms, Some(1_780_000_006_000), "heartbeats too");
        let asleep: Heartbeat = decode(&b.asleep(11_500, 60_000)[1].payload).unwrap();
        assert_eq!(
            asleep.at_ms,
            Some(1_780_000_006_500),
            "and the one before a sleep"
        );
        let stale = encode(&Command {
            op: CommandOp::Time,
            arg: 12,
        });
        assert!(b.on_command(&stale, 12_000).is_err());
        assert_eq!(b.rejected, 1);
    }

    fn time(unix_s: u32) -> Vec<u8> {
        encode(&Command {
            op: CommandOp::Time,
            arg: unix_s,
        })
    }

    #[test]
    fn readings_taken_offline_are_replayed_oldest_first_with_the_time_they_were_taken() {
        let mut b = board();
        b.on_connected(0);
        b.on_command(&time(1_780_000_000), 0).unwrap();
        let live = b.due(0, None);
        let seq = live[1].reading.expect("the live reading is in the backlog");
        assert_eq!(b.backlog.len(), 1);
        b.backlog.acked(seq);
        assert!(b.backlog.is_empty(), "acknowledged: delivered");
        b.on_disconnected(1_000);
        assert!(!b.measure_offline(5_000), "not due yet");
        assert_eq!(b.next_offline_due_ms(), Some(11_000));
        assert!(b.measure_offline(11_000));
        assert!(b.measure_offline(21_000));
        // Back 4 s later: the live report first, then the backlog, oldest first.
        b.on_connected(25_000);
        let live = b.due(25_000, None);
        let live_seq = live[1].reading.unwrap();
        let first = b.replay(25_000, &[live_seq]).expect("a reading to replay");
        assert_eq!(first.topic, "swarm/lab/node/c3/replay");
        assert!(first.acked);
        let energy: Energy = decode(&first.payload).unwrap();
        assert_eq!(energy.ts_ms, 1_780_000_011_000);
        let second = b
            .replay(25_000, &[live_seq, first.reading.unwrap()])
            .unwrap();
        let energy: Energy = decode(&second.payload).unwrap();
        assert_eq!(energy.ts_ms, 1_780_000_021_000);
        assert_eq!(
            b.replay(
                25_000,
                &[live_seq, first.reading.unwrap(), second.reading.unwrap()]
            ),
            None
        );
        // The session dropped before the acknowledgements: everything is sent again.
        b.on_disconnected(26_000);
        b.on_connected(27_000);
        assert_eq!(b.replay(27_000, &[]).unwrap().payload, first.payload);
        assert!(
            !b.measure_offline(40_000),
            "a session is up: no offline readings"
        );
    }

    #[test]
    fn readings_from_before_the_gateways_time_wait_for_it_and_then_carry_it() {
        let mut b = board();
        b.on_connected(0);
        b.due(0, None);
        b.on_disconnected(500);
        assert!(b.measure_offline(10_500));
        b.on_connected(12_000);
        let live = b.due(12_000, None);
        let live_seq = live[1].reading.unwrap();
        let energy: Energy = decode(&live[1].payload).unwrap();
        assert_eq!(energy.ts_ms, 0, "no time known yet");
        assert_eq!(
            b.replay(12_000, &[live_seq]),
            None,
            "no time to send it with"
        );
        b.on_command(&time(1_780_000_000), 13_000).unwrap();
        let first: Energy = decode(&b.replay(13_000, &[]).unwrap().payload).unwrap();
        // The reading of the first report, at monotonic 0, 13 s before the word.
        assert_eq!(first.ts_ms, 1_780_000_000_000 - 13_000);
    }

    #[test]
    fn before_deep_sleep_the_board_says_when_it_wakes() {
        let mut b = board();
        b.on_connected(0);
        b.due(0, None);
        let said = b.asleep(1_000, 29_500);
        assert_eq!(said[0].topic, "swarm/lab/node/c3/status");
        assert_eq!(said[0].payload, b"asleep 30");
        assert!(said[0].retain && said[0].acked);
        let hb: Heartbeat = decode(&said[1].payload).unwrap();
        assert_eq!(
            (hb.seq, hb.cadence_ms),
            (1, 29_500),
            "the next heartbeat after the sleep"
        );
        let short: Heartbeat = decode(&b.asleep(2_000, 10)[1].payload).unwrap();
        assert_eq!(
            short.cadence_ms, 10_000,
            "never promises sooner than its cadence"
        );
    }
}
