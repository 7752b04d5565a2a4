//! What the board draws, estimated from the time it spends in each state.
//!
//! An ESP32-C3 has no current sensor; the firmware knows only which state it is in. Default
//! currents are the typical figures of Espressif's *ESP32-C3 Series Datasheet* (v1.x, section
//! "Current Consumption Characteristics", 3.3 V, 25 °C): Wi-Fi receive 84 mA (listening
//! dominates an awake radio; transmit peaks of up to 335 mA last microseconds per packet),
//! modem-sleep with the CPU at 160 MHz 28 mA, deep-sleep with the RTC timer 5 µA. A development
//! board's regulator and USB bridge add to all three (often milliamps in deep sleep); measure
//! the board and override these.

/// Where the time goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    /// Wi-Fi associated and listening or sending.
    RadioOn,
    /// CPU running, radio off (booting, reading sensors).
    CpuActive,
    DeepSleep,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerProfile {
    pub radio_on_ma: f32,
    pub cpu_active_ma: f32,
    pub deep_sleep_ua: f32,
    /// The supply the currents are drawn at, for watts.
    pub supply_v: f32,
}

impl Default for PowerProfile {
    fn default() -> Self {
        Self {
            radio_on_ma: 84.0,
            cpu_active_ma: 28.0,
            deep_sleep_ua: 5.0,
            supply_v: 3.3,
        }
    }
}

impl PowerProfile {
    pub fn current_ma(&self, state: PowerState) -> f32 {
        match state {
            PowerState::RadioOn => self.radio_on_ma,
            PowerState::CpuActive => self.cpu_active_ma,
            PowerState::DeepSleep => self.deep_sleep_ua / 1000.0,
        }
    }

    /// Average current of a cycle spending these milliseconds in each state.
    pub fn average_ma(&self, radio_ms: u64, cpu_ms: u64, sleep_ms: u64) -> f32 {
        let total = radio_ms + cpu_ms + sleep_ms;
        if total == 0 {
            return 0.0;
        }
        let charge = radio_ms as f32 * self.radio_on_ma
            + cpu_ms as f32 * self.cpu_active_ma
            + sleep_ms as f32 * self.deep_sleep_ua / 1000.0;
        charge / total as f32
    }
}

/// Milliseconds per state since boot, and the state now. Plain data, so the board can keep it
/// in RTC memory across deep sleep.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EnergyMeter {
    pub radio_ms: u64,
    pub cpu_ms: u64,
    pub sleep_ms: u64,
    state: Option<(PowerState, u64)>,
    /// The totals at the last report, for the power over the report period.
    reported: (u64, u64, u64),
}

impl EnergyMeter {
    /// The board moved into `state` at `now_ms`.
    pub fn enter(&mut self, state: PowerState, now_ms: u64) {
        self.settle(now_ms);
        self.state = Some((state, now_ms));
    }

    /// Books the time spent in the current state up to `now_ms`. A clock that went back books
    /// nothing.
    pub fn settle(&mut self, now_ms: u64) {
        if let Some((state, since)) = self.state {
            let spent = now_ms.saturating_sub(since);
            match state {
                PowerState::RadioOn => self.radio_ms += spent,
                PowerState::CpuActive => self.cpu_ms += spent,
                PowerState::DeepSleep => self.sleep_ms += spent,
            }
            self.state = Some((state, now_ms.max(since)));
        }
    }

    /// Adds a deep sleep the board just woke from: RAM outside RTC memory did not see it.
    pub fn add_sleep(&mut self, ms: u64) {
        self.sleep_ms += ms;
    }

    /// Watt-hours since boot.
    pub fn wh_total(&self, profile: &PowerProfile) -> f32 {
        let total = self.radio_ms + self.cpu_ms + self.sleep_ms;
        let ma = profile.average_ma(self.radio_ms, self.cpu_ms, self.sleep_ms);
        ma / 1000.0 * profile.supply_v * total as f32 / 3_600_000.0
    }

    /// Average watts since the previous call, then starts a new period.
    pub fn period_watts(&mut self, profile: &PowerProfile) -> f32 {
        let (r, c, s) = self.reported;
        let ma = profile.average_ma(self.radio_ms - r, self.cpu_ms - c, self.sleep_ms - s);
        self.reported = (self.radio_ms, self.cpu_ms, self.sleep_ms);
        ma / 1000.0 * profile.supply_v
    }
}

