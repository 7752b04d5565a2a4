//! How often the board reports: a base interval scaled by the mode, where the battery sets a
//! floor the operator cannot pin below.

use crate::settings::CadenceSettings;
use swarm_bus::CadenceMode;
use swarm_core::cadence::battery::BatteryFloor;

#[derive(Debug, Clone, PartialEq)]
pub struct Cadence {
    settings: CadenceSettings,
    base_ms: u32,
    battery_floor: BatteryFloor,
    pinned: Option<CadenceMode>,
}

impl Cadence {
    pub fn new(settings: CadenceSettings) -> Self {
        Self {
            base_ms: settings.base_ms,
            settings,
            battery_floor: BatteryFloor::default(),
            pinned: None,
        }
    }

    pub fn settings(&self) -> &CadenceSettings {
        &self.settings
    }

    /// Moves the floor with the battery, by the nodes' rule; on mains or charging there is
    /// none.
    pub fn observe_battery(&mut self, pct: Option<u8>, charging: bool) {
        let st = &self.settings;
        self.battery_floor
            .observe(pct, charging, st.low_battery_pct, st.critical_battery_pct);
    }

    /// The operator's choice; `None` unpins.
    pub fn pin(&mut self, mode: Option<CadenceMode>) {
        self.pinned = mode;
    }

    /// Sets the `normal` interval; callers check it against the settings' bounds first.
    pub fn set_base_ms(&mut self, ms: u32) {
        self.base_ms = ms;
    }

    pub fn mode(&self) -> CadenceMode {
        let wanted = self.pinned.unwrap_or(CadenceMode::Normal);
        self.battery_floor.applied_to(wanted)
    }

    pub fn heartbeat_ms(&self) -> u32 {
        let base = u64::from(self.base_ms);
        let scaled = base * self.mode().interval_halves() / 2;
        let clamped = scaled.clamp(
            u64::from(self.settings.min_ms),
            u64::from(self.settings.max_ms),
        );
        clamped as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cadence() -> Cadence {
        Cadence::new(CadenceSettings {
            base_ms: 10_000,
            min_ms: 1_000,
            max_ms: 30_000,
            ..CadenceSettings::default()
        })
    }

    #[test]
    fn a_draining_battery_slows_the_board_down() {
        let mut c = cadence();
        let mut seen = alloc::vec::Vec::new();
        for pct in [80, 31, 29, 12, 9, 5] {
            c.observe_battery(Some(pct), false);
            seen.push((pct, c.mode(), c.heartbeat_ms()));
        }
        assert_eq!(
            seen,
            [
                (80, CadenceMode::Normal, 10_000),
                (31, CadenceMode::Normal, 10_000),
                (29, CadenceMode::Conservative, 20_000),
                (12, CadenceMode::Conservative, 20_000),
                (9, CadenceMode::Emergency, 30_000), // 40 s, clamped to max
                (5, CadenceMode::Emergency, 30_000),
            ]
        );
    }

    #[test]
    fn recovery_needs_the_hysteresis_margin() {
        let mut c = cadence();
        c.observe_battery(Some(29), false);
        c.observe_battery(Some(31), false);
        assert_eq!(
            c.mode(),
            CadenceMode::Conservative,
            "31 % is inside the margin"
        );
        c.observe_battery(Some(35), false);
        assert_eq!(c.mode(), CadenceMode::Normal);
        c.observe_battery(Some(9), false);
        c.observe_battery(Some(12), false);
        assert_eq!(c.mode(), CadenceMode::Emergency);
        c.observe_battery(Some(15), false);
        assert_eq!(c.mode(), CadenceMode::Conservative);
    }

    #[test]
    fn charging_lifts_the_floor_and_pins_cannot_go_below_it() {
        let mut c = cadence();
        c.observe_battery(Some(5), false);
        c.pin(Some(CadenceMode::Aggressive));
        assert_eq!(
            c.mode(),
            CadenceMode::Emergency,
            "an empty cell wins over the pin"
        );
        c.observe_battery(Some(5), true);
        assert_eq!(c.mode(), CadenceMode::Aggressive);
        assert_eq!(c.heartbeat_ms(), 5_000);
        c.pin(Some(CadenceMode::Conservative));
        c.set_base_ms(1_000);
        assert_eq!(c.heartbeat_ms(), 2_000);
        c.pin(None);
        c.observe_battery(None, false);
        assert_eq!(c.mode(), CadenceMode::Normal);
        assert_eq!(c.heartbeat_ms(), 1_000);
    }
}
