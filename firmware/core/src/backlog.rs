//! Readings kept until the broker has them (docs/bridge.md#readings-kept-through-outages).
//!
//! Every energy reading enters the backlog when it is taken, whether a session is up or not,
//! and leaves only when the broker acknowledges it (MQTT QoS 1 PUBACK). So a reading published
//! live whose session died before the acknowledgement is sent again, and readings taken while
//! the broker was unreachable go out oldest first once it is back, on the `replay` topic, with
//! the time they were taken. At least once: a reading whose acknowledgement was lost arrives
//! twice, with the same timestamp.
//!
//! The backlog holds `CAPACITY` readings; a full backlog drops its oldest reading for a new
//! one and counts it in `lost`. It outlives deep sleep as plain words in RTC memory.

use alloc::collections::VecDeque;
use swarm_bus::{Energy, PowerSource};

/// 128 readings: 21 minutes at the default 10 s cadence, two hours at one a minute; 2 KiB of
/// the ESP32-C3's 8 KiB of RTC memory.
pub const CAPACITY: usize = 128;

/// When a reading was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// Unix ms, from the gateway's time.
    Unix(u64),
    /// The board's monotonic ms in this boot: taken before the gateway's time was heard, and
    /// placed on the wall clock once it is.
    Boot(u64),
}

/// One energy reading, as compact as the ring needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub at: Stamp,
    pub watts: f32,
    pub wh_total: f32,
    pub cpu_pct: u8,
    pub battery_pct: Option<u8>,
    pub charging: Option<bool>,
}

impl Reading {
    /// The wire message, at Unix ms `ts_ms`.
    pub fn energy(&self, ts_ms: u64) -> Energy {
        Energy {
            ts_ms,
            watts: self.watts,
            source: PowerSource::Device,
            cpu_pct: self.cpu_pct,
            temp_c: None,
            battery_pct: self.battery_pct,
            charging: self.charging,
            wh_total: self.wh_total,
            co2_g: 0.0,
            eff_pct: None,
        }
    }

    /// Two words for RTC memory; only readings on the wall clock travel (a boot stamp means
    /// nothing after the next boot).
    fn to_words(self) -> Option<[u64; 2]> {
        let Stamp::Unix(ms) = self.at else {
            return None;
        };
        if ms >= 1 << 48 {
            return None;
        }
        let battery = self.battery_pct.map_or(0, |p| u64::from(p.min(254)) + 1);
        let charging = u64::from(self.charging == Some(true));
        let first = ms | battery << 48 | u64::from(self.cpu_pct & 0x7f) << 56 | charging << 63;
        let second = u64::from(self.watts.to_bits()) | u64::from(self.wh_total.to_bits()) << 32;
        Some([first, second])
    }

