//! The bench's flooding MQTT client: packets encoded by rumqttc's codec and written to the
//! socket in batches, without an event loop. Through rumqttc's `AsyncClient` every message
//! took a trip through its request channel and event loop: the bench's clients used three
//! times the CPU of the bridge they measured, so on this 2-core machine the flood figure was
//! mostly theirs. QoS 1 keeps at most `INFLIGHT` messages unacknowledged, as the event loop
//! did.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{Connect, Disconnect, Packet, Publish};
use rumqttc::{ConnectReturnCode, QoS};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::Notify;

/// Unacknowledged QoS 1 messages a client may have out.
pub const INFLIGHT: u64 = 1000;
/// Messages encoded before one write.
const BATCH: u64 = 64;
/// The largest packet the broker may send the client (acknowledgements; nothing else is
/// subscribed).
const MAX_INCOMING: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FloodError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("MQTT: {0:?}")]
    Mqtt(rumqttc::mqttbytes::Error),
    #[error("the broker refused the connection: {0:?}")]
    Refused(ConnectReturnCode),
    #[error("the broker closed the connection before its CONNACK")]
    NoConnAck,
}

/// What one flooding client does: `topic`, `qos`, for `duration`, with `payload(seq)`.
pub struct Flood<'a> {
    pub host: &'a str,
    pub port: u16,
    pub client_id: String,
    pub topic: String,
    pub qos: QoS,
    /// Seconds; the broker closes a connection silent for one and a half times this.
    pub keep_alive: u16,
    pub duration: Duration,
    pub start: Instant,
}

/// Connects, then publishes as fast as the socket takes until `duration` has passed since
/// `start`, counting each message in `sent` as it is handed to the socket; for QoS 1, waits
/// (up to 10 s) for every acknowledgement before it disconnects.
pub async fn flood(
    f: Flood<'_>,
    sent: &AtomicU64,
    payload: impl Fn(u64) -> Vec<u8>,
) -> Result<(), FloodError> {
    let stream = TcpStream::connect((f.host, f.port)).await?;
    let _ = stream.set_nodelay(true);
    let (mut r, mut w) = stream.into_split();
    let mut out = BytesMut::with_capacity(8 * 1024);
    let mut connect = Connect::new(f.client_id);
    connect.keep_alive = f.keep_alive;
    connect.write(&mut out).map_err(FloodError::Mqtt)?;
    w.write_all(&out).await?;
    out.clear();
    let mut incoming = BytesMut::with_capacity(1024);
    match next_packet(&mut r, &mut incoming).await? {
        Some(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => {}
        Some(Packet::ConnAck(ack)) => return Err(FloodError::Refused(ack.code)),
        _ => return Err(FloodError::NoConnAck),
    }

    let acked = Arc::new(AtomicU64::new(0));
    let acks = Arc::new(Notify::new());
    let reader = tokio::spawn({
        let (acked, acks) = (acked.clone(), acks.clone());
        async move {
            while let Ok(Some(packet)) = next_packet(&mut r, &mut incoming).await {
                if let Packet::PubAck(_) = packet {
                    acked.fetch_add(1, Relaxed);
                    acks.notify_one();
                }
            }
            // Closed: whoever waits for acknowledgements stops waiting.
            acked.store(u64::MAX, Relaxed);
            acks.notify_one();
        }
    });

    let mut seq = 0u64;
    let mut pkid = 0u16;
    while f.start.elapsed() < f.duration {
        let room = match f.qos {
            QoS::AtMostOnce => BATCH,
            _ => {
                let out_now = seq.saturating_sub(acked.load(Relaxed));
                if out_now >= INFLIGHT {
                    // Woken by the next acknowledgement, or the check above again after 10 ms.
                    let _ = tokio::time::timeout(Duration::from_millis(10), acks.notified()).await;
                    continue;
                }
                BATCH.min(INFLIGHT - out_now)
            }
        };
        for _ in 0..room {
            let mut publish = Publish::new(f.topic.as_str(), f.qos, payload(seq));
            if f.qos != QoS::AtMostOnce {
                pkid = pkid.checked_add(1).unwrap_or(1);
                publish.pkid = pkid;
            }
            publish.write(&mut out).map_err(FloodError::Mqtt)?;
            seq += 1;
        }
        w.write_all(&out).await?;
        out.clear();
        sent.fetch_add(room, Relaxed);
    }
    if f.qos != QoS::AtMostOnce {
        let deadline = Instant::now() + Duration::from_secs(10);
        while acked.load(Relaxed) < seq && Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(20), acks.notified()).await;
        }
    }
    Disconnect.write(&mut out).map_err(FloodError::Mqtt)?;
    w.write_all(&out).await?;
    let _ = w.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
    Ok(())
}

/// The next whole packet from the broker; `None` once it closes.
async fn next_packet(
    r: &mut OwnedReadHalf,
    buf: &mut BytesMut,
) -> Result<Option<Packet>, FloodError> {
    loop {
        match Packet::read(buf, MAX_INCOMING) {
            Ok(packet) => return Ok(Some(packet)),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err(FloodError::Mqtt(e)),
        }
        if r.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}
