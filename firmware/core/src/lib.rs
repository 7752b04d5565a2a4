//! Everything the ESP32-C3 firmware decides, with no hardware in sight: the board binary
//! supplies Wi-Fi, a TCP socket, a clock and an ADC reading; the host simulator supplies std
//! TCP and a simulated battery. Topics and messages come from `swarm-bus`, so the schema has
//! one definition.
#![no_std]

extern crate alloc;

pub mod backlog;
pub mod backoff;
pub mod battery;
pub mod board;
pub mod cadence;
pub mod command;
pub mod image;
pub mod link;
pub mod power;
pub mod session;
pub mod settings;
pub mod time;
pub mod update;

pub use board::Board;
pub use settings::Settings;
