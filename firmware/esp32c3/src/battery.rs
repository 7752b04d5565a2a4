//! Battery voltage on GPIO3 (ADC1 channel 3).
//!
//! ADC1 rather than ADC2 because ADC2 is unusable while Wi-Fi is running on the ESP32-C3. The
//! divider between the cell and the pin is the core's business (`BatteryModel`); this returns
//! what the pin sees.

use esp_hal::{
    Blocking,
    analog::adc::{Adc, AdcCalCurve, AdcConfig, AdcPin, Attenuation},
    peripherals::{ADC1, GPIO3},
};

type Cal = AdcCalCurve<ADC1<'static>>;

pub struct Battery {
    adc: Adc<'static, ADC1<'static>, Blocking>,
    pin: AdcPin<GPIO3<'static>, ADC1<'static>, Cal>,
}

impl Battery {
    pub fn new(adc1: ADC1<'static>, gpio3: GPIO3<'static>) -> Self {
        let mut config = AdcConfig::new();
        // Curve calibration makes the reading come out in millivolts; 11 dB reads up to ~2.5 V.
        let pin = config.enable_pin_with_cal::<_, Cal>(gpio3, Attenuation::_11dB);
        let adc = Adc::new(adc1, config);
        Self { adc, pin }
    }

    /// The pin's voltage in mV; a conversion takes microseconds, so waiting for it blocks.
    pub fn pin_mv(&mut self) -> Option<u16> {
        loop {
            match self.adc.read_oneshot(&mut self.pin) {
                Ok(mv) => return Some(mv),
                Err(nb::Error::WouldBlock) => continue,
                Err(nb::Error::Other(())) => return None,
            }
        }
    }
}
