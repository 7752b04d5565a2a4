//! The board a node runs on: an LED that `swarm-node identify` blinks, and an optional
//! power-good or button input whose level is logged and exported. Pins are driven through
//! embedded-hal traits; on a Raspberry Pi (feature `rpi`) rppal provides them.

pub mod blink;
pub mod gpio;
pub mod settings;
pub mod watch_input;