/// Marks words written by `to_words`, so RTC memory left random by a power-on is not read as
/// a meter.
const MAGIC: u64 = 0x5357_4152_4d45_5452;

impl EnergyMeter {
    /// The totals as plain words for RTC memory, which keeps them across deep sleep; the last
    /// word checks the others.
    pub fn to_words(&self) -> [u64; 4] {
        let check =
            MAGIC ^ self.radio_ms ^ self.cpu_ms.rotate_left(21) ^ self.sleep_ms.rotate_left(42);
        [self.radio_ms, self.cpu_ms, self.sleep_ms, check]
    }

    /// The totals back from RTC memory; `None` after a power-on, when the words are noise.
    pub fn from_words(words: [u64; 4]) -> Option<Self> {
        let [radio_ms, cpu_ms, sleep_ms, _] = words;
        let meter = EnergyMeter {
            radio_ms,
            cpu_ms,
            sleep_ms,
            ..EnergyMeter::default()
        };
        (meter.to_words() == words).then_some(meter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_survive_a_round_trip_through_rtc_words_and_noise_does_not_pass() {
        let mut m = EnergyMeter::default();
        m.enter(PowerState::RadioOn, 0);
        m.enter(PowerState::DeepSleep, 1500);
        m.settle(61_500);
        let back = EnergyMeter::from_words(m.to_words()).expect("a meter");
        assert_eq!(
            (back.radio_ms, back.cpu_ms, back.sleep_ms),
            (1500, 0, 60_000)
        );
        assert_eq!(EnergyMeter::from_words([0; 4]), None);
        assert_eq!(EnergyMeter::from_words([7, 1, 2, 3]), None);
        let mut flipped = m.to_words();
        flipped[2] ^= 1 << 9;
        assert_eq!(EnergyMeter::from_words(flipped), None);
    }

    #[test]
    fn the_readme_deep_sleep_figure() {
        // README: 0.2 s booting (CPU), 2.0 s with the radio on, 57.8 s asleep, every 60 s.
        let ma = PowerProfile::default().average_ma(2_000, 200, 57_800);
        assert!((ma - 2.898).abs() < 0.001, "{ma}");
    }

    #[test]
    fn time_is_booked_to_the_state_it_was_spent_in() {
        let mut m = EnergyMeter::default();
        m.enter(PowerState::CpuActive, 0);
        m.enter(PowerState::RadioOn, 200);
        m.enter(PowerState::DeepSleep, 1200);
        m.settle(61_200);
        assert_eq!((m.cpu_ms, m.radio_ms, m.sleep_ms), (200, 1000, 60_000));
        m.settle(1000);
        assert_eq!(m.sleep_ms, 60_000, "a clock stepping back books nothing");
    }

    #[test]
    fn average_current_weights_each_state_by_its_time() {
        let p = PowerProfile::default();
        // 1 s at 84 mA and 59 s at 5 µA: (84 + 59 × 0.005) / 60 ≈ 1.405 mA.
        let ma = p.average_ma(1000, 0, 59_000);
        assert!((ma - 1.4049).abs() < 0.001, "{ma}");
        assert_eq!(p.average_ma(0, 0, 0), 0.0);
    }

    #[test]
    fn watts_cover_the_period_since_the_last_report() {
        let p = PowerProfile::default();
        let mut m = EnergyMeter::default();
        m.enter(PowerState::RadioOn, 0);
        m.settle(1000);
        let awake = m.period_watts(&p);
        assert!((awake - 0.084 * 3.3).abs() < 1e-4, "{awake}");
        m.enter(PowerState::DeepSleep, 1000);
        m.settle(11_000);
        let asleep = m.period_watts(&p);
        assert!(asleep < 0.0001, "{asleep}");
        // One hour at 84 mA and 3.3 V is 0.2772 Wh.
        let mut hour = EnergyMeter::default();
        hour.enter(PowerState::RadioOn, 0);
        hour.settle(3_600_000);
        assert!((hour.wh_total(&p) - 0.2772).abs() < 1e-4);
    }
}
