//! A simulated microcontroller on a UART: heartbeat and energy frames on a cadence, commands
//! read back and obeyed like the MQTT boards do. Pair it with the bridge through
//! `socat pty,raw,echo=0,link=A pty,raw,echo=0,link=B`.

use crate::devices::{board_energy, board_heartbeat, obey};
use crate::serial_frame::{Deframer, encode_frame};
use std::path::Path;
use std::time::Duration;
use swarm_bus::{Command, NodeId, decode, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::SerialPortBuilderExt;

/// Runs until the port fails or the task is dropped.
pub async fn run(
    port: &Path,
    baud: u32,
    id: &NodeId,
    mut interval: Duration,
) -> Result<(), std::io::Error> {
    let mut stream = tokio_serial::new(port.to_string_lossy(), baud).open_native_async()?;
    let mut deframer = Deframer::new(1024);
    let mut buf = [0u8; 512];
    let started = std::time::Instant::now();
    let mut seq = 0u64;
    let mut next = tokio::time::Instant::now();
    let base = interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {
                seq += 1;
                let mut out = encode_frame(&encode(&board_heartbeat(seq, interval)));
                out.extend(encode_frame(&encode(&board_energy(started.elapsed()))));
                stream.write_all(&out).await?;
                next += interval;
            }
            read = stream.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                for frame in deframer.push(&buf[..n]) {
                    let verdict = frame
                        .map_err(|e| e.to_string())
                        .and_then(|m| decode::<Command>(&m).map_err(|e| e.to_string()))
                        .and_then(|cmd| obey(&cmd, interval, base).map(|i| (cmd, i)));
                    match verdict {
                        Ok((cmd, new)) => {
                            tracing::info!(device = %id, op = %cmd.op, arg = cmd.arg, "command obeyed");
                            interval = new;
                            next = tokio::time::Instant::now();
                        }
                        Err(why) => tracing::warn!(device = %id, "command rejected: {why}"),
                    }
                }
            }
        }
    }
}
