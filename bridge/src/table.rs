//! What the bridge knows about each device: presence, last samples (the last-value cache that
//! answers zenoh queries) and counters. Pure: the caller passes the time.

use crate::ingest::{Format, Telemetry};
use crate::taken::TakenIds;
use std::collections::{BTreeMap, VecDeque};
use swarm_bus::{
    DeviceClass, Energy, FirmwareReport, Heartbeat, Leaf, NodeId, NodeState, Role, SwarmKey,
};

#[derive(Debug, Clone, Default)]
pub struct DeviceRecord {
    pub online: bool,
    pub heartbeat: Option<Heartbeat>,
    pub heartbeat_ms: u64,
    pub energy: Option<Energy>,
    pub format: Option<Format>,
    pub first_seen_ms: u64,
    /// When it went offline (or was first seen, if never online): it is forgotten after
    /// `bridge.forget_offline_after_s`.
    pub offline_since_ms: u64,
    pub accepted: u64,
    pub dropped: u64,
    /// Readings it sent late (`Telemetry::Replay`).
    pub replayed: u64,
    /// In deep sleep: when it said so and when it wakes (Unix ms). Present, silent.
    pub asleep: Option<(u64, u64)>,
    /// Commands (and update offers) that came while it slept, oldest first, for its wake:
    /// topic and payload.
    pub held: VecDeque<(String, Vec<u8>)>,
    /// Its clock against ours at its latest stamped heartbeat or live energy sample (ms,
    /// positive: ahead).
    pub clock_skew_ms: Option<i32>,
    /// Its latest firmware report: what it runs, and any update under way.
    pub firmware: Option<FirmwareReport>,
}

impl DeviceRecord {
    /// The board's reckoning of our time when it sent `stamp_ms` (0: it knows no time),
    /// against ours as it arrives: a LAN's delivery time is within the error.
    fn note_clock(&mut self, stamp_ms: u64, now_ms: u64) {
        if stamp_ms > 0 {
            let skew = i128::from(stamp_ms) - i128::from(now_ms);
            self.clock_skew_ms =
                Some(skew.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32);
        }
    }
}

/// Whether `topic` is a board's `ota` key, whose words supersede one another.
fn is_update_word(topic: &str) -> bool {
    matches!(
        topic.parse::<SwarmKey>(),
        Ok(SwarmKey::NodeLeaf {
            leaf: Leaf::Ota,
            ..
        })
    )
}

/// Commands held for one sleeping board at most; past it the oldest goes (counted).
pub const MAX_HELD: usize = 16;

/// How late a board may wake before it is offline: half a minute for Wi-Fi and DHCP, and a
/// tenth of the sleep for its RTC's drift (±5 % on an ESP32-C3's internal oscillator).
pub fn wake_margin_ms(sleep_ms: u64) -> u64 {
    30_000u64.saturating_add(sleep_ms / 10)
}

/// What became of a command for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Awake (or unknown): send it now.
    No,
    /// Held for its wake.
    Yes,
    /// Held, and the oldest held one was dropped to make room.
    DroppedOldest,
}

/// A presence change the bridge must turn into a liveliness token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceChange {
    Online(NodeId),
    Offline(NodeId),
}

/// The table holds `max_devices` and has no room for another: every record is of a device
/// online now (offline ones make room).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the device table is full ({0} devices online)")]
pub struct TableFull(pub usize);

/// How often offline devices are looked for to forget, at most.
const SWEEP_EVERY_MS: u64 = 60_000;

#[derive(Debug)]
pub struct DeviceTable {
    devices: BTreeMap<NodeId, DeviceRecord>,
    /// Ids no device may take (`crate::taken`); under the same lock, so carrying a message
    /// costs one lock.
    pub taken: TakenIds,
    version: String,
    max_devices: usize,
    forget_after_ms: u64,
    last_sweep_ms: u64,
}

impl DeviceTable {
    /// A table with the default bounds: 10,000 devices, offline ones forgotten after an hour.
    pub fn new(version: impl Into<String>) -> Self {
        Self::bounded(version, 10_000, 3_600_000)
    }

    pub fn bounded(version: impl Into<String>, max_devices: usize, forget_after_ms: u64) -> Self {
        Self {
            devices: BTreeMap::new(),
            taken: TakenIds::new(max_devices.max(1)),
            version: version.into(),
            max_devices: max_devices.max(1),
            forget_after_ms,
            last_sweep_ms: 0,
        }
    }

