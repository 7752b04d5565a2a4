//! The `[board]` section: which GPIO pins (BCM numbering) the node's board has wired.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BoardSettings {
    /// An LED that `swarm-node identify <this node>` blinks; unset: identify is only logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub led_pin: Option<u8>,
    /// The LED lights when the pin is low (wired to 3V3 through the LED).
    pub led_active_low: bool,
    /// An input that is high while the supply is good (a UPS HAT's power-good line); its
    /// changes are logged and exported as `swarm_board_input{input="power_good"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_good_pin: Option<u8>,
    /// A push button to ground (the internal pull-up is used); reported as `button`, 1 pressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub button_pin: Option<u8>,
}

impl BoardSettings {
    /// The highest BCM GPIO number of a Raspberry Pi header.
    pub const MAX_PIN: u8 = 27;

    pub fn check(&self) -> Result<(), String> {
        let pins = [
            ("led_pin", self.led_pin),
            ("power_good_pin", self.power_good_pin),
            ("button_pin", self.button_pin),
        ];
        let mut used: Vec<(&str, u8)> = Vec::new();
        for (name, pin) in pins {
            let Some(pin) = pin else { continue };
            if pin > Self::MAX_PIN {
                return Err(format!(
                    "board.{name} = {pin}: BCM GPIO numbers run 0..={}",
                    Self::MAX_PIN
                ));
            }
            if let Some((other, _)) = used.iter().find(|(_, p)| *p == pin) {
                return Err(format!(
                    "board.{name} and board.{other} are both GPIO {pin}"
                ));
            }
            used.push((name, pin));
        }
        Ok(())
    }

    /// The inputs to watch: (name, pin, active level is low).
    pub fn inputs(&self) -> Vec<(&'static str, u8, bool)> {
        let mut out = Vec::new();
        if let Some(pin) = self.power_good_pin {
            out.push(("power_good", pin, false));
        }
        if let Some(pin) = self.button_pin {
            out.push(("button", pin, true));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_pins_off_the_header_and_one_pin_for_two_uses() {
        let ok = BoardSettings {
            led_pin: Some(17),
            power_good_pin: Some(27),
            ..Default::default()
        };
        assert_eq!(ok.check(), Ok(()));
        let off = BoardSettings {
            led_pin: Some(40),
            ..Default::default()
        };
        assert!(off.check().unwrap_err().contains("0..=27"));
        let twice = BoardSettings {
            led_pin: Some(4),
            button_pin: Some(4),
            ..Default::default()
        };
        assert!(twice.check().unwrap_err().contains("both GPIO 4"));
    }
}
