//! Power monitors (INA219, INA226) and a thermometer (TMP102) on I2C, through their
//! embedded-hal drivers, behind two small traits so the poller does not care which chip it has.
//!
//! Current is computed from the shunt voltage and the configured shunt resistance rather than
//! from the chips' calibration registers: it needs no register writes at start, so a chip that
//! another program already configured keeps its settings, and the arithmetic is exact.

use embedded_hal::i2c::I2c;

/// One power reading: the load's supply voltage and the current through the shunt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerReading {
    pub bus_volts: f32,
    pub amps: f32,
}

impl PowerReading {
    pub fn watts(&self) -> f32 {
        // A monitor wired backwards reads negative current; power drawn is its magnitude.
        (self.bus_volts * self.amps).abs()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{chip} at {address:#04x}: {message}")]
pub struct SensorFault {
    pub chip: &'static str,
    pub address: u8,
    pub message: String,
}

pub trait PowerMonitor: Send {
    fn read(&mut self) -> Result<PowerReading, SensorFault>;
}

pub trait Thermometer: Send {
    fn celsius(&mut self) -> Result<f32, SensorFault>;
}

fn fault(chip: &'static str, address: u8, e: impl std::fmt::Debug) -> SensorFault {
    SensorFault {
        chip,
        address,
        message: format!("{e:?}"),
    }
}

pub struct Ina219<I> {
    dev: ina219::SyncIna219<I, ina219::calibration::UnCalibrated>,
    address: u8,
    shunt_ohms: f32,
}

impl<I: I2c> Ina219<I> {
    pub fn new(i2c: I, address: u8, shunt_ohms: f32) -> Result<Self, SensorFault> {
        let addr = ina219::address::Address::from_byte(address)
            .map_err(|e| fault("INA219", address, e))?;
        Ok(Self {
            dev: ina219::SyncIna219::new_unchecked(i2c, addr, ina219::calibration::UnCalibrated),
            address,
            shunt_ohms,
        })
    }

    pub fn release(self) -> I {
        self.dev.destroy()
    }
}

impl<I: I2c + Send> PowerMonitor for Ina219<I> {
    fn read(&mut self) -> Result<PowerReading, SensorFault> {
        let shunt = self
            .dev
            .shunt_voltage()
            .map_err(|e| fault("INA219", self.address, e))?;
        let bus = self
            .dev
            .bus_voltage()
            .map_err(|e| fault("INA219", self.address, e))?;
        Ok(PowerReading {
            bus_volts: f32::from(bus.voltage_mv()) / 1000.0,
            amps: shunt.shunt_voltage_uv() as f32 / 1e6 / self.shunt_ohms,
        })
    }
}

pub struct Ina226<I> {
    dev: ina226::INA226<I>,
    address: u8,
    shunt_ohms: f32,
}

impl<I: I2c> Ina226<I> {
    pub fn new(i2c: I, address: u8, shunt_ohms: f32) -> Self {
        Self {
            dev: ina226::INA226::new(i2c, address),
            address,
            shunt_ohms,
        }
    }

    pub fn release(self) -> I {
        self.dev.destroy()
    }
}

impl<I: I2c + Send> PowerMonitor for Ina226<I> {
    fn read(&mut self) -> Result<PowerReading, SensorFault> {
        let shunt_uv = self
            .dev
            .shunt_voltage_microvolts()
            .map_err(|e| fault("INA226", self.address, e))?;
        let bus_mv = self
            .dev
            .bus_voltage_millivolts()
            .map_err(|e| fault("INA226", self.address, e))?;
        Ok(PowerReading {
            bus_volts: (bus_mv / 1000.0) as f32,
            amps: (shunt_uv / 1e6) as f32 / self.shunt_ohms,
        })
    }
}

pub struct Tmp102<I: I2c> {
    dev: tmp1x2::Tmp1x2<I, tmp1x2::marker::mode::Continuous>,
    address: u8,
}

impl<I: I2c> Tmp102<I> {
    /// `address`: 0x48..=0x4B, set by the chip's address pins.
    pub fn new(i2c: I, address: u8) -> Result<Self, SensorFault> {
        if !(0x48..=0x4B).contains(&address) {
            return Err(SensorFault {
                chip: "TMP102",
                address,
                message: "a TMP102 answers only on 0x48..=0x4B".into(),
            });
        }
        let pins = tmp1x2::SlaveAddr::Alternative(address & 0b10 != 0, address & 0b01 != 0);
        Ok(Self {
            dev: tmp1x2::Tmp1x2::new(i2c, pins),
            address,
        })
    }

    pub fn release(self) -> I {
        self.dev.destroy()
    }
}

impl<I: I2c + Send> Thermometer for Tmp102<I> {
    fn celsius(&mut self) -> Result<f32, SensorFault> {
        self.dev
            .read_temperature()
            .map_err(|e| fault("TMP102", self.address, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::i2c::ErrorKind;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

    #[test]
    fn ina219_reads_shunt_then_bus_and_computes_power() {
        // Shunt register 0x01: 1000 × 10 µV = 10 mV; bus register 0x02: 5000 mV << 3 over 4 mV.
        let bus_bits: u16 = (5000 / 4) << 3;
        let mut i2c = Mock::new(&[
            T::write_read(0x40, vec![0x01], 1000u16.to_be_bytes().to_vec()),
            T::write_read(0x40, vec![0x02], bus_bits.to_be_bytes().to_vec()),
        ]);
        let mut ina = Ina219::new(i2c.clone(), 0x40, 0.1).unwrap();
        let r = ina.read().unwrap();
        assert_eq!(r.bus_volts, 5.0);
        assert!((r.amps - 0.1).abs() < 1e-6, "{r:?}");
        assert!((r.watts() - 0.5).abs() < 1e-5);
        ina.release();
        i2c.done();
    }

    #[test]
    fn ina219_bus_errors_are_faults_not_panics() {
        let mut i2c = Mock::new(&[T::write_read(0x41, vec![0x01], vec![0, 0]).with_error(
            ErrorKind::NoAcknowledge(embedded_hal::i2c::NoAcknowledgeSource::Address),
        )]);
        let mut ina = Ina219::new(i2c.clone(), 0x41, 0.1).unwrap();
        let e = ina.read().unwrap_err();
        assert_eq!((e.chip, e.address), ("INA219", 0x41));
        ina.release();
        i2c.done();
        let mut idle = Mock::new(&[]);
        assert!(Ina219::new(idle.clone(), 0x05, 0.1).is_err());
        idle.done();
    }

    #[test]
    fn ina226_reads_negative_current_as_power_drawn() {
        // Shunt: -4000 × 2.5 µV = -10 mV over 0.01 Ω = -1 A; bus: 9600 × 1.25 mV = 12 V.
        let mut i2c = Mock::new(&[
            T::write(0x45, vec![0x01]),
            T::read(0x45, (-4000i16).to_be_bytes().to_vec()),
            T::write(0x45, vec![0x02]),
            T::read(0x45, 9600u16.to_be_bytes().to_vec()),
        ]);
        let mut ina = Ina226::new(i2c.clone(), 0x45, 0.01);
        let r = ina.read().unwrap();
        assert_eq!(r.bus_volts, 12.0);
        assert!((r.amps + 1.0).abs() < 1e-5, "{r:?}");
        assert!((r.watts() - 12.0).abs() < 1e-4);
        ina.release();
        i2c.done();
    }

    #[test]
    fn tmp102_reads_celsius_at_its_pin_address() {
        // 25 °C: 25 / 0.0625 = 400 = 0x190, left-aligned in 12 bits: 0x19 0x00.
        let mut i2c = Mock::new(&[T::write_read(0x49, vec![0x00], vec![0x19, 0x00])]);
        let mut t = Tmp102::new(i2c.clone(), 0x49).unwrap();
        assert_eq!(t.celsius().unwrap(), 25.0);
        t.release();
        i2c.done();
        let mut idle = Mock::new(&[]);
        assert!(Tmp102::new(idle.clone(), 0x40).is_err());
        idle.done();
    }
}
