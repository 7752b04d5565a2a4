//! What an MQTT board says on its retained `status` topic (docs/bridge.md#what-a-board-does):
//! plain words rather than CBOR, so `mosquitto_sub` shows them and a Last-Will can carry one.

use alloc::format;
use alloc::vec::Vec;

/// The longest deep sleep a board may announce: a week. A longer one is a board that will not
/// be back, or a corrupt word.
pub const MAX_SLEEP_S: u32 = 7 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// `online`: sent after CONNACK.
    Online,
    /// `offline`: the Last-Will, said by the broker for a board that died.
    Offline,
    /// `asleep <seconds>`: said just before a deep sleep of that long; the board is present
    /// but silent until it wakes.
    Asleep { secs: u32 },
}

impl Presence {
    /// The word on the wire; `None` for anything else (counted as `bad_status`).
    pub fn parse(payload: &[u8]) -> Option<Self> {
        match payload {
            b"online" => Some(Presence::Online),
            b"offline" => Some(Presence::Offline),
            _ => {
                let secs = payload.strip_prefix(b"asleep ")?;
                // Digits only: no sign, no spaces, no leading zeros beyond "0".
                if secs.is_empty() || secs.len() > 7 || !secs.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let secs: u32 = core::str::from_utf8(secs).ok()?.parse().ok()?;
                (secs <= MAX_SLEEP_S).then_some(Presence::Asleep { secs })
            }
        }
    }

    pub fn to_bytes(self) -> Vec<u8> {
        match self {
            Presence::Online => b"online".to_vec(),
            Presence::Offline => b"offline".to_vec(),
            Presence::Asleep { secs } => format!("asleep {}", secs.min(MAX_SLEEP_S)).into_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_round_trip_and_nothing_else_passes() {
        for p in [
            Presence::Online,
            Presence::Offline,
            Presence::Asleep { secs: 0 },
            Presence::Asleep { secs: 30 },
            Presence::Asleep { secs: MAX_SLEEP_S },
        ] {
            assert_eq!(Presence::parse(&p.to_bytes()), Some(p));
        }
        for bad in [
            &b"Online"[..],
            b"asleep",
            b"asleep ",
            b"asleep -1",
            b"asleep 1e3",
            b"asleep  30",
            b"asleep 30 ",
            b"asleep 604801",
            b"asleep 99999999999",
            b"\xff",
        ] {
            assert_eq!(Presence::parse(bad), None, "{bad:?}");
        }
    }
}
