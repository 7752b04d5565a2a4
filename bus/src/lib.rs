//! The one schema of swarm mesh: names, key expressions, wire messages and their CBOR codec.
//!
//! Everything outside the `zenoh` module builds `no_std` + `alloc`, so the ESP32 firmware
//! shares these types with nodes, bridge and tests instead of copying them.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[macro_use]
mod wire;
pub mod codec;
pub mod digest;
pub mod firmware;
pub mod keys;
pub mod messages;
pub mod names;
pub mod payload;
pub mod presence;
pub mod refused;
pub mod samples;

#[cfg(feature = "std")]
pub mod clock;
#[cfg(feature = "std")]
pub mod json;
#[cfg(feature = "zenoh")]
pub mod zenoh;

pub use codec::{Decode, DecodeError, decode, encode};
pub use digest::Digest;
pub use firmware::{FirmwareChunk, FirmwareOffer, FirmwarePhase, FirmwareReport};
pub use keys::{Leaf, SwarmKey, SwarmKeys, TaskLeaf};
pub use messages::*;
pub use names::{NameError, NodeId, SwarmName, TaskId};
pub use payload::Payload;
pub use presence::Presence;
pub use refused::Refused;
pub use wire::{VERSION, WireMessage};
