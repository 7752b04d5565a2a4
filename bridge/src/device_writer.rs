//! What one device is sent: rumqttd's packets and the gate's own PUBACKs, on one socket, in
//! order. The gate acknowledges a QoS 1 publication that only the mesh reads itself (rumqttd
//! never sees it), so the two sources meet here, at packet boundaries:
//!
//! - rumqttd's bytes are passed on whole packets at a time, so the gate's PUBACKs never land
//!   inside one of its packets;
//! - the gate acknowledges only while rumqttd owes the device no PUBACK ([`Owed`]): MQTT
//!   acknowledges QoS 1 publications in the order they came [MQTT-4.6.0-2], and a PUBACK of
//!   the gate's must not overtake one of rumqttd's for an earlier publication;
//! - the PINGREQs the gate sends rumqttd to keep the device's connection alive while its
//!   publications skip it are answered by rumqttd; those PINGRESPs are not the device's.

use crate::frame::{FrameError, frame, packet_type};
use bytes::{Buf, BytesMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

const PUBACK: u8 = 4;
const PINGRESP: u8 = 13;
/// What the gate sends rumqttd in the device's name to reset its keep-alive.
pub const PINGREQ: [u8; 2] = [0xc0, 0x00];
/// The longest one write to a device may take. A device that stops reading while its TCP
/// connection stays up would otherwise hold its connection, and its slot, for good: the gate
/// waits to write its PUBACKs, and rumqttd's packets wait behind them.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The most read at once from rumqttd for a device: devices are sent little (commands,
/// acknowledgements), so a small buffer, and only while there is something to send.
const DOWN_BUFFER: usize = 2048;

/// What rumqttd will answer that the device must get in order, or must not get at all.
#[derive(Debug, Default)]
pub struct Owed {
    /// QoS 1 PUBLISHes passed to rumqttd whose PUBACK has not yet gone on to the device.
    broker_acks: AtomicUsize,
    /// PINGREQs the gate sent rumqttd whose PINGRESP has not come back yet.
    gate_pings: AtomicUsize,
}

impl Owed {
    /// Whether a PUBACK of the gate's now would come after every one rumqttd owes.
    pub fn gate_may_acknowledge(&self) -> bool {
        self.broker_acks.load(SeqCst) == 0
    }

    /// A QoS 1 PUBLISH is about to go to rumqttd: noted before its bytes are written.
    pub fn broker_will_acknowledge(&self) {
        self.broker_acks.fetch_add(1, SeqCst);
    }

    /// The gate is about to send rumqttd a PINGREQ of its own.
    pub fn gate_pings(&self) {
        self.gate_pings.fetch_add(1, SeqCst);
    }

    fn broker_acknowledged(&self, n: usize) {
        let _ = self
            .broker_acks
            .fetch_update(SeqCst, SeqCst, |owed| Some(owed.saturating_sub(n)));
    }

    /// Whether a PINGRESP answers one of the gate's PINGREQs (and so is dropped).
    fn answers_gate_ping(&self) -> bool {
        self.gate_pings
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Why a device's connection was closed when it read nothing for the write timeout: carried
/// inside the `io::Error` a write returns, so the gate counts the close as `stalled`.
#[derive(Debug, thiserror::Error)]
#[error("the device read nothing for {0:?}")]
pub struct Stalled(pub Duration);

/// Whether a write to a device ended because the device stopped reading.
pub fn is_stalled(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Stalled>())
}

/// The device's side of the socket, shared by the gate (its PUBACKs) and the copy of what
/// rumqttd sends.
pub struct DeviceWriter<W> {
    device: Mutex<W>,
    owed: Arc<Owed>,
    write_timeout: Duration,
}

impl<W: AsyncWrite + Unpin> DeviceWriter<W> {
    /// `owed` is shared with the gate's reading side, which notes what it sends rumqttd.
    pub fn new(device: W, owed: Arc<Owed>) -> Self {
        Self {
            device: Mutex::new(device),
            owed,
            write_timeout: WRITE_TIMEOUT,
        }
    }

    #[cfg(test)]
    fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    async fn write(&self, device: &mut W, bytes: &[u8]) -> std::io::Result<()> {
        match tokio::time::timeout(self.write_timeout, device.write_all(bytes)).await {
            Ok(written) => written,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                Stalled(self.write_timeout),
            )),
        }
    }

    /// Writes the gate's own PUBACKs, which the gate made only while rumqttd owed none.
    pub async fn acknowledge(&self, pubacks: &[u8]) -> std::io::Result<()> {
        let mut device = self.device.lock().await;
        self.write(&mut device, pubacks).await
    }

    /// Copies what rumqttd sends the device until either side closes, whole packets at a
    /// time. The buffer exists only while bytes flow or a packet is half read: an idle device
    /// costs none. Returns the error that ended it when the device stopped reading
    /// (`is_stalled`); any other end is the connection's normal close.
    pub async fn copy_from_broker(
        &self,
        broker_r: tokio::net::tcp::OwnedReadHalf,
    ) -> Result<(), std::io::Error> {
        let mut stalled = Ok(());
        let mut held = BytesMut::new();
        loop {
            if broker_r.readable().await.is_err() {
                break;
            }
            if held.capacity() - held.len() < DOWN_BUFFER {
                held.reserve(DOWN_BUFFER);
            }
            match broker_r.try_read_buf(&mut held) {
                Ok(0) => break,
                Ok(_) => match self.pass_whole_packets(&mut held).await {
                    Ok(()) => {}
                    Err(Down::Io(e)) if is_stalled(&e) => {
                        stalled = Err(e);
                        break;
                    }
                    Err(_) => break,
                },
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
            // Readiness outlives the read that drained the socket, so the next turn often
            // ends in WouldBlock: freed here, not kept while the device is idle (2 KiB each,
            // 2.4 MiB for 1,000 idle devices).
            if held.is_empty() {
                held = BytesMut::new();
            }
        }
        let mut device = self.device.lock().await;
        let _ = tokio::time::timeout(self.write_timeout, device.shutdown()).await;
        stalled
    }

    /// Writes the whole packets at the start of `held` and removes them from it, but for
    /// the PINGRESPs that answer the gate.
    async fn pass_whole_packets(&self, held: &mut BytesMut) -> Result<(), Down> {
        let (mut at, mut from, mut pubacks) = (0, 0, 0);
        let mut device = self.device.lock().await;
        while let Some((header, remaining)) = frame(&held[at..])? {
            let end = at
                .checked_add(header + remaining)
                .ok_or(FrameError::BadLength)?;
            if end > held.len() {
                break;
            }
            match packet_type(held[at]) {
                PINGRESP if self.owed.answers_gate_ping() => {
                    self.write(&mut device, &held[from..at]).await?;
                    from = end;
                }
                PUBACK => pubacks += 1,
                _ => {}
            }
            at = end;
        }
        self.write(&mut device, &held[from..at]).await?;
        drop(device);
        // Only once they are written: until then the gate holds its own PUBACKs back.
        self.owed.broker_acknowledged(pubacks);
        held.advance(at);
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
enum Down {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("rumqttd sent malformed MQTT: {0}")]
    Frame(#[from] FrameError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    const CONNACK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];
    const PINGRESP_BYTES: [u8; 2] = [0xd0, 0x00];

    fn puback(pkid: u16) -> Vec<u8> {
        let [hi, lo] = pkid.to_be_bytes();
        vec![0x40, 0x02, hi, lo]
    }

    /// A fake rumqttd (the write end) and the device's reading end, around a writer.
    struct Wired {
        broker: TcpStream,
        owed: Arc<Owed>,
        writer: Arc<DeviceWriter<tokio::net::tcp::OwnedWriteHalf>>,
        copy: tokio::task::JoinHandle<std::io::Result<()>>,
        device: TcpStream,
    }

    async fn wired() -> Wired {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let broker = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (from_broker, _) = listener.accept().await.unwrap();
        let device_end = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (to_device, _) = listener.accept().await.unwrap();
        let (_, device_w) = to_device.into_split();
        let owed = Arc::new(Owed::default());
        let writer = Arc::new(DeviceWriter::new(device_w, owed.clone()));
        let (broker_r, _) = from_broker.into_split();
        let copy = tokio::spawn({
            let writer = writer.clone();
            async move { writer.copy_from_broker(broker_r).await }
        });
        Wired {
            broker,
            owed,
            writer,
            copy,
            device: device_end,
        }
    }

    async fn read_exactly(device: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut got = vec![0; n];
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            device.read_exact(&mut got),
        )
        .await
        .expect("the device is sent the bytes")
        .unwrap();
        got
    }

    #[tokio::test]
    async fn the_gates_pingresps_are_dropped_and_the_devices_own_pass() {
        let Wired {
            mut broker,
            owed,
            mut device,
            ..
        } = wired().await;
        owed.gate_pings();
        // The gate's answer, then one to a PINGREQ of the device's, split across writes.
        let mut sent = CONNACK.to_vec();
        sent.extend(PINGRESP_BYTES);
        sent.extend(PINGRESP_BYTES);
        broker.write_all(&sent[..5]).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        broker.write_all(&sent[5..]).await.unwrap();
        let mut expected = CONNACK.to_vec();
        expected.extend(PINGRESP_BYTES);
        assert_eq!(read_exactly(&mut device, expected.len()).await, expected);
        // Nothing more: the gate's PINGRESP was not passed on.
        broker.write_all(&puback(9)).await.unwrap();
        assert_eq!(read_exactly(&mut device, 4).await, puback(9));
    }

    #[tokio::test]
    async fn the_gate_acknowledges_only_once_rumqttds_owed_pubacks_are_written() {
        let Wired {
            mut broker,
            owed,
            writer,
            mut device,
            ..
        } = wired().await;
        owed.broker_will_acknowledge();
        owed.broker_will_acknowledge();
        assert!(!owed.gate_may_acknowledge());
        // Half a PUBACK: still owed.
        let mut two = puback(1);
        two.extend(puback(2));
        broker.write_all(&two[..6]).await.unwrap();
        assert_eq!(read_exactly(&mut device, 4).await, puback(1));
        assert!(!owed.gate_may_acknowledge());
        broker.write_all(&two[6..]).await.unwrap();
        assert_eq!(read_exactly(&mut device, 4).await, puback(2));
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while !owed.gate_may_acknowledge() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("both PUBACKs counted once written");
        writer.acknowledge(&puback(3)).await.unwrap();
        assert_eq!(read_exactly(&mut device, 4).await, puback(3));
    }

    /// A device that reads nothing while its connection stays up: the write gives up, and
    /// the gate closes the connection.
    #[tokio::test]
    async fn a_device_that_stops_reading_is_given_up_on() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _device = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (to_device, _) = listener.accept().await.unwrap();
        let (_, device_w) = to_device.into_split();
        let writer = DeviceWriter::new(device_w, Arc::default())
            .with_write_timeout(Duration::from_millis(300));
        let pubacks = puback(1).repeat(16 * 1024);
        let mut outcome = Ok(());
        // Socket buffers take a few MiB before a write waits.
        for _ in 0..2048 {
            outcome = tokio::time::timeout(Duration::from_secs(5), writer.acknowledge(&pubacks))
                .await
                .expect("the write gives up by itself");
            if outcome.is_err() {
                break;
            }
        }
        let e = outcome.expect_err("a device reading nothing is not written to for ever");
        assert!(is_stalled(&e), "counted as a stalled device: {e}");
        let gone = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert!(!is_stalled(&gone), "a link that timed out is not a stall");
    }

    #[tokio::test]
    async fn malformed_bytes_from_rumqttd_close_the_device() {
        let Wired {
            mut broker,
            copy,
            mut device,
            ..
        } = wired().await;
        broker
            .write_all(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01])
            .await
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), copy)
            .await
            .expect("the copy ends")
            .unwrap()
            .expect("closed for rumqttd's bytes, not as a stalled device");
        let mut rest = Vec::new();
        device.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "nothing of it reached the device");
    }
}
