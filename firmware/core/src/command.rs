//! Orders from the board's `cmd` topic, checked before anything acts on them. Whatever the
//! bytes, the answer is an order or a reason, never a panic.

use crate::settings::CadenceSettings;
use alloc::format;
use alloc::string::String;
use swarm_bus::{CadenceMode, Command, CommandOp, decode};

pub use swarm_bus::UNPIN_MODE as UNPIN;
const MAX_IDENTIFY_S: u32 = 600;
const MAX_SLEEP_S: u32 = 7 * 24 * 3600;

#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    SetInterval {
        ms: u32,
    },
    /// `None`: back to the battery's choice.
    SetMode(Option<CadenceMode>),
    Identify {
        secs: u32,
    },
    Sleep {
        secs: u32,
    },
    Reboot,
    /// The gateway's time: the Unix second starting now.
    Time {
        unix_s: u32,
    },
}

/// Why a command was not obeyed, said in the board's log and counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection(pub String);

pub fn read(payload: &[u8], cadence: &CadenceSettings) -> Result<Order, Rejection> {
    let cmd = decode::<Command>(payload).map_err(|e| Rejection(format!("unreadable: {e}")))?;
    check(&cmd, cadence)
}

pub fn check(cmd: &Command, cadence: &CadenceSettings) -> Result<Order, Rejection> {
    let arg = cmd.arg;
    match cmd.op {
        CommandOp::SetInterval if (cadence.min_ms..=cadence.max_ms).contains(&arg) => {
            Ok(Order::SetInterval { ms: arg })
        }
        CommandOp::SetInterval => Err(Rejection(format!(
            "interval {arg} ms is outside {}..={} ms",
            cadence.min_ms, cadence.max_ms
        ))),
        CommandOp::SetMode if arg == UNPIN => Ok(Order::SetMode(None)),
        CommandOp::SetMode => u8::try_from(arg)
            .ok()
            .and_then(CadenceMode::from_u8)
            .map(|m| Order::SetMode(Some(m)))
            .ok_or_else(|| Rejection(format!("no cadence mode {arg} (0–3, or {UNPIN} to unpin)"))),
        CommandOp::Identify if (1..=MAX_IDENTIFY_S).contains(&arg) => {
            Ok(Order::Identify { secs: arg })
        }
        CommandOp::Identify => Err(Rejection(format!(
            "identify for {arg} s is outside 1..={MAX_IDENTIFY_S} s"
        ))),
        CommandOp::Sleep if (1..=MAX_SLEEP_S).contains(&arg) => Ok(Order::Sleep { secs: arg }),
        CommandOp::Sleep => Err(Rejection(format!(
            "sleep for {arg} s is outside 1..={MAX_SLEEP_S} s"
        ))),
        CommandOp::Reboot => Ok(Order::Reboot),
        CommandOp::Time if arg >= crate::time::EARLIEST_UNIX_S => Ok(Order::Time { unix_s: arg }),
        CommandOp::Time => Err(Rejection(format!(
            "time {arg} is before 2024: the gateway's clock is not set"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::encode;

    fn cmd(op: CommandOp, arg: u32) -> alloc::vec::Vec<u8> {
        encode(&Command { op, arg })
    }

    #[test]
    fn good_commands_become_orders() {
        let c = CadenceSettings::default();
        assert_eq!(
            read(&cmd(CommandOp::SetInterval, 5000), &c),
            Ok(Order::SetInterval { ms: 5000 })
        );
        assert_eq!(
            read(&cmd(CommandOp::SetMode, 2), &c),
            Ok(Order::SetMode(Some(CadenceMode::Conservative)))
        );
        assert_eq!(
            read(&cmd(CommandOp::SetMode, UNPIN), &c),
            Ok(Order::SetMode(None))
        );
        assert_eq!(
            read(&cmd(CommandOp::Identify, 3), &c),
            Ok(Order::Identify { secs: 3 })
        );
        assert_eq!(
            read(&cmd(CommandOp::Sleep, 60), &c),
            Ok(Order::Sleep { secs: 60 })
        );
        assert_eq!(read(&cmd(CommandOp::Reboot, 0), &c), Ok(Order::Reboot));
        assert_eq!(
            read(&cmd(CommandOp::Time, 1_780_000_000), &c),
            Ok(Order::Time {
                unix_s: 1_780_000_000
            })
        );
    }

    #[test]
    fn bad_commands_are_rejected_with_a_reason() {
        let c = CadenceSettings::default();
        let reason = |bytes: &[u8]| read(bytes, &c).unwrap_err().0;
        assert!(reason(&cmd(CommandOp::SetInterval, 10)).contains("outside"));
        assert!(reason(&cmd(CommandOp::SetMode, 7)).contains("no cadence mode 7"));
        assert!(reason(&cmd(CommandOp::SetMode, 1 << 20)).contains("no cadence mode"));
        assert!(reason(&cmd(CommandOp::Identify, 0)).contains("identify"));
        assert!(reason(&cmd(CommandOp::Time, 0)).contains("not set"));
        assert!(reason(&cmd(CommandOp::Sleep, u32::MAX)).contains("sleep"));
        assert!(reason(b"").contains("unreadable"));
        assert!(reason(b"{\"op\":\"reboot\"}").contains("unreadable"));
        let energy = encode(&swarm_bus::samples::energy());
        assert!(reason(&energy).contains("unreadable"));
    }

    #[test]
    fn no_byte_string_panics() {
        let c = CadenceSettings::default();
        let mut seed = 0x1234_5678u32;
        let base = cmd(CommandOp::SetInterval, 5000);
        for _ in 0..5000 {
            let mut bytes = base.clone();
            for _ in 0..3 {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let at = (seed >> 8) as usize % bytes.len();
                bytes[at] = (seed >> 24) as u8;
            }
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            bytes.truncate(1 + (seed >> 8) as usize % bytes.len());
            let _ = read(&bytes, &c);
        }
    }
}
