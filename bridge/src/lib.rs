//! The bridge: MQTT devices and serial/I2C peripherals become members of the swarm.
//!
//! ```text
//! device ──MQTT──▶ gate (auth, ACL, v3.1.1|v5 sniff) ──▶ rumqttd ──local link──▶ ingest ──▶ zenoh
//! device ◀──MQTT── rumqttd ◀── cmd downlink ◀──────────────────────────────────────────── zenoh
//! ```
//! `ingest` and `table` are pure; `embedded`, `external` and `mesh` are the IO around them.

pub mod auth;
pub mod bench;
pub mod bench_client;
pub mod board_time;
pub mod config;
pub mod device_writer;
pub mod devices;
pub mod embedded;
pub mod external;
pub mod firmware_devices;
pub mod firmware_slot;
pub mod frame;
pub mod gate;
pub mod heap;
pub mod homeassistant;
pub mod i2c_peripheral;
pub mod i2c_sensors;
pub mod ingest;
pub mod logging;
pub mod mesh;
pub mod mesh_readers;
pub mod run;
pub mod serial;
pub mod serial_frame;
pub mod stats;
pub mod table;
pub mod taken;
pub mod tls;
pub mod topic;
pub mod uart_device;

pub use config::{BridgeConfig, MqttMode};
pub use run::{Bridge, run_bridge};
