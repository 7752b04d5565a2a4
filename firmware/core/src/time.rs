//! Wall-clock time from the gateway, kept on the board's own monotonic clock, so samples carry
//! real time without an NTP server (docs/bridge.md#time). The gateway's bridge sends the time
//! as a command (`CommandOp::Time`, the Unix second) at the start of that second, on a board's
//! connection and then every minute; the board takes it as "now is that second".
//!
//! Deep sleep restarts the board's monotonic clock: before sleeping it keeps what the wall
//! clock will read when it wakes (`Carried`), in memory that survives deep sleep, and takes it
//! up again on waking until the gateway's next word.

/// The earliest time taken from a gateway: 2024-01-01. A gateway whose clock reads earlier has
/// not set it yet (a Pi without its RTC before NTP), and its word would stamp samples in 1970.
pub const EARLIEST_UNIX_S: u32 = 1_704_067_200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeSync {
    /// Unix ms minus the board's monotonic ms, from the latest word.
    offset_ms: Option<i64>,
    /// How far the board's own reckoning was from the gateway's latest word, in ms (positive:
    /// the board ran ahead).
    skew_ms: Option<i64>,
    /// Words refused: before `EARLIEST_UNIX_S`.
    pub refused: u32,
    /// The time was carried across deep sleep and not yet confirmed by the gateway.
    carried: bool,
}

/// The wall clock across deep sleep: what it will read when the board wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carried {
    pub unix_ms_at_wake: u64,
}

/// Tells the carried time from RTC memory's power-on noise.
const MAGIC: u64 = 0x7153_7741_726d_5449;

impl Carried {
    /// For RTC memory, checked on the way back.
    pub fn to_words(self) -> [u64; 2] {
        [
            self.unix_ms_at_wake,
            self.unix_ms_at_wake.rotate_left(17) ^ MAGIC,
        ]
    }

    /// Back from RTC memory; `None` for words that were never written (a power-on) or cleared.
    pub fn from_words(words: [u64; 2]) -> Option<Self> {
        let carried = Carried {
            unix_ms_at_wake: words[0],
        };
        (carried.to_words() == words).then_some(carried)
    }
}

impl TimeSync {
    /// The gateway says it is the start of Unix second `unix_s`, heard at monotonic `now_ms`.
    /// Returns false (and counts it) for a time the gateway cannot mean.
    pub fn heard(&mut self, now_ms: u64, unix_s: u32) -> bool {
        if unix_s < EARLIEST_UNIX_S {
            self.refused = self.refused.saturating_add(1);
            return false;
        }
        let gateway_ms = i64::from(unix_s) * 1000;
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        if let Some(offset) = self.offset_ms {
            self.skew_ms = Some(now.saturating_add(offset).saturating_sub(gateway_ms));
        }
        self.offset_ms = Some(gateway_ms.saturating_sub(now));
        self.carried = false;
        true
    }

    /// The wall clock at monotonic `now_ms`, once known.
    pub fn unix_ms(&self, now_ms: u64) -> Option<u64> {
        let now = i64::try_from(now_ms).ok()?;
        u64::try_from(now.checked_add(self.offset_ms?)?).ok()
    }

    /// The board's error against the gateway at the latest word.
    pub fn skew_ms(&self) -> Option<i64> {
        self.skew_ms
    }

    /// The time came from before a deep sleep, not yet from the gateway.
    pub fn is_carried(&self) -> bool {
        self.carried
    }

    /// Before a deep sleep of `sleep_ms` at monotonic `now_ms`: what to keep.
    pub fn carry(&self, now_ms: u64, sleep_ms: u64) -> Option<Carried> {
        let unix_ms_at_wake = self.unix_ms(now_ms)?.checked_add(sleep_ms)?;
        Some(Carried { unix_ms_at_wake })
    }

