//! CBOR encoding of wire messages, and decoding that reports *why* bytes were refused.
//!
//! Decoding reads the array header, version and tag by hand before handing the bytes to serde,
//! so the three failures a receiver counts separately (truncated, unknown version, wrong type)
//! come out typed instead of as parsed error strings.

use crate::wire::{VERSION, WireMessage};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is truncated")]
    Truncated,
    #[error("unknown message version {found}; this build reads version {VERSION}")]
    UnknownVersion { found: u64 },
    #[error("expected a {expected} message, got {found}")]
    WrongType {
        expected: &'static str,
        found: String,
    },
    #[error("malformed {expected} message: {detail}")]
    Malformed {
        expected: &'static str,
        detail: String,
    },
}

impl DecodeError {
    /// A short stable label, used as a drop-counter name and in logs.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Truncated => "truncated",
            DecodeError::UnknownVersion { .. } => "unknown_version",
            DecodeError::WrongType { .. } => "wrong_type",
            DecodeError::Malformed { .. } => "malformed",
        }
    }
}

/// Serializes a message into its compact CBOR form.
pub fn encode<T: WireMessage>(msg: &T) -> Vec<u8> {
    // Our types never raise serde errors, so the only failure left is running out of memory,
    // which aborts anyway.
    cbor4ii::serde::to_vec(Vec::new(), msg).expect("encoding a wire message into a Vec")
}

/// The first two elements every message starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u64,
    pub tag: u64,
}

/// Reads `[version, tag, ...` without decoding the rest.
pub fn peek_header(bytes: &[u8]) -> Result<Header, DecodeError> {
    let not_message = |what: &str| DecodeError::WrongType {
        expected: "swarm",
        found: what.to_string(),
    };
    // The type is in the first byte: judge it before asking for the bytes its head announces.
    let first = *bytes.first().ok_or(DecodeError::Truncated)?;
    if first >> 5 != 4 {
        return Err(not_message(major_name(first >> 5)));
    }
    let mut at = 0;
    let (_, len) = read_head(bytes, &mut at)?;
    if matches!(len, Some(n) if n < 2) {
        return Err(DecodeError::Malformed {
            expected: "swarm",
            detail: "array shorter than [version, tag]".to_string(),
        });
    }
    let (major, version) = read_head(bytes, &mut at)?;
    match (major, version) {
        (0, Some(version)) if version != u64::from(VERSION) => {
            Err(DecodeError::UnknownVersion { found: version })
        }
        (0, Some(version)) => {
            let (major, tag) = read_head(bytes, &mut at)?;
            match (major, tag) {
                (0, Some(tag)) => Ok(Header { version, tag }),
                _ => Err(not_message("an array whose tag is not an integer")),
            }
        }
        _ => Err(not_message("an array whose version is not an integer")),
    }
}

/// Something a subscriber can decode from a payload: one wire message, or a choice of several
/// that share a key (see [`crate::Vote`]).
pub trait Decode: Sized {
    /// Named in drop logs.
    const NAME: &'static str;
    fn decode_from(bytes: &[u8]) -> Result<Self, DecodeError>;
}

impl<T: WireMessage> Decode for T {
    const NAME: &'static str = T::NAME;
    fn decode_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes)
    }
}

/// Decodes one message, refusing other versions and other message types.
pub fn decode<T: WireMessage>(bytes: &[u8]) -> Result<T, DecodeError> {
    let header = peek_header(bytes)?;
    if header.tag != u64::from(T::TAG) {
        return Err(DecodeError::WrongType {
            expected: T::NAME,
            found: alloc::format!("message tag {}", header.tag),
        });
    }
    cbor4ii::serde::from_slice(bytes).map_err(|e| classify::<T>(e))
}

fn classify<T: WireMessage>(
    e: cbor4ii::serde::DecodeError<core::convert::Infallible>,
) -> DecodeError {
    use cbor4ii::core::error::DecodeError as Core;
    match e {
        cbor4ii::serde::DecodeError::Core(Core::Eof { .. }) => DecodeError::Truncated,
        cbor4ii::serde::DecodeError::Core(Core::Mismatch { name, found }) => {
            DecodeError::WrongType {
                expected: T::NAME,
                found: alloc::format!("CBOR byte {found:#04x} where {name} was expected"),
            }
        }
        other => DecodeError::Malformed {
            expected: T::NAME,
            detail: other.to_string(),
        },
    }
}

fn major_name(major: u8) -> &'static str {
    match major {
        0 | 1 => "an integer",
        2 => "a byte string",
        3 => "a text string",
        5 => "a map",
        6 => "a tagged item",
        _ => "a simple value or float",
    }
}

/// Reads one CBOR item head: major type and argument (`None` for indefinite length).
fn read_head(bytes: &[u8], at: &mut usize) -> Result<(u8, Option<u64>), DecodeError> {
    let first = *bytes.get(*at).ok_or(DecodeError::Truncated)?;
    *at += 1;
    let major = first >> 5;
    let info = first & 0x1f;
    let width = match info {
        0..=23 => return Ok((major, Some(u64::from(info)))),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        31 => return Ok((major, None)),
        _ => {
            return Err(DecodeError::Malformed {
                expected: "swarm",
                detail: alloc::format!("reserved CBOR head byte {first:#04x}"),
            });
        }
    };
    let end = *at + width;
    let arg = bytes.get(*at..end).ok_or(DecodeError::Truncated)?;
    *at = end;
    Ok((
        major,
        Some(arg.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))),
    ))
}