    /// Devices in the table, online or not.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Forgets devices offline for longer than the configured time; returns how many.
    pub fn forget_offline(&mut self, now_ms: u64) -> usize {
        self.last_sweep_ms = now_ms;
        let before = self.devices.len();
        let after = self.forget_after_ms;
        self.devices
            .retain(|_, r| r.online || now_ms.saturating_sub(r.offline_since_ms) < after);
        before - self.devices.len()
    }

    fn entry(&mut self, id: &NodeId, now_ms: u64) -> Result<&mut DeviceRecord, TableFull> {
        if now_ms.saturating_sub(self.last_sweep_ms) >= SWEEP_EVERY_MS {
            self.forget_offline(now_ms);
        }
        if !self.devices.contains_key(id) && self.devices.len() >= self.max_devices {
            // Room is made by the device offline longest; one online now is never dropped.
            let oldest = self
                .devices
                .iter()
                .filter(|(_, r)| !r.online)
                .min_by_key(|(_, r)| r.offline_since_ms)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(old) => {
                    self.devices.remove(&old);
                }
                None => return Err(TableFull(self.devices.len())),
            }
        }
        Ok(self
            .devices
            .entry(id.clone())
            .or_insert_with(|| DeviceRecord {
                first_seen_ms: now_ms,
                offline_since_ms: now_ms,
                ..DeviceRecord::default()
            }))
    }

    /// Returns the change to announce, if any.
    pub fn set_online(
        &mut self,
        id: &NodeId,
        online: bool,
        now_ms: u64,
    ) -> Result<Option<PresenceChange>, TableFull> {
        if !online && !self.devices.contains_key(id) {
            // A retained Last-Will of a device never seen: nothing to record or announce.
            return Ok(None);
        }
        let record = self.entry(id, now_ms)?;
        // Awake, or gone: either way no longer asleep.
        record.asleep = None;
        if record.online == online {
            return Ok(None);
        }
        record.online = online;
        if !online {
            record.offline_since_ms = now_ms;
        }
        Ok(Some(if online {
            PresenceChange::Online(id.clone())
        } else {
            PresenceChange::Offline(id.clone())
        }))
    }

    pub fn record(
        &mut self,
        id: &NodeId,
        format: Format,
        msg: &Telemetry,
        now_ms: u64,
    ) -> Result<(), TableFull> {
        let record = self.entry(id, now_ms)?;
        record.accepted += 1;
        record.format = Some(format);
        match msg {
            Telemetry::Heartbeat(hb) => {
                record.note_clock(hb.at_ms.unwrap_or(0), now_ms);
                record.heartbeat = Some(hb.clone());
                record.heartbeat_ms = now_ms;
            }
            Telemetry::Energy(e) => {
                record.note_clock(e.ts_ms, now_ms);
                record.energy = Some(e.clone());
            }
            // An old reading: history, not the board's current value.
            Telemetry::Replay(_) => record.replayed += 1,
            Telemetry::Firmware(f) => record.firmware = Some(f.clone()),
            Telemetry::Leave(_) => {}
        }
        Ok(())
    }

    /// Counts a refused message against a device; how many so far (0 when the table has no
    /// room for it: the bridge's own counter still has it).
    pub fn count_drop(&mut self, id: &NodeId, now_ms: u64) -> u64 {
        match self.entry(id, now_ms) {
            Ok(record) => {
                record.dropped += 1;
                record.dropped
            }
            Err(_) => 0,
        }
    }

    pub fn get(&self, id: &NodeId) -> Option<&DeviceRecord> {
        self.devices.get(id)
    }

    pub fn online(&self) -> impl Iterator<Item = &NodeId> {
        self.devices
            .iter()
            .filter(|(_, r)| r.online)
            .map(|(id, _)| id)
    }

    /// The board says it deep-sleeps until `until_ms`: present (online if it was not: a bridge
    /// that restarted reads the retained word), silent, its commands held.
    pub fn set_asleep(
        &mut self,
        id: &NodeId,
        until_ms: u64,
        now_ms: u64,
    ) -> Result<Option<PresenceChange>, TableFull> {
        let record = self.entry(id, now_ms)?;
        record.asleep = Some((now_ms, until_ms));
        if record.online {
            return Ok(None);
        }
        record.online = true;
        Ok(Some(PresenceChange::Online(id.clone())))
    }

    /// Holds a command for a sleeping device; `Held::No` for one awake (or unknown).
    ///
    /// An update word replaces the one held before it: a pusher re-offers every few seconds
    /// while the board sleeps, and those repeats would otherwise push its commands out of
    /// the queue. The newest offer is all a waking board needs: it answers with where to
    /// resume, and the pusher sends from there.
    pub fn hold(&mut self, id: &NodeId, topic: &str, payload: Vec<u8>) -> Held {
        let Some(record) = self.devices.get_mut(id).filter(|r| r.asleep.is_some()) else {
            return Held::No;
        };
        if is_update_word(topic) {
            record.held.retain(|(held, _)| held != topic);
        }
        let dropped = record.held.len() >= MAX_HELD;
        if dropped {
            record.held.pop_front();
        }
        record.held.push_back((topic.to_string(), payload));
        if dropped {
            Held::DroppedOldest
        } else {
            Held::Yes
        }
    }

    /// The commands held for a device that just woke, oldest first.
    pub fn take_held(&mut self, id: &NodeId) -> Vec<(String, Vec<u8>)> {
        self.devices
            .get_mut(id)
            .map(|r| r.held.drain(..).collect())
            .unwrap_or_default()
    }

    /// Sleeping devices that missed their wake by more than the margin: offline now.
    pub fn overslept(&mut self, now_ms: u64) -> Vec<PresenceChange> {
        let mut out = Vec::new();
        for (id, r) in self.devices.iter_mut() {
            let Some((since, until)) = r.asleep else {
                continue;
            };
            let late = until.saturating_add(wake_margin_ms(until.saturating_sub(since)));
            if r.online && now_ms > late {
                r.online = false;
                r.asleep = None;
                r.offline_since_ms = now_ms;
                out.push(PresenceChange::Offline(id.clone()));
            }
        }
        out
    }

    /// Online devices not asleep: those that can hear a command now.
    pub fn awake(&self) -> impl Iterator<Item = &NodeId> {
        self.devices
            .iter()
            .filter(|(_, r)| r.online && r.asleep.is_none())
            .map(|(id, _)| id)
    }

    /// Every device marked offline; used when the broker connection is lost, since the
    /// devices' Last-Wills can no longer reach us.
    pub fn all_offline(&mut self) -> Vec<PresenceChange> {
        self.devices
            .iter_mut()
            .filter(|(_, r)| r.online)
            .map(|(id, r)| {
                r.online = false;
                r.asleep = None;
                // Not forgotten before the broker could tell again.
                r.offline_since_ms = r.offline_since_ms.max(r.heartbeat_ms);
                PresenceChange::Offline(id.clone())
            })
            .collect()
    }

    /// The `state` a device would serve if it spoke zenoh: what `swarm-node status` lists.
    pub fn state(&self, id: &NodeId, now_ms: u64) -> Option<NodeState> {
        let r = self.devices.get(id).filter(|r| r.online)?;
        let hb = r.heartbeat.as_ref();
        Some(NodeState {
            class: hb.map(|h| h.class).unwrap_or(DeviceClass::Minimal),
            role: Role::Observer,
            term: hb.map(|h| h.term).unwrap_or(0),
            leader: hb.and_then(|h| h.leader.clone()),
            seq: hb.map(|h| h.seq).unwrap_or(0),
            cadence_ms: hb.map(|h| h.cadence_ms).unwrap_or(0),
            uptime_s: now_ms.saturating_sub(r.first_seen_ms) / 1000,
            last_heartbeat_ms: r.heartbeat_ms,
            // The board's own firmware version once it said; the bridge's before.
            version: r
                .firmware
                .as_ref()
                .map_or_else(|| self.version.clone(), |f| f.version.clone()),
            peers: Vec::new(),
            dropped: r.dropped,
            // Boards do not say; their heartbeats advertise the interval they keep.
            cadence_mode: swarm_bus::CadenceMode::Normal,
            cadence_pinned: false,
            agreed: None,
            decided: None,
            asleep_until_ms: r.asleep.map(|(_, until)| until),
            clock_skew_ms: r.clock_skew_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::samples;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn presence_changes_once_per_transition() {
        let mut t = DeviceTable::new("bridge");
        assert_eq!(
            t.set_online(&id("a"), true, 0),
            Ok(Some(PresenceChange::Online(id("a"))))
        );
        assert_eq!(t.set_online(&id("a"), true, 1), Ok(None));
        assert_eq!(
            t.set_online(&id("a"), false, 2),
            Ok(Some(PresenceChange::Offline(id("a"))))
        );
        // A device first seen offline (a retained Last-Will) announces and stores nothing.
        assert_eq!(t.set_online(&id("b"), false, 3), Ok(None));
        assert!(t.get(&id("b")).is_none());
    }

    #[test]
    fn state_reflects_the_last_heartbeat_and_only_while_online() {
        let mut t = DeviceTable::new("bridge");
        let mut hb = samples::heartbeat(3);
        hb.class = DeviceClass::Minimal;
        t.record(
            &id("a"),
            Format::Cbor,
            &Telemetry::Heartbeat(hb.clone()),
            5_000,
        )
        .unwrap();
        assert!(t.state(&id("a"), 6_000).is_none(), "not online yet");
        t.set_online(&id("a"), true, 5_000).unwrap();
        t.count_drop(&id("a"), 5_500);
        let s = t.state(&id("a"), 9_000).unwrap();
        assert_eq!(s.role, Role::Observer);
        assert_eq!(s.class, DeviceClass::Minimal);
        assert_eq!(s.seq, hb.seq);
        assert_eq!(s.last_heartbeat_ms, 5_000);
        assert_eq!(s.uptime_s, 4);
        assert_eq!(s.dropped, 1);
        assert_eq!(t.all_offline(), vec![PresenceChange::Offline(id("a"))]);
        assert!(t.state(&id("a"), 9_000).is_none());
    }

    #[test]
    fn energy_is_cached() {
        let mut t = DeviceTable::new("bridge");
        t.record(
            &id("a"),
            Format::Json,
            &Telemetry::Energy(samples::energy()),
            1,
        )
        .unwrap();
        assert_eq!(t.get(&id("a")).unwrap().energy, Some(samples::energy()));
        assert_eq!(t.get(&id("a")).unwrap().accepted, 1);
    }

    #[test]
    fn the_table_is_bounded_and_forgets_offline_devices() {
        let hour = 3_600_000;
        let mut t = DeviceTable::bounded("bridge", 3, hour);
        for (n, name) in ["a", "b", "c"].iter().enumerate() {
            t.set_online(&id(name), true, n as u64).unwrap();
        }
        // Full of devices online: a fourth is refused, nothing is dropped for it.
        assert_eq!(t.set_online(&id("d"), true, 10), Err(TableFull(3)));
        assert_eq!(t.count_drop(&id("d"), 10), 0);
        let energy = Telemetry::Energy(samples::energy());
        assert!(t.record(&id("d"), Format::Cbor, &energy, 10).is_err());
        assert_eq!(t.len(), 3);
        // One goes offline: it makes room for the newcomer.
        t.set_online(&id("a"), false, 20).unwrap();
        assert!(t.record(&id("d"), Format::Cbor, &energy, 40).is_ok());
        assert!(t.get(&id("a")).is_none());
        assert_eq!(t.len(), 3);
        // Offline for an hour: forgotten; online ones stay.
        t.set_online(&id("b"), false, 40).unwrap();
        assert_eq!(t.forget_offline(40 + hour - 1), 0);
        assert_eq!(t.forget_offline(40 + hour), 2, "b, and d never came online");
        assert_eq!(t.online().cloned().collect::<Vec<_>>(), vec![id("c")]);
    }

    #[test]
    fn a_sleeping_device_is_present_its_commands_held_until_it_wakes_or_oversleeps() {
        let mut t = DeviceTable::new("bridge");
        let a = id("a");
        t.set_online(&a, true, 0).unwrap();
        assert_eq!(t.hold(&a, "c", vec![1]), Held::No, "awake: sent at once");
        assert_eq!(t.set_asleep(&a, 30_000, 0), Ok(None), "still present");
        assert_eq!(t.awake().count(), 0);
        assert_eq!(t.state(&a, 1_000).unwrap().asleep_until_ms, Some(30_000));
        for n in 0..MAX_HELD as u8 {
            assert_eq!(t.hold(&a, "c", vec![n]), Held::Yes);
        }
        assert_eq!(t.hold(&a, "o", vec![99]), Held::DroppedOldest);
        // 30 s of sleep: a margin of 33 s.
        assert!(t.overslept(63_000).is_empty());
        t.set_online(&a, true, 40_000).unwrap();
        let held = t.take_held(&a);
        assert_eq!(held.len(), MAX_HELD);
        assert_eq!(
            (
                held[0].1[0],
                &held[MAX_HELD - 1].0[..],
                held[MAX_HELD - 1].1[0]
            ),
            (1, "o", 99),
            "oldest first, oldest dropped"
        );
        assert_eq!(t.state(&a, 41_000).unwrap().asleep_until_ms, None);
        assert!(t.take_held(&a).is_empty());
        // A push re-offering while the board sleeps keeps one offer, and the commands.
        t.set_asleep(&a, 45_000, 41_000).unwrap();
        let (cmd, ota) = ("swarm/lab/node/a/cmd", "swarm/lab/node/a/ota");
        assert_eq!(t.hold(&a, cmd, vec![1]), Held::Yes);
        for n in 0..(MAX_HELD as u8 * 2) {
            assert_eq!(t.hold(&a, ota, vec![n]), Held::Yes, "offer {n}");
        }
        assert_eq!(t.hold(&a, cmd, vec![2]), Held::Yes);
        assert_eq!(
            t.take_held(&a),
            [
                (cmd.to_string(), vec![1]),
                (ota.to_string(), vec![MAX_HELD as u8 * 2 - 1]),
                (cmd.to_string(), vec![2]),
            ],
            "the newest offer, the commands around it in order"
        );
        t.set_asleep(&a, 50_000, 40_000).unwrap();
        assert!(t.overslept(50_000 + 31_000).is_empty());
        assert_eq!(
            t.overslept(50_000 + 31_001),
            [PresenceChange::Offline(a.clone())]
        );
        assert!(t.overslept(200_000).is_empty(), "once");
        // A bridge that restarts reads the retained word of a board it never saw.
        assert_eq!(
            t.set_asleep(&id("b"), 9_000, 1_000),
            Ok(Some(PresenceChange::Online(id("b"))))
        );
    }

    #[test]
    fn a_boards_clock_skew_comes_from_its_stamped_heartbeats_and_live_samples() {
        let mut t = DeviceTable::new("bridge");
        let a = id("a");
        t.set_online(&a, true, 0).unwrap();
        let mut e = samples::energy();
        e.ts_ms = 1_780_000_000_250;
        t.record(
            &a,
            Format::Cbor,
            &Telemetry::Energy(e.clone()),
            1_780_000_000_000,
        )
        .unwrap();
        assert_eq!(t.state(&a, 0).unwrap().clock_skew_ms, Some(250));
        e.ts_ms = 0;
        t.record(
            &a,
            Format::Cbor,
            &Telemetry::Energy(e.clone()),
            1_780_000_001_000,
        )
        .unwrap();
        assert_eq!(
            t.state(&a, 0).unwrap().clock_skew_ms,
            Some(250),
            "no time: no word"
        );
        e.ts_ms = 1_000;
        t.record(&a, Format::Cbor, &Telemetry::Replay(e), 1_780_000_002_000)
            .unwrap();
        assert_eq!(
            t.state(&a, 0).unwrap().clock_skew_ms,
            Some(250),
            "replays are old"
        );
        assert_eq!(t.get(&a).unwrap().replayed, 1);
        let mut hb = samples::board_heartbeat(3, std::time::Duration::from_secs(10));
        hb.at_ms = Some(1_780_000_002_900);
        t.record(
            &a,
            Format::Cbor,
            &Telemetry::Heartbeat(hb.clone()),
            1_780_000_003_000,
        )
        .unwrap();
        assert_eq!(
            t.state(&a, 0).unwrap().clock_skew_ms,
            Some(-100),
            "a stamped heartbeat is a word too"
        );
        hb.at_ms = Some(u64::MAX);
        t.record(&a, Format::Cbor, &Telemetry::Heartbeat(hb), 0)
            .unwrap();
        assert_eq!(
            t.state(&a, 0).unwrap().clock_skew_ms,
            Some(i32::MAX),
            "an absurd stamp is clamped, not wrapped"
        );
    }
}
