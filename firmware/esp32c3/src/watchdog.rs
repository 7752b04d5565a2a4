//! The RTC watchdog, armed only while a new image is on trial.
//!
//! The trial's deadline is checked by the main loop, so an image that hangs (a deadlock, a
//! task that never yields) would never get there and never roll back. The watchdog does not
//! depend on that loop: it resets the core once `TRIAL_WATCHDOG_MS` have passed unconfirmed,
//! and the boot plan sees a reset during the trial and boots the previous image.

use esp_hal::{
    peripherals::RTC_TIMER,
    rtc_cntl::{Rtc, Rwdt, RwdtStage, RwdtStageAction},
    time::Duration,
};

pub struct TrialWatchdog {
    rwdt: Rwdt,
}

impl TrialWatchdog {
    pub fn new(rtc_timer: RTC_TIMER<'static>) -> Self {
        // `esp_hal::init` left it disabled; it stays so until a trial starts.
        Self {
            rwdt: Rtc::new(rtc_timer).rwdt,
        }
    }

    /// Resets the core `ms` from now unless disarmed first. A core reset keeps RTC memory, so
    /// the readings kept there survive it; the watchdog pauses in deep sleep.
    pub fn arm(&mut self, ms: u64) {
        self.rwdt
            .set_timeout(RwdtStage::Stage0, Duration::from_millis(ms));
        self.rwdt.enable();
        self.rwdt
            .set_stage_action(RwdtStage::Stage0, RwdtStageAction::ResetCore);
        self.rwdt.feed();
    }

    /// The image is confirmed: no more deadline.
    pub fn disarm(&mut self) {
        self.rwdt.disable();
    }
}