    /// On waking, with the monotonic clock restarted, at monotonic `now_ms`.
    pub fn resume(carried: Carried, now_ms: u64) -> Self {
        let at_wake = i64::try_from(carried.unix_ms_at_wake).ok();
        let now = i64::try_from(now_ms).ok();
        TimeSync {
            offset_ms: at_wake.zip(now).map(|(w, n)| w.saturating_sub(n)),
            skew_ms: None,
            refused: 0,
            carried: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: u32 = 1_780_000_000;

    #[test]
    fn without_the_gateways_word_there_is_no_time_and_after_it_time_runs_on_the_board() {
        let mut t = TimeSync::default();
        assert_eq!(t.unix_ms(5_000), None);
        assert!(t.heard(5_000, NOON));
        assert_eq!(t.unix_ms(5_000), Some(u64::from(NOON) * 1000));
        assert_eq!(t.unix_ms(6_250), Some(u64::from(NOON) * 1000 + 1_250));
        assert_eq!(t.skew_ms(), None, "nothing to compare the first word with");
    }

    #[test]
    fn the_next_word_says_how_far_the_board_drifted() {
        let mut t = TimeSync::default();
        t.heard(0, NOON);
        // 60 s later by the gateway, 60.3 s by the board: it runs 300 ms ahead.
        t.heard(60_300, NOON + 60);
        assert_eq!(t.skew_ms(), Some(300));
        assert_eq!(t.unix_ms(60_300), Some(u64::from(NOON + 60) * 1000));
        t.heard(120_100, NOON + 120);
        assert_eq!(t.skew_ms(), Some(-200), "behind this time");
    }

    #[test]
    fn a_gateway_that_has_no_time_yet_is_not_believed() {
        let mut t = TimeSync::default();
        assert!(!t.heard(0, 0));
        assert!(!t.heard(0, EARLIEST_UNIX_S - 1));
        assert_eq!((t.unix_ms(0), t.refused), (None, 2));
        t.heard(0, NOON);
        assert!(!t.heard(10, 3), "a bad word later keeps the good time");
        assert_eq!(t.unix_ms(10), Some(u64::from(NOON) * 1000 + 10));
    }

    #[test]
    fn time_is_carried_across_deep_sleep_until_the_gateway_confirms_it() {
        let mut t = TimeSync::default();
        t.heard(1_000, NOON);
        let kept = t.carry(3_000, 30_000).expect("time is known");
        assert_eq!(
            kept.unix_ms_at_wake,
            u64::from(NOON) * 1000 + 2_000 + 30_000
        );
        // Woken: the monotonic clock starts again near 0.
        let woke = TimeSync::resume(kept, 120);
        assert!(woke.is_carried());
        assert_eq!(woke.unix_ms(120), Some(kept.unix_ms_at_wake));
        assert_eq!(woke.unix_ms(1_120), Some(kept.unix_ms_at_wake + 1_000));
        let mut woke = woke;
        woke.heard(1_120, NOON + 33);
        assert!(!woke.is_carried());
        assert_eq!(woke.skew_ms(), Some(0));
        assert_eq!(
            TimeSync::default().carry(0, 1),
            None,
            "nothing known, nothing carried"
        );
    }

    #[test]
    fn the_carried_time_survives_as_words_and_noise_is_not_taken_for_it() {
        let c = Carried {
            unix_ms_at_wake: 1_780_000_123_456,
        };
        assert_eq!(Carried::from_words(c.to_words()), Some(c));
        assert_eq!(Carried::from_words([0, 0]), None);
        assert_eq!(Carried::from_words([c.unix_ms_at_wake, 1]), None);
    }

    #[test]
    fn extreme_clocks_do_not_overflow() {
        let mut t = TimeSync::default();
        t.heard(u64::MAX, u32::MAX);
        let _ = t.unix_ms(u64::MAX);
        let _ = t.unix_ms(0);
        let _ = t.carry(u64::MAX, u64::MAX);
        let r = TimeSync::resume(
            Carried {
                unix_ms_at_wake: u64::MAX,
            },
            0,
        );
        let _ = r.unix_ms(u64::MAX);
    }
}
