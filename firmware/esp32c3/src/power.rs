//! Deep sleep with a timer wake-up.
//!
//! esp-hal 1.2 replaced `Rtc::sleep_deep(&[&TimerWakeupSource])` with the
//! `LowPower` driver: arm an absolute deadline, then sleep.

use esp_hal::{
    peripherals::LPWR,
    rtc_cntl::sleep::{LowPower, RtcSleepConfig},
    time::{Duration, Instant},
};

/// A deadline closer than the sleep transition makes `sleep_deep` panic and
/// the chip would never wake, so very short requests are stretched.
const MIN_SLEEP_MS: u64 = 10;

pub struct Power {
    lpwr: LowPower<'static>,
}

impl Power {
    pub fn new(lpwr: LPWR<'static>) -> Self {
        Self {
            lpwr: LowPower::new(lpwr),
        }
    }

    /// Sleeps for `ms` milliseconds. The wake-up resets the chip, so this never
    /// returns; RAM is lost and the firmware boots from the start.
    pub fn deep_sleep(&mut self, ms: u64) -> ! {
        let ms = ms.max(MIN_SLEEP_MS);
        esp_println::println!("deep sleep for {ms} ms");
        self.lpwr
            .set_wakeup_deadline(Instant::now() + Duration::from_millis(ms));
        self.lpwr.sleep_deep(RtcSleepConfig::deep())
    }
}
