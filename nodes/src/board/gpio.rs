//! GPIO pins for the board features: rppal's on a Raspberry Pi build (feature `rpi`); other
//! builds have none and say so when a pin is configured.

#[cfg(not(feature = "rpi"))]
use embedded_hal::digital::InputPin;
use embedded_hal::digital::{ErrorType, OutputPin};

#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    #[cfg(feature = "rpi")]
    #[error("GPIO {pin}: {reason}")]
    Pin { pin: u8, reason: String },
    #[cfg(not(feature = "rpi"))]
    #[error(
        "this build has no GPIO support; build swarm-node with `--features rpi` (the Pi package does)"
    )]
    Unsupported,
}

/// An output that may be wired active-low: `set_high` always means "lit".
pub struct Polarity<P> {
    pub pin: P,
    pub active_low: bool,
}

impl<P: ErrorType> ErrorType for Polarity<P> {
    type Error = P::Error;
}

impl<P: OutputPin> OutputPin for Polarity<P> {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        if self.active_low {
            self.pin.set_high()
        } else {
            self.pin.set_low()
        }
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        if self.active_low {
            self.pin.set_low()
        } else {
            self.pin.set_high()
        }
    }
}

#[cfg(feature = "rpi")]
pub type Output = rppal::gpio::OutputPin;
#[cfg(feature = "rpi")]
pub type Input = rppal::gpio::InputPin;
#[cfg(not(feature = "rpi"))]
pub type Output = NoPin;
#[cfg(not(feature = "rpi"))]
pub type Input = NoPin;

#[cfg(feature = "rpi")]
pub fn output(pin: u8) -> Result<Output, GpioError> {
    let err = |e: rppal::gpio::Error| GpioError::Pin {
        pin,
        reason: e.to_string(),
    };
    Ok(rppal::gpio::Gpio::new()
        .map_err(err)?
        .get(pin)
        .map_err(err)?
        .into_output_low())
}

#[cfg(feature = "rpi")]
pub fn input(pin: u8, pull_up: bool) -> Result<Input, GpioError> {
    let err = |e: rppal::gpio::Error| GpioError::Pin {
        pin,
        reason: e.to_string(),
    };
    let pin = rppal::gpio::Gpio::new()
        .map_err(err)?
        .get(pin)
        .map_err(err)?;
    Ok(if pull_up {
        pin.into_input_pullup()
    } else {
        pin.into_input()
    })
}

#[cfg(not(feature = "rpi"))]
pub fn output(_pin: u8) -> Result<Output, GpioError> {
    Err(GpioError::Unsupported)
}

#[cfg(not(feature = "rpi"))]
pub fn input(_pin: u8, _pull_up: bool) -> Result<Input, GpioError> {
    Err(GpioError::Unsupported)
}

/// The pin of a build without GPIO: it cannot be made, so it is never used.
#[cfg(not(feature = "rpi"))]
pub enum NoPin {}

#[cfg(not(feature = "rpi"))]
impl ErrorType for NoPin {
    type Error = core::convert::Infallible;
}

#[cfg(not(feature = "rpi"))]
impl OutputPin for NoPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        match *self {}
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        match *self {}
    }
}

#[cfg(not(feature = "rpi"))]
impl InputPin for NoPin {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        match *self {}
    }
    fn is_low(&mut self) -> Result<bool, Self::Error> {
        match *self {}
    }
}