    fn from_words([first, second]: [u64; 2]) -> Self {
        let battery = ((first >> 48) & 0xff) as u8;
        let battery_pct = battery.checked_sub(1);
        Reading {
            at: Stamp::Unix(first & ((1 << 48) - 1)),
            watts: f32::from_bits(second as u32),
            wh_total: f32::from_bits((second >> 32) as u32),
            cpu_pct: ((first >> 56) & 0x7f) as u8,
            battery_pct,
            charging: battery_pct.map(|_| first >> 63 == 1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    /// Names the reading while its publication is in flight.
    seq: u32,
    reading: Reading,
}

#[derive(Debug, Clone, Default)]
pub struct Backlog {
    ring: VecDeque<Entry>,
    next_seq: u32,
    /// Readings dropped for newer ones while the backlog was full, since power-on.
    pub lost: u32,
    /// Readings the broker took, live or replayed.
    pub delivered: u32,
}

/// Words for RTC memory: a header (count, lost, check) and two per reading.
pub const WORDS: usize = 3 + 2 * CAPACITY;
const MAGIC: u64 = 0x5377_6172_6d42_6b6c;

impl Backlog {
    /// Keeps a reading; returns its sequence number.
    pub fn push(&mut self, reading: Reading) -> u32 {
        if self.ring.len() >= CAPACITY {
            self.ring.pop_front();
            self.lost = self.lost.saturating_add(1);
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.ring.push_back(Entry { seq, reading });
        seq
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The broker acknowledged reading `seq`: it is delivered. An unknown `seq` (dropped while
    /// in flight to make room) changes nothing.
    pub fn acked(&mut self, seq: u32) {
        if let Some(i) = self.ring.iter().position(|e| e.seq == seq) {
            self.ring.remove(i);
            self.delivered = self.delivered.saturating_add(1);
        }
    }

    /// The oldest reading not in `in_flight`, with its sequence number.
    pub fn oldest_not_in(&self, in_flight: &[u32]) -> Option<(u32, Reading)> {
        self.ring
            .iter()
            .find(|e| !in_flight.contains(&e.seq))
            .map(|e| (e.seq, e.reading))
    }

    /// Places readings taken before the gateway's time was known, now that it is:
    /// `unix_of(boot_ms)` gives the wall clock at a monotonic time of this boot.
    pub fn place(&mut self, unix_of: impl Fn(u64) -> Option<u64>) {
        for e in &mut self.ring {
            if let Stamp::Boot(ms) = e.reading.at
                && let Some(unix) = unix_of(ms)
            {
                e.reading.at = Stamp::Unix(unix);
            }
        }
    }

    /// For RTC memory before deep sleep. Readings with no wall-clock time cannot be placed
    /// after the boot that took them: they are dropped here and counted as lost.
    pub fn to_words(&self) -> [u64; WORDS] {
        let mut words = [0; WORDS];
        let mut count = 0;
        let mut lost = self.lost;
        for e in &self.ring {
            match e.reading.to_words() {
                Some([a, b]) => {
                    words[3 + 2 * count] = a;
                    words[4 + 2 * count] = b;
                    count += 1;
                }
                None => lost = lost.saturating_add(1),
            }
        }
        words[0] = count as u64;
        words[1] = u64::from(lost);
        words[2] = check(&words);
        words
    }

    /// Back from RTC memory; an empty backlog for words that were never written or are
    /// damaged (a power-on leaves RTC memory random).
    pub fn from_words(words: &[u64; WORDS]) -> Self {
        let count = usize::try_from(words[0]).unwrap_or(usize::MAX);
        if count > CAPACITY || words[2] != check(words) {
            return Self::default();
        }
        let mut backlog = Self {
            lost: u32::try_from(words[1]).unwrap_or(u32::MAX),
            ..Self::default()
        };
        for i in 0..count {
            backlog.push(Reading::from_words([words[3 + 2 * i], words[4 + 2 * i]]));
        }
        backlog
    }
}

fn check(words: &[u64; WORDS]) -> u64 {
    let count = usize::try_from(words[0]).unwrap_or(0).min(CAPACITY);
    let body = words[3..3 + 2 * count]
        .iter()
        .fold(0u64, |acc, w| acc.rotate_left(7) ^ w);
    MAGIC ^ words[0] ^ words[1].rotate_left(29) ^ body
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn reading(ts: u64) -> Reading {
        Reading {
            at: Stamp::Unix(ts),
            watts: 0.25,
            wh_total: 1.5,
            cpu_pct: 40,
            battery_pct: Some(80),
            charging: Some(false),
        }
    }

    #[test]
    fn readings_leave_only_when_acknowledged_oldest_first() {
        let mut b = Backlog::default();
        let seqs: Vec<u32> = (0..5).map(|i| b.push(reading(1000 + i))).collect();
        let (first, r) = b.oldest_not_in(&[]).unwrap();
        assert_eq!((first, r.at), (seqs[0], Stamp::Unix(1000)));
        let (second, _) = b.oldest_not_in(&[first]).unwrap();
        assert_eq!(second, seqs[1]);
        b.acked(second);
        b.acked(second);
        assert_eq!((b.len(), b.delivered), (4, 1), "acked once, counted once");
        assert_eq!(b.oldest_not_in(&[]).unwrap().0, first, "unacked stays");
    }

    #[test]
    fn a_full_backlog_drops_its_oldest_and_counts_it() {
        let mut b = Backlog::default();
        for i in 0..CAPACITY as u64 + 3 {
            b.push(reading(i));
        }
        assert_eq!((b.len(), b.lost), (CAPACITY, 3));
        assert_eq!(b.oldest_not_in(&[]).unwrap().1.at, Stamp::Unix(3));
    }

    #[test]
    fn readings_before_the_time_was_known_are_placed_once_it_is() {
        let mut b = Backlog::default();
        b.push(Reading {
            at: Stamp::Boot(2_000),
            ..reading(0)
        });
        b.place(|_| None);
        assert_eq!(b.oldest_not_in(&[]).unwrap().1.at, Stamp::Boot(2_000));
        b.place(|ms| Some(1_780_000_000_000 + ms));
        assert_eq!(
            b.oldest_not_in(&[]).unwrap().1.at,
            Stamp::Unix(1_780_000_002_000)
        );
    }

    #[test]
    fn the_backlog_survives_deep_sleep_as_words_and_noise_is_not_taken_for_it() {
        let mut b = Backlog::default();
        b.push(reading(1_780_000_000_000));
        b.push(Reading {
            battery_pct: None,
            charging: None,
            cpu_pct: 100,
            ..reading(1_780_000_010_000)
        });
        b.push(Reading {
            charging: Some(true),
            ..reading(1_780_000_020_000)
        });
        b.push(Reading {
            at: Stamp::Boot(5),
            ..reading(0)
        });
        b.lost = 2;
        let back = Backlog::from_words(&b.to_words());
        let got: Vec<Reading> = back.ring.iter().map(|e| e.reading).collect();
        let want: Vec<Reading> = b.ring.iter().take(3).map(|e| e.reading).collect();
        assert_eq!(got, want);
        assert_eq!(back.lost, 3, "the reading with no wall-clock time is lost");
        assert!(Backlog::from_words(&[0; WORDS]).is_empty());
        let mut flipped = b.to_words();
        flipped[5] ^= 1 << 3;
        assert!(Backlog::from_words(&flipped).is_empty());
        let mut huge = [u64::MAX; WORDS];
        huge[0] = 3;
        assert!(Backlog::from_words(&huge).is_empty());
    }
}
