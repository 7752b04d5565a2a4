//! Battery voltage and charge from one ADC reading.
//!
//! The cell sits behind a resistor divider, since the ESP32-C3 ADC reads at most about 2.5 V
//! with 11 dB attenuation while a LiPo cell reaches 4.2 V.

/// A single LiPo cell's resting voltage against charge, mV → %. A widely used approximation of
/// the discharge curve at low current; under load the voltage sags and the figure reads low.
const LIPO_CURVE: [(u16, u8); 12] = [
    (3270, 0),
    (3610, 5),
    (3690, 10),
    (3730, 20),
    (3770, 30),
    (3800, 40),
    (3840, 50),
    (3870, 60),
    (3950, 70),
    (4020, 80),
    (4110, 90),
    (4200, 100),
];

#[derive(Debug, Clone, PartialEq)]
pub struct BatteryModel {
    /// Resistor from the cell to the ADC pin, ohms.
    pub r_top_ohm: u32,
    /// Resistor from the ADC pin to ground, ohms.
    pub r_bottom_ohm: u32,
}

impl Default for BatteryModel {
    /// 100 kΩ / 100 kΩ: halves 4.2 V to 2.1 V, inside the ADC's range, for 21 µA of drain.
    fn default() -> Self {
        Self {
            r_top_ohm: 100_000,
            r_bottom_ohm: 100_000,
        }
    }
}

impl BatteryModel {
    /// The cell's voltage from the pin's, both mV. `None` for a divider with no bottom leg.
    pub fn cell_mv(&self, pin_mv: u16) -> Option<u16> {
        if self.r_bottom_ohm == 0 {
            return None;
        }
        let total = u64::from(self.r_top_ohm) + u64::from(self.r_bottom_ohm);
        let mv = u64::from(pin_mv) * total / u64::from(self.r_bottom_ohm);
        u16::try_from(mv).ok()
    }

    /// Charge from the cell's voltage, interpolated on the LiPo curve and clamped to 0..=100.
    pub fn charge_pct(cell_mv: u16) -> u8 {
        let first = LIPO_CURVE[0];
        if cell_mv <= first.0 {
            return 0;
        }
        for pair in LIPO_CURVE.windows(2) {
            let ((v0, p0), (v1, p1)) = (pair[0], pair[1]);
            if cell_mv <= v1 {
                let span = u32::from(v1 - v0);
                let into = u32::from(cell_mv - v0);
                let pct = u32::from(p0) + (u32::from(p1 - p0) * into + span / 2) / span;
                return pct as u8;
            }
        }
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_divider_scales_the_pin_back_to_the_cell() {
        let halves = BatteryModel::default();
        assert_eq!(halves.cell_mv(2000), Some(4000));
        let third = BatteryModel {
            r_top_ohm: 200_000,
            r_bottom_ohm: 100_000,
        };
        assert_eq!(third.cell_mv(1300), Some(3900));
        let broken = BatteryModel {
            r_top_ohm: 1,
            r_bottom_ohm: 0,
        };
        assert_eq!(broken.cell_mv(1000), None);
        let huge = BatteryModel {
            r_top_ohm: 10_000_000,
            r_bottom_ohm: 1,
        };
        assert_eq!(huge.cell_mv(3000), None, "overflow is refused, not wrapped");
    }

    #[test]
    fn charge_follows_the_curve_and_is_clamped() {
        assert_eq!(BatteryModel::charge_pct(0), 0);
        assert_eq!(BatteryModel::charge_pct(3270), 0);
        assert_eq!(BatteryModel::charge_pct(3840), 50);
        assert_eq!(
            BatteryModel::charge_pct(3855),
            55,
            "halfway between 50 and 60"
        );
        assert_eq!(BatteryModel::charge_pct(4200), 100);
        assert_eq!(BatteryModel::charge_pct(4350), 100);
        let mut last = 0;
        for mv in (3000..4300).step_by(10) {
            let pct = BatteryModel::charge_pct(mv);
            assert!(pct >= last, "{mv} mV gave {pct} % after {last} %");
            last = pct;
        }
    }
}
