//! The battery's floor under the cadence: how slow a battery lets a node or a board report,
//! whatever the operator pinned. Nodes (`CadenceController`) and the firmware share it.

use swarm_bus::CadenceMode;

/// Percentage points a battery must climb back above a threshold before the cadence speeds
/// up again, so a cell hovering at the threshold does not flip it every sample.
pub const MARGIN_PCT: u8 = 5;

/// The slowest mode the battery allows now; `Normal` on mains or while charging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatteryFloor(CadenceMode);

impl Default for BatteryFloor {
    fn default() -> Self {
        BatteryFloor(CadenceMode::Normal)
    }
}

impl BatteryFloor {
    /// Moves the floor with a battery at `pct` % (`None`: on mains): below `critical`
    /// emergency, below `low` conservative. A floor rises at its threshold and falls only
    /// [`MARGIN_PCT`] points above it.
    pub fn observe(&mut self, pct: Option<u8>, charging: bool, low: u8, critical: u8) {
        let Some(pct) = pct.filter(|_| !charging) else {
            self.0 = CadenceMode::Normal;
            return;
        };
        let now = self.0;
        let below = |threshold: u8, mode: CadenceMode| {
            if now.slower(mode) == now {
                pct < threshold.saturating_add(MARGIN_PCT)
            } else {
                pct < threshold
            }
        };
        self.0 = if below(critical, CadenceMode::Emergency) {
            CadenceMode::Emergency
        } else if below(low, CadenceMode::Conservative) {
            CadenceMode::Conservative
        } else {
            CadenceMode::Normal
        };
    }

    pub fn mode(self) -> CadenceMode {
        self.0
    }

    /// The mode `wanted` becomes under this floor. A floor that binds slows it down; a healthy
    /// battery sets none, so the operator may pin `aggressive`.
    pub fn applied_to(self, wanted: CadenceMode) -> CadenceMode {
        if self.0 == CadenceMode::Normal {
            wanted
        } else {
            wanted.slower(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(readings: &[(Option<u8>, bool)]) -> CadenceMode {
        let mut f = BatteryFloor::default();
        for (pct, charging) in readings {
            f.observe(*pct, *charging, 30, 10);
        }
        f.mode()
    }

    #[test]
    fn a_floor_rises_at_its_threshold_and_falls_only_past_the_margin() {
        assert_eq!(after(&[(Some(31), false)]), CadenceMode::Normal);
        assert_eq!(after(&[(Some(29), false)]), CadenceMode::Conservative);
        assert_eq!(
            after(&[(Some(29), false), (Some(34), false)]),
            CadenceMode::Conservative
        );
        assert_eq!(
            after(&[(Some(29), false), (Some(35), false)]),
            CadenceMode::Normal
        );
        assert_eq!(after(&[(Some(9), false)]), CadenceMode::Emergency);
        assert_eq!(
            after(&[(Some(9), false), (Some(14), false)]),
            CadenceMode::Emergency
        );
        assert_eq!(
            after(&[(Some(9), false), (Some(15), false)]),
            CadenceMode::Conservative
        );
    }

    #[test]
    fn mains_and_charging_set_no_floor() {
        assert_eq!(
            after(&[(Some(5), false), (None, false)]),
            CadenceMode::Normal
        );
        assert_eq!(
            after(&[(Some(5), false), (Some(5), true)]),
            CadenceMode::Normal
        );
    }

    #[test]
    fn a_floor_that_binds_outranks_the_pin_and_none_leaves_it() {
        let mut f = BatteryFloor::default();
        assert_eq!(
            f.applied_to(CadenceMode::Aggressive),
            CadenceMode::Aggressive
        );
        f.observe(Some(20), false, 30, 10);
        assert_eq!(
            f.applied_to(CadenceMode::Aggressive),
            CadenceMode::Conservative
        );
        assert_eq!(f.applied_to(CadenceMode::Emergency), CadenceMode::Emergency);
    }
}
