//! A microcontroller on a UART as a swarm member: frames in (see `serial_frame`), samples and
//! presence into the mesh through the same ingest as MQTT, commands from zenoh framed back out.
//! The port is reopened with backoff when it goes away (a USB adapter unplugged).

use crate::config::SerialPort;
use crate::mesh::Uplink;
use crate::serial_frame::{Deframer, encode_frame};
use bytes::Bytes;
use std::time::Duration;
use swarm_bus::codec::peek_header;
use swarm_bus::{Energy, Heartbeat, Leaf, Leave, NodeId, WireMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_serial::SerialPortBuilderExt;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Which leaf a framed message belongs on, from its tag: the frame carries no topic.
pub fn leaf_of(message: &[u8]) -> Result<Leaf, String> {
    let header = peek_header(message).map_err(|e| e.to_string())?;
    match u8::try_from(header.tag) {
        Ok(Heartbeat::TAG) => Ok(Leaf::Heartbeat),
        Ok(Energy::TAG) => Ok(Leaf::Energy),
        Ok(Leave::TAG) => Ok(Leaf::Leave),
        _ => Err(format!(
            "message tag {} is not one a peripheral sends (heartbeat, energy, leave)",
            header.tag
        )),
    }
}

/// Serves one port until the task is aborted.
pub fn spawn(port: SerialPort, max_message: usize, uplink: Uplink) -> tokio::task::JoinHandle<()> {
    tokio::spawn(serve(port, max_message, uplink))
}

async fn serve(port: SerialPort, max_message: usize, mut uplink: Uplink) {
    let id = port.node_id.clone();
    let path = port.port.display().to_string();
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Vec<u8>>(16);
    // Held for the task's life; dropped (undeclared) when the bridge stops.
    let _commands = subscribe_commands(&uplink, &id, cmd_tx).await;
    let mut backoff = BACKOFF_MIN;
    let mut reported = false;
    loop {
        match tokio_serial::new(path.as_str(), port.baud).open_native_async() {
            Ok(stream) => {
                tracing::info!(device = %id, port = %path, baud = port.baud, "serial port open");
                backoff = BACKOFF_MIN;
                reported = false;
                let why = read_port(&port, max_message, stream, &mut uplink, &mut cmd_rx).await;
                tracing::warn!(device = %id, port = %path, "serial port lost: {why}");
            }
            Err(e) if !reported => {
                tracing::warn!(device = %id, port = %path, "cannot open the serial port (retrying): {e}");
                reported = true;
            }
            Err(e) => tracing::debug!(device = %id, port = %path, "cannot open: {e}"),
        }
        set_presence(&mut uplink, &id, false).await;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn subscribe_commands(
    uplink: &Uplink,
    id: &NodeId,
    tx: mpsc::Sender<Vec<u8>>,
) -> Option<zenoh::pubsub::Subscriber<()>> {
    let key = uplink.keys().node_leaf(id, Leaf::Cmd);
    let device = id.clone();
    let declared = uplink
        .session()
        .declare_subscriber(key.clone())
        .callback(move |sample| {
            let payload = sample.payload().to_bytes().into_owned();
            if let Err(e) = tx.try_send(payload) {
                tracing::warn!(%device, "command for the serial device dropped: {e}");
            }
        })
        .await;
    match declared {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(device = %id, %key, "commands will not reach the serial device: {e}");
            None
        }
    }
}

/// Reads until the port fails; returns why.
async fn read_port(
    port: &SerialPort,
    max_message: usize,
    mut stream: tokio_serial::SerialStream,
    uplink: &mut Uplink,
    commands: &mut mpsc::Receiver<Vec<u8>>,
) -> String {
    let id = &port.node_id;
    let silence = Duration::from_millis(port.silence_ms);
    let mut deframer = Deframer::new(max_message);
    let mut buf = vec![0u8; 4096];
    let mut deadline = Instant::now() + silence;
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => return "end of stream".into(),
                Ok(n) => {
                    for frame in deframer.push(&buf[..n]) {
                        let good = match frame {
                            Ok(message) => carry(uplink, id, &message).await,
                            Err(fault) => {
                                uplink.refuse_from(id, "bad_frame", &fault);
                                false
                            }
                        };
                        if good {
                            deadline = Instant::now() + silence;
                        }
                    }
                }
                Err(e) => return e.to_string(),
            },
            Some(cmd) = commands.recv() => {
                if let Err(e) = stream.write_all(&encode_frame(&cmd)).await {
                    return format!("writing a command: {e}");
                }
                uplink.stats().commands_down.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            _ = tokio::time::sleep_until(deadline) => {
                if uplink.is_online(id) {
                    tracing::info!(device = %id, silence_ms = port.silence_ms, "serial device silent");
                }
                set_presence(uplink, id, false).await;
                deadline = Instant::now() + silence;
            }
        }
    }
}

/// One message into the mesh; the device comes online with its first good one.
async fn carry(uplink: &mut Uplink, id: &NodeId, message: &[u8]) -> bool {
    let leaf = match leaf_of(message) {
        Ok(leaf) => leaf,
        Err(why) => {
            uplink.refuse_from(id, "malformed", &why);
            return false;
        }
    };
    let topic = uplink.keys().node_leaf(id, leaf);
    if !uplink.carry(&topic, Bytes::copy_from_slice(message)).await {
        return false;
    }
    if leaf != Leaf::Leave {
        set_presence(uplink, id, true).await;
    }
    true
}

async fn set_presence(uplink: &mut Uplink, id: &NodeId, online: bool) {
    if uplink.is_online(id) != online {
        let status = uplink.keys().node_leaf(id, Leaf::Status);
        let word: &'static [u8] = if online { b"online" } else { b"offline" };
        uplink.carry(&status, Bytes::from_static(word)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::{Command, CommandOp, encode};

    #[test]
    fn the_tag_names_the_leaf() {
        let hb = swarm_bus::samples::board_heartbeat(1, std::time::Duration::from_secs(1));
        assert_eq!(leaf_of(&encode(&hb)), Ok(Leaf::Heartbeat));
        let cmd = Command {
            op: CommandOp::Identify,
            arg: 0,
        };
        let refused = leaf_of(&encode(&cmd)).unwrap_err();
        assert!(refused.contains("tag 7"), "{refused}");
        assert!(leaf_of(b"\xff\x00garbage").is_err());
    }
}
