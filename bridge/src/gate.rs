//! The front door of the embedded broker. It reads each client's CONNECT (to pick the MQTT 3.1.1
//! or 5 listener of rumqttd, and to check the login) and the topic of every PUBLISH (the ACL),
//! then passes the bytes on untouched. rumqttd does the broker's work behind it.
//!
//! rumqttd serves one protocol version per port and has no per-topic ACL for password logins;
//! this is the smallest piece that adds both without forking it.
//!
//! Device publications for the mesh are also handed from here straight to the uplink, rather
//! than read back out of rumqttd's log: that log then holds them only for MQTT subscribers (if
//! none, not at all), a flood meets backpressure instead of wrapping the log, and each sample
//! skips three thread hand-offs. Only `status` topics, where rumqttd publishes Last-Wills, are
//! read from the broker.
//!
//! A mesh publication that no MQTT subscription could read skips rumqttd altogether, QoS 1
//! ones acknowledged by the gate once zenoh has them (`device_writer` keeps those PUBACKs in
//! order with rumqttd's).

use crate::auth::Users;
use crate::device_writer::{DeviceWriter, Owed, PINGREQ, is_stalled};
use crate::frame::{
    CONNECT, FrameError, PUBLISH, PUBREL, SUBSCRIBE, UNSUBSCRIBE, connect_flags, connect_level,
    frame, packet_type, publish_topic, publish_topic_alias, subscribe_filters, unsubscribe_filters,
};
use crate::mesh_readers::{MeshReaders, Reader};
use crate::stats::{Stats, worth_logging};
use bytes::{Bytes, BytesMut};
use rumqttd::protocol::{Login, Packet, Protocol, v4::V4, v5::V5};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use swarm_bus::{NodeId, SwarmKeys};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_rustls::TlsAcceptor;

/// The longest a client may take to send its CONNECT: with the CONNECT's size limit, what an
/// unauthenticated socket costs is bounded in bytes and in time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Room in a packet beyond its payload: the fixed header, the topic (a few dozen bytes for
/// mesh keys) and v5 properties.
const PACKET_OVERHEAD: usize = 4096;

/// Bounds of the room made for a device's next read, in bytes. A message handed to the mesh
/// is a slice of the chunk it was read into (`hand_over`), so while zenoh queues it, it keeps
/// the whole chunk alive: 64 KiB chunks took a 4-client flood's peak RSS from 31 to 75-88 MiB
/// (`swarm-bridge bench`), and 8 KiB reads the flood as fast.
const MIN_READ_CHUNK: usize = 256;
const MAX_READ_CHUNK: usize = 8 * 1024;
/// The longest a device's connection goes without a packet reaching rumqttd while its
/// publications go to the mesh only: rumqttd closes a connection silent for 1.5 times its
/// keep-alive, and a publishing client sends no PINGREQ. The gate then sends one itself.
const FEED_BROKER_EVERY: Duration = Duration::from_millis(500);

pub struct Gate {
    pub keys: SwarmKeys,
    /// `None`: anyone may connect, and nobody is held to an ACL.
    pub users: Option<Arc<Users>>,
    pub v4: SocketAddr,
    pub v5: SocketAddr,
    /// What the gate tells rumqttd instead of the client's password, so only the gate can
    /// reach the internal listeners.
    pub secret: String,
    pub max_payload: usize,
    pub stats: Arc<Stats>,
    pub slots: Arc<Semaphore>,
    /// Where accepted publications for the mesh go; bounded, so a flood waits here.
    pub uplink: mpsc::Sender<Handoff>,
    /// With logins: the one that is Home Assistant, and its discovery prefix.
    pub home_assistant: Option<(NodeId, String)>,
    /// Which MQTT subscriptions could read a mesh-bound publication.
    pub readers: Arc<MeshReaders>,
}

/// One device publication on its way to the mesh, sliced out of the bytes read from the
/// device without copying.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub topic: Bytes,
    pub payload: Bytes,
}

/// The mesh-bound publications of one read from a device. When any of them asked for an
/// acknowledgement (QoS 1 or 2), the gate holds the bytes back from rumqttd, and so the device's
/// PUBACK, until `taken` says zenoh has them.
#[derive(Debug)]
pub struct Handoff {
    pub publications: Vec<Publication>,
    pub taken: Option<oneshot::Sender<()>>,
}

/// Which publications the gate hands to the uplink: those under `swarm/<s>/node/`, except
/// `status` (read from the broker, which is where Last-Wills appear), and a QoS 2 one only the
/// first time its packet id comes before its PUBREL. And which of those rumqttd need not see.
struct MeshTopics {
    prefix: String,
    /// This connection's subscriptions; `None`: every publication goes to rumqttd too.
    reader: Option<Reader>,
    /// What rumqttd owes the device (`device_writer`).
    owed: Arc<Owed>,
    /// Where the publications that skip rumqttd lie in the bytes checked.
    skipped: Vec<std::ops::Range<usize>>,
    /// The PUBACKs the gate owes for the QoS 1 publications among them, sent once zenoh has
    /// taken those.
    pubacks: Vec<u8>,
    /// The packet ids of this connection's QoS 2 PUBLISHes waiting for their PUBREL, one bit
    /// each, made on the first QoS 2 PUBLISH. A board sends such a PUBLISH again (DUP) when
    /// its PUBREC is late; the mesh, an "onward recipient", must not get it twice
    /// [MQTT-4.3.3-2].
    qos2: Option<Box<[u64; 1024]>>,
}

impl MeshTopics {
    fn new(keys: &SwarmKeys, owed: Arc<Owed>) -> Self {
        let subtree = keys.node_subtree();
        Self {
            prefix: subtree.trim_end_matches("**").to_string(),
            reader: None,
            owed,
            skipped: Vec::new(),
            pubacks: Vec::new(),
            qos2: None,
        }
    }

    fn reading(mut self, reader: Reader) -> Self {
        self.reader = Some(reader);
        self
    }

    /// A publication, not retained, that no MQTT subscription could read: rumqttd would only
    /// drop it, or only acknowledge it. The gate acknowledges a QoS 1 one itself (noted in
    /// `pubacks`), but not while rumqttd owes the device a PUBACK for an earlier one, nor
    /// one with the packet id 0 that [MQTT-2.3.1-1] forbids (rumqttd answers that).
    fn unread(&mut self, topic: &str, first_byte: u8, pkid: Option<u16>) -> bool {
        let (qos, retain) = ((first_byte >> 1) & 0x03, first_byte & 0x01);
        let answerable = match (qos, pkid) {
            (0, _) => true,
            (1, Some(id)) => id != 0 && self.owed.gate_may_acknowledge(),
            _ => false,
        };
        let unread = answerable
            && retain == 0
            && self
                .reader
                .as_mut()
                .is_some_and(|r| !r.read(topic.as_bytes()));
        if let (true, 1, Some(id)) = (unread, qos, pkid) {
            let [hi, lo] = id.to_be_bytes();
            self.pubacks.extend_from_slice(&[0x40, 0x02, hi, lo]);
        }
        unread
    }

    fn subscribed(&mut self, filters: &[&str]) {
        if let Some(r) = self.reader.as_mut() {
            r.subscribe(filters.iter().copied());
        }
    }

    fn unsubscribed(&mut self, filters: &[&str]) {
        if let Some(r) = self.reader.as_mut() {
            r.unsubscribe(filters.iter().copied());
        }
    }

    fn carries(&self, topic: &str) -> bool {
        topic.starts_with(&self.prefix) && !topic.ends_with("/status")
    }

    /// Notes a QoS 2 PUBLISH; false when its packet id is already waiting for a PUBREL.
    fn first_qos2(&mut self, pkid: u16) -> bool {
        let bits = self.qos2.get_or_insert_with(|| Box::new([0; 1024]));
        let (word, bit) = (usize::from(pkid / 64), 1u64 << (pkid % 64));
        let first = bits[word] & bit == 0;
        bits[word] |= bit;
        first
    }

    fn released(&mut self, pkid: u16) {
        if let Some(bits) = self.qos2.as_mut() {
            bits[usize::from(pkid / 64)] &= !(1u64 << (pkid % 64));
        }
    }
}

/// Where a PUBLISH sits in a read chunk.
struct Spotted {
    topic: std::ops::Range<usize>,
    payload: std::ops::Range<usize>,
    acked: bool,
}

#[derive(Debug, thiserror::Error)]
enum Closed {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed MQTT: {0}")]
    Frame(#[from] FrameError),
    #[error("first packet is not CONNECT")]
    NotConnect,
    #[error("unsupported MQTT protocol level {0}")]
    Level(u8),
    #[error("unreadable CONNECT: {0}")]
    Connect(String),
    #[error("no CONNECT within {CONNECT_TIMEOUT:?}")]
    Timeout,
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    #[error("login refused for user `{0}`")]
    Login(String),
    #[error("`{device}` may not publish on `{topic}`")]
    Acl { device: String, topic: String },
    #[error("payload of {size} bytes on `{topic}` exceeds the {limit}-byte limit")]
    Oversize {
        topic: String,
        size: usize,
        limit: usize,
    },
    /// Refused on the length the fixed header declares, before the bytes are buffered.
    #[error("a packet declaring {declared} bytes exceeds the {limit}-byte limit")]
    TooLong { declared: usize, limit: usize },
    #[error("`{device}` may not subscribe to `{filter}`")]
    SubscribeAcl { device: String, filter: String },
    #[error("reserved flag set in CONNECT")]
    ReservedFlag,
    #[error("client id `{0}` refused")]
    ClientId(String),
    #[error("a second CONNECT")]
    SecondConnect,
    #[error("an MQTT 5 authentication method, which the broker does not support")]
    AuthMethod,
    /// rumqttd announces a Topic Alias Maximum of 0 and answers an alias with DISCONNECT 0x94;
    /// the bytes through the PUBLISH that has one (`through`) still go to it, nothing after.
    #[error("a topic alias, which the broker does not take")]
    TopicAlias { through: usize },
}

/// Client ids rumqttd cannot give out: its router drops a connection whose id holds one of
/// `+ # / $` without any CONNACK, and one named like the bridge's own link would take that
/// link over (which carries the Last-Wills and the commands).
fn refused_client_id(id: &str) -> bool {
    id.contains(['+', '#', '/', '$']) || id == crate::embedded::LINK_CLIENT_ID
}

/// Serves MQTT over TCP, or over TLS when `tls` is given, until the task is dropped.
pub async fn serve(listener: TcpListener, gate: Arc<Gate>, tls: Option<TlsAcceptor>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accepting an MQTT connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = gate.slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "MQTT connection refused: connection limit reached");
            continue;
        };
        let gate = gate.clone();
        let _ = stream.set_nodelay(true);
        // One task type per transport: a task is as large as its largest state, and a plain
        // connection need not carry room for a TLS handshake and session.
        match tls.clone() {
            None => tokio::spawn(async move {
                let (r, w) = stream.into_split();
                let result = gate.handle(r, w).await;
                gate.closed(&peer, result);
                drop(slot);
            }),
            Some(acceptor) => tokio::spawn(async move {
                let result =
                    match tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let (r, w) = tokio::io::split(tls);
                            gate.handle(r, w).await
                        }
                        Ok(Err(e)) => Err(Closed::Tls(e)),
                        Err(_) => Err(Closed::Timeout),
                    };
                gate.closed(&peer, result);
                drop(slot);
            }),
        };
    }
}

/// Writes `chunk` to rumqttd but for the `skipped` ranges (in order, within it), which it
/// empties; whether anything was written.
async fn write_unskipped<W: AsyncWrite + Unpin>(
    broker_w: &mut W,
    chunk: &[u8],
    skipped: &mut Vec<std::ops::Range<usize>>,
    stats: &Stats,
) -> std::io::Result<bool> {
    if skipped.is_empty() {
        broker_w.write_all(chunk).await?;
        return Ok(true);
    }
    stats.mesh_only.fetch_add(skipped.len() as u64, Relaxed);
    let mut from = 0;
    let mut wrote = false;
    for r in skipped.drain(..) {
        if r.start > from {
            broker_w.write_all(&chunk[from..r.start]).await?;
            wrote = true;
        }
        from = r.end;
    }
    if from < chunk.len() {
        broker_w.write_all(&chunk[from..]).await?;
        wrote = true;
    }
    Ok(wrote)
}

impl Gate {
    fn closed(&self, peer: &SocketAddr, result: Result<(), Closed>) {
        if let Err(e) = result {
            self.log_close(peer, &e);
        }
    }

    fn log_close(&self, peer: &SocketAddr, e: &Closed) {
        let counter = match e {
            Closed::Login(_) => Some(&self.stats.refused_logins),
            Closed::Acl { .. } | Closed::SubscribeAcl { .. } => Some(&self.stats.refused_acl),
            Closed::Oversize { .. } | Closed::TooLong { .. } => Some(&self.stats.refused_oversize),
            Closed::Tls(_) => Some(&self.stats.refused_tls),
            Closed::Io(e) if is_stalled(e) => Some(&self.stats.refused_stalled),
            _ => None,
        };
        match counter {
            Some(c) => {
                let n = c.fetch_add(1, Relaxed) + 1;
                if worth_logging(n) {
                    tracing::warn!(%peer, count = n, "MQTT client disconnected: {e}");
                }
            }
            None => tracing::debug!(%peer, "MQTT connection closed: {e}"),
        }
    }

    async fn handle<R, W>(&self, mut device_r: R, mut device_w: W) -> Result<(), Closed>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        // Grows as the CONNECT needs; an idle device should cost little (docs/bridge.md).
        let mut buf = BytesMut::with_capacity(MIN_READ_CHUNK);
        let limit = self.max_packet();
        let (header_len, remaining) = tokio::time::timeout(CONNECT_TIMEOUT, async {
            loop {
                if let Some(f) = frame(&buf)? {
                    within(f, limit)?;
                    if buf.len() >= f.0 + f.1 {
                        return Ok::<_, Closed>(f);
                    }
                }
                if device_r.read_buf(&mut buf).await? == 0 {
                    return Err(Closed::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
            }
        })
        .await
        .map_err(|_| Closed::Timeout)??;
        if packet_type(buf[0]) != CONNECT {
            return Err(Closed::NotConnect);
        }
        let level = connect_level(&buf, header_len)?;
        // 3 (MQTT 3.1, "MQIsdp") included: rumqttd does not read it, so it is refused the
        // way [MQTT-3.1.2-2] asks, not dropped without an answer.
        let v5 = match level {
            4 => false,
            5 => true,
            other => {
                // 0x01: unacceptable protocol version, understood by every client version.
                let _ = device_w.write_all(&[0x20, 0x02, 0x00, 0x01]).await;
                return Err(Closed::Level(other));
            }
        };
        // [MQTT-3.1.2-3]: a set reserved flag is a malformed CONNECT, closed without CONNACK;
        // rumqttd does not look at it.
        if connect_flags(&buf, header_len)? & 0x01 != 0 {
            return Err(Closed::ReservedFlag);
        }
        let mut first = buf.split_to(header_len + remaining);
        let packet = if v5 {
            V5.read_mut(&mut first, limit)
        } else {
            V4.read_mut(&mut first, limit)
        }
        .map_err(|e| Closed::Connect(format!("{e:?}")))?;
        let Packet::Connect(connect, props, will, will_props, login) = packet else {
            return Err(Closed::NotConnect);
        };
        // MQTT 5 enhanced authentication (AUTH exchanges) is not supported, and rumqttd would
        // accept the CONNECT as if no method were named: refused, 0x8C "Bad authentication
        // method", and closed [MQTT-4.12.0-1].
        if props
            .as_ref()
            .is_some_and(|p| p.authentication_method.is_some())
        {
            let _ = device_w.write_all(&[0x20, 0x03, 0x00, 0x8C, 0x00]).await;
            return Err(Closed::AuthMethod);
        }
        let identity = self.check_login(login.as_ref()).await;
        let identity = match identity {
            Ok(id) => id,
            Err(user) => {
                let refusal: &[u8] = if v5 {
                    &[0x20, 0x03, 0x00, 0x86, 0x00] // bad user name or password
                } else {
                    &[0x20, 0x02, 0x00, 0x04]
                };
                let _ = device_w.write_all(refusal).await;
                return Err(Closed::Login(user));
            }
        };
        if refused_client_id(&connect.client_id) {
            // "Identifier rejected" [MQTT-3.1.3-9], "Client Identifier not valid" in 5.
            let refusal: &[u8] = if v5 {
                &[0x20, 0x03, 0x00, 0x85, 0x00]
            } else {
                &[0x20, 0x02, 0x00, 0x02]
            };
            let _ = device_w.write_all(refusal).await;
            return Err(Closed::ClientId(connect.client_id));
        }
        if let (Some(id), Some(will)) = (&identity, &will) {
            let topic = String::from_utf8_lossy(&will.topic).into_owned();
            if !self.may_publish(id, &topic) {
                return Err(Closed::Acl {
                    device: id.to_string(),
                    topic,
                });
            }
        }
        // rumqttd keeps a session past its connection for a 3.1.1 client without Clean
        // Session, and for an MQTT 5 one with a Session Expiry Interval.
        let persistent = if v5 {
            props
                .as_ref()
                .and_then(|p| p.session_expiry_interval)
                .is_some_and(|s| s > 0)
        } else {
            !connect.clean_session
        };
        let reader = self
            .readers
            .connect(&connect.client_id, connect.clean_session, persistent);
        let username = identity
            .as_ref()
            .map(|id| id.to_string())
            .unwrap_or_else(|| "anonymous".into());
        let rewritten = Packet::Connect(
            connect,
            props,
            will,
            will_props,
            Some(Login {
                username,
                password: self.secret.clone(),
            }),
        );
        let mut out = BytesMut::new();
        if v5 {
            V5.write(rewritten, &mut out)
        } else {
            V4.write(rewritten, &mut out)
        }
        .map_err(|e| Closed::Connect(format!("{e:?}")))?;
        let mut broker = TcpStream::connect(if v5 { self.v5 } else { self.v4 }).await?;
        let _ = broker.set_nodelay(true);
        broker.write_all(&out).await?;

        let (broker_r, mut broker_w) = broker.into_split();
        let owed = Arc::new(Owed::default());
        let device_w = Arc::new(DeviceWriter::new(device_w, owed.clone()));
        let down = tokio::spawn({
            let device_w = device_w.clone();
            async move { device_w.copy_from_broker(broker_r).await }
        });
        let mut mesh = MeshTopics::new(&self.keys, owed).reading(reader);
        let up = async {
            let mut spotted = Vec::new();
            let mut chunk = MIN_READ_CHUNK;
            let mut fed = Instant::now();
            loop {
                let (ready, last) =
                    match self.checked_prefix(&buf, identity.as_ref(), v5, &mut mesh, &mut spotted)
                    {
                        Ok(ready) => (ready, None),
                        Err(Closed::TopicAlias { through }) => {
                            (through, Some(Closed::TopicAlias { through }))
                        }
                        Err(e) => return Err(e),
                    };
                if ready > 0 {
                    let chunk = buf.split_to(ready).freeze();
                    self.hand_over(&chunk, &mut spotted).await?;
                    // Zenoh has them: the gate's PUBACKs go before rumqttd sees anything after.
                    if !mesh.pubacks.is_empty() {
                        device_w
                            .acknowledge(&std::mem::take(&mut mesh.pubacks))
                            .await?;
                    }
                    if !mesh.skipped.is_empty() && fed.elapsed() >= FEED_BROKER_EVERY {
                        mesh.owed.gate_pings();
                        broker_w.write_all(&PINGREQ).await?;
                        fed = Instant::now();
                    }
                    if write_unskipped(&mut broker_w, &chunk, &mut mesh.skipped, &self.stats)
                        .await?
                    {
                        fed = Instant::now();
                    }
                }
                // rumqttd answers the alias with DISCONNECT 0x94 and closes, which ends the copy
                // to the device and this connection. Closing the broker side first could end its
                // link before that answer is written.
                if let Some(last) = last {
                    tokio::time::sleep(CONNECT_TIMEOUT).await;
                    return Err(last);
                }
                // Room for a chunk that doubles while reads fill it (a flood: fewer, larger
                // reads) and halves when they do not (a device saying a few bytes a minute).
                if buf.capacity() - buf.len() < chunk {
                    buf.reserve(chunk);
                }
                let room = buf.capacity() - buf.len();
                let read = device_r.read_buf(&mut buf).await?;
                if read == 0 {
                    return Ok::<_, Closed>(());
                }
                chunk = if read >= room {
                    (chunk * 2).min(MAX_READ_CHUNK)
                } else {
                    (chunk / 2).max(MIN_READ_CHUNK)
                };
            }
        };
        let result = tokio::select! {
            r = up => r,
            d = down => match d {
                Ok(Err(stalled)) => Err(Closed::Io(stalled)),
                _ => Ok(()),
            },
        };
        // Dropping both halves closes the broker side: rumqttd publishes the Last-Will unless
        // the device said DISCONNECT.
        result
    }

    /// Hands the mesh-bound publications of `chunk` to the uplink; waits for zenoh to take
    /// them when one asked for an acknowledgement.
    async fn hand_over(&self, chunk: &Bytes, spotted: &mut Vec<Spotted>) -> Result<(), Closed> {
        if spotted.is_empty() {
            return Ok(());
        }
        let acked = spotted.iter().any(|s| s.acked);
        let publications = spotted
            .drain(..)
            .map(|s| Publication {
                topic: chunk.slice(s.topic),
                payload: chunk.slice(s.payload),
            })
            .collect();
        let (taken, confirmed) = if acked {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let handoff = Handoff {
            publications,
            taken,
        };
        if self.uplink.send(handoff).await.is_err() {
            return Err(Closed::Io(std::io::ErrorKind::BrokenPipe.into()));
        }
        if let Some(rx) = confirmed {
            // The uplink drops the sender without confirming only when it is shutting down.
            rx.await
                .map_err(|_| Closed::Io(std::io::ErrorKind::BrokenPipe.into()))?;
        }
        Ok(())
    }

    /// How many bytes at the start of `buf` are whole packets that may pass; the mesh-bound
    /// publications among them are noted in `spotted`.
    fn checked_prefix(
        &self,
        buf: &[u8],
        identity: Option<&NodeId>,
        v5: bool,
        mesh: &mut MeshTopics,
        spotted: &mut Vec<Spotted>,
    ) -> Result<usize, Closed> {
        let mut at = 0;
        while let Some((h, rem)) = frame(&buf[at..])? {
            within((h, rem), self.max_packet())?;
            let end = at + h + rem;
            if end > buf.len() {
                break;
            }
            let packet = &buf[at..end];
            // [MQTT-3.1.0-2]; rumqttd ignores it.
            if packet_type(packet[0]) == CONNECT {
                return Err(Closed::SecondConnect);
            }
            if packet_type(packet[0]) == SUBSCRIBE {
                match subscribe_filters(packet, h, v5) {
                    Ok(filters) => {
                        if let Some(id) = identity {
                            for filter in &filters {
                                if !self.may_subscribe(id, filter) {
                                    return Err(Closed::SubscribeAcl {
                                        device: id.to_string(),
                                        filter: (*filter).into(),
                                    });
                                }
                            }
                        }
                        mesh.subscribed(&filters);
                    }
                    Err(e) if identity.is_some() => return Err(e.into()),
                    // rumqttd answers a SUBSCRIBE it cannot read; here it may read anything.
                    Err(_) => mesh.subscribed(&["#"]),
                }
            }
            if packet_type(packet[0]) == UNSUBSCRIBE
                && let Ok(filters) = unsubscribe_filters(packet, h, v5)
            {
                mesh.unsubscribed(&filters);
            }
            if packet_type(packet[0]) == PUBLISH {
                let (topic, size) = publish_topic(packet, h, v5)?;
                if size > self.max_payload {
                    return Err(Closed::Oversize {
                        topic: topic.into(),
                        size,
                        limit: self.max_payload,
                    });
                }
                // An aliased topic is empty here: the ACL and the mesh cannot know it. rumqttd
                // refuses every alias (it announces a maximum of 0), so the packet goes on to
                // it for its answer, and nothing of it to the mesh.
                let aliased = v5 && publish_topic_alias(packet, h)?.is_some();
                if let Some(id) = identity
                    && !(aliased && topic.is_empty())
                    && !self.may_publish(id, topic)
                {
                    return Err(Closed::Acl {
                        device: id.to_string(),
                        topic: topic.into(),
                    });
                }
                if aliased {
                    return Err(Closed::TopicAlias { through: end });
                }
                let qos = (packet[0] >> 1) & 0x03;
                let pkid_at = h + 2 + topic.len();
                let pkid = match packet.get(pkid_at..pkid_at + 2) {
                    Some(&[hi, lo]) if qos > 0 => Some(u16::from_be_bytes([hi, lo])),
                    _ => None,
                };
                let first = |mesh: &mut MeshTopics| match pkid {
                    Some(id) if qos == 2 => mesh.first_qos2(id),
                    _ => true,
                };
                let mut skips = false;
                if mesh.carries(topic) && first(mesh) {
                    let topic_at = at + h + 2;
                    spotted.push(Spotted {
                        topic: topic_at..topic_at + topic.len(),
                        payload: end - size..end,
                        acked: qos > 0,
                    });
                    skips = mesh.unread(topic, packet[0], pkid);
                    if skips {
                        mesh.skipped.push(at..end);
                    }
                }
                if qos == 1 && !skips {
                    mesh.owed.broker_will_acknowledge();
                }
            }
            if packet_type(packet[0]) == PUBREL
                && let Some(&[hi, lo]) = packet.get(h..h + 2)
            {
                mesh.released(u16::from_be_bytes([hi, lo]));
            }
            at = end;
        }
        Ok(at)
    }

    /// The largest packet a client may send: its declared length is checked before its bytes
    /// are buffered, so `max_connections` times this bounds the memory of all connections.
    pub fn max_packet(&self) -> usize {
        self.max_payload.saturating_add(PACKET_OVERHEAD)
    }

    /// A logged-in device reads its own keys (its commands) and the swarm-wide ones a device
    /// may need (who leads, the swarm's energy); nothing of other devices or nodes.
    fn may_subscribe(&self, id: &NodeId, filter: &str) -> bool {
        // Home Assistant reads its discovery configs and the states and availability they
        // name, and nothing a device says.
        if let Some((ha, prefix)) = &self.home_assistant
            && ha == id
        {
            return under(filter, prefix) || under(filter, &self.keys.ha_root());
        }
        let own = self.keys.node(id);
        let in_own = filter
            .strip_prefix(own.as_str())
            .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1);
        in_own || filter == self.keys.leader() || filter == self.keys.swarm_energy()
    }

    /// A device writes only under its own `swarm/<s>/node/<id>/`.
    fn may_publish(&self, id: &NodeId, topic: &str) -> bool {
        // Home Assistant says only `online`/`offline` on its status topic.
        if let Some((ha, prefix)) = &self.home_assistant
            && ha == id
        {
            return topic == format!("{prefix}/status");
        }
        let own = self.keys.node(id);
        topic
            .strip_prefix(own.as_str())
            .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
    }

    /// `Ok(Some(id))`: logged in as device `id`; `Ok(None)`: no logins configured;
    /// `Err(user)`: refused.
    async fn check_login(&self, login: Option<&Login>) -> Result<Option<NodeId>, String> {
        let Some(users) = &self.users else {
            return Ok(None);
        };
        let Some(login) = login else {
            return Err("(none)".into());
        };
        let (user, password) = (login.username.clone(), login.password.clone());
        let users = users.clone();
        let name = user.clone();
        let ok = tokio::task::spawn_blocking(move || users.verify(&name, &password))
            .await
            .unwrap_or(false);
        match (ok, NodeId::new(&user)) {
            (true, Ok(id)) => Ok(Some(id)),
            _ => Err(user),
        }
    }
}

/// Refuses a packet on the length its fixed header declares.
fn within((header, remaining): (usize, usize), limit: usize) -> Result<(), Closed> {
    let declared = header.saturating_add(remaining);
    if declared > limit {
        return Err(Closed::TooLong { declared, limit });
    }
    Ok(())
}

/// `filter` is `prefix` itself or lies under it.
fn under(filter: &str, prefix: &str) -> bool {
    filter
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::testing::publish;
    use swarm_bus::SwarmName;

    fn gate(users: Option<Arc<Users>>) -> (Gate, mpsc::Receiver<Handoff>) {
        let (tx, rx) = mpsc::channel(4);
        let gate = Gate {
            keys: SwarmKeys::new(SwarmName::new("lab").unwrap()),
            users,
            v4: "127.0.0.1:1".parse().unwrap(),
            v5: "127.0.0.1:2".parse().unwrap(),
            secret: "s".into(),
            max_payload: 100,
            stats: Arc::new(Stats::default()),
            slots: Arc::new(Semaphore::new(1)),
            uplink: tx,
            home_assistant: None,
            readers: Arc::new(MeshReaders::new(&SwarmKeys::new(
                SwarmName::new("lab").unwrap(),
            ))),
        };
        (gate, rx)
    }

    /// A client that stopped reading is counted by reason, apart from links that broke.
    #[test]
    fn a_client_that_stopped_reading_is_counted_as_stalled() {
        let (gate, _rx) = gate(None);
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let stalled = std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            crate::device_writer::Stalled(Duration::from_secs(30)),
        );
        gate.log_close(&peer, &Closed::Io(stalled));
        gate.log_close(&peer, &Closed::Io(std::io::ErrorKind::TimedOut.into()));
        let refusals = gate.stats.refusals();
        let count = |reason| refusals.iter().find(|(r, _)| *r == reason).map(|(_, n)| *n);
        assert_eq!(count("stalled"), Some(1));
        assert_eq!(gate.stats.dropped(), 0);
    }

    /// Mesh publications that no MQTT subscription could read skip rumqttd (QoS 1 ones
    /// acknowledged by the gate); every other packet still reaches it, and all mesh
    /// publications still reach the mesh.
    #[tokio::test]
    async fn publications_nobody_reads_over_mqtt_go_to_the_mesh_only() {
        let (gate, _rx) = gate(None);
        let mut device = MeshTopics::new(&gate.keys, Arc::default())
            .reading(gate.readers.connect("a", true, false));
        let mut retained = publish("swarm/lab/node/a/energy", b"kept", 0, false);
        retained[0] |= 0x01;
        let packets = [
            publish("swarm/lab/node/a/energy", b"e-0", 0, false), // skips
            publish("swarm/lab/node/a/energy", b"e-1", 1, false), // skips, the gate acknowledges
            retained,                                             // kept by rumqttd
            publish("home/kitchen/temp", b"21", 0, false),        // not for the mesh
            publish("swarm/lab/node/a/status", b"online", 0, false), // read from rumqttd
            publish("swarm/lab/node/a/heartbeat", b"hb", 0, false), // skips
        ];
        let bytes = packets.concat();
        let mut spotted = Vec::new();
        let ready = gate
            .checked_prefix(&bytes, None, false, &mut device, &mut spotted)
            .unwrap();
        assert_eq!(ready, bytes.len());
        assert_eq!(spotted.len(), 4, "every mesh publication goes to the mesh");
        let mut to_broker = Vec::new();
        let wrote = write_unskipped(&mut to_broker, &bytes, &mut device.skipped, &gate.stats)
            .await
            .unwrap();
        assert!(wrote);
        assert_eq!(to_broker, packets[2..5].concat());
        assert_eq!(gate.stats.mesh_only.load(Relaxed), 3);
        assert_eq!(
            device.pubacks,
            [0x40, 0x02, 0x00, 0x07],
            "PUBACK for packet id 7"
        );
        assert!(device.owed.gate_may_acknowledge());
        device.pubacks.clear();

        // A watcher subscribes (on its own connection): the same bytes all go to rumqttd.
        let mut watcher = MeshTopics::new(&gate.keys, Arc::default())
            .reading(gate.readers.connect("w", true, false));
        let subscribe = crate::frame::testing::subscribe(&["swarm/lab/node/+/energy"], false);
        gate.checked_prefix(&subscribe, None, false, &mut watcher, &mut Vec::new())
            .unwrap();
        gate.checked_prefix(&bytes, None, false, &mut device, &mut spotted)
            .unwrap();
        assert_eq!(
            device.skipped,
            vec![packets[..5].concat().len()..bytes.len()]
        );
        device.skipped.clear();
        // It unsubscribes: energy skips again.
        let unsubscribe = crate::frame::testing::unsubscribe(&["swarm/lab/node/+/energy"], false);
        gate.checked_prefix(&unsubscribe, None, false, &mut watcher, &mut Vec::new())
            .unwrap();
        gate.checked_prefix(&packets[0], None, false, &mut device, &mut spotted)
            .unwrap();
        assert_eq!(device.skipped, vec![0..packets[0].len()]);
        device.skipped.clear();
        // A malformed SUBSCRIBE may read anything.
        let mut broken = crate::frame::testing::subscribe(&["x"], false);
        broken[1] += 1;
        broken.push(0);
        gate.checked_prefix(&broken, None, false, &mut watcher, &mut Vec::new())
            .unwrap();
        gate.checked_prefix(&packets[0], None, false, &mut device, &mut spotted)
            .unwrap();
        assert!(device.skipped.is_empty());
        drop(watcher);
        // A QoS 1 publication rumqttd acknowledges (not for the mesh) comes first: the QoS 1
        // mesh publication after it goes to rumqttd too, so its PUBACK comes second; QoS 0
        // still skips.
        let mut owing = MeshTopics::new(&gate.keys, Arc::default())
            .reading(gate.readers.connect("b", true, false));
        let mixed = [
            publish("home/kitchen/temp", b"21", 1, false),
            packets[1].clone(),
            packets[0].clone(),
        ];
        gate.checked_prefix(&mixed.concat(), None, false, &mut owing, &mut spotted)
            .unwrap();
        let second = mixed[0].len() + mixed[1].len();
        assert_eq!(owing.skipped, vec![second..second + mixed[2].len()]);
        assert!(owing.pubacks.is_empty());
        assert!(!owing.owed.gate_may_acknowledge());
        // A packet id of 0 is rumqttd's to answer.
        let mut zero = publish("swarm/lab/node/a/energy", b"e", 1, false);
        let at = zero.len() - 3;
        zero[at..at + 2].copy_from_slice(&[0, 0]);
        let mut fresh = MeshTopics::new(&gate.keys, Arc::default())
            .reading(gate.readers.connect("c", true, false));
        gate.checked_prefix(&zero, None, false, &mut fresh, &mut spotted)
            .unwrap();
        assert!(fresh.skipped.is_empty() && fresh.pubacks.is_empty());
        spotted.clear();
        // All skipped: nothing written.
        gate.checked_prefix(&packets[0], None, false, &mut device, &mut spotted)
            .unwrap();
        let mut to_broker = Vec::new();
        let wrote = write_unskipped(
            &mut to_broker,
            &packets[0],
            &mut device.skipped,
            &gate.stats,
        )
        .await
        .unwrap();
        assert!(!wrote && to_broker.is_empty());
    }

    #[test]
    fn mesh_topics_are_the_swarms_node_keys_except_status() {
        let mesh = MeshTopics::new(
            &SwarmKeys::new(SwarmName::new("lab").unwrap()),
            Arc::default(),
        );
        assert!(mesh.carries("swarm/lab/node/esp-1/energy"));
        assert!(!mesh.carries("swarm/lab/node/esp-1/status"));
        assert!(!mesh.carries("swarm/other/node/esp-1/energy"));
        assert!(!mesh.carries("swarm/lab/nodes/esp-1/energy"));
        assert!(!mesh.carries("home/kitchen/temp"));
    }

    #[tokio::test]
    async fn whole_publishes_are_spotted_and_handed_over_without_copies() {
        let (gate, mut rx) = gate(None);
        let mut mesh = MeshTopics::new(&gate.keys, Arc::default());
        for v5 in [false, true] {
            let mut bytes = publish("swarm/lab/node/a/energy", b"e-0", 0, v5);
            bytes.extend(publish("home/kitchen/temp", b"21", 0, v5));
            bytes.extend(publish("swarm/lab/node/a/status", b"online", 1, v5));
            bytes.extend(publish("swarm/lab/node/a/heartbeat", b"hb-1", 1, v5));
            let whole = bytes.len();
            bytes.extend(&publish("swarm/lab/node/a/energy", b"cut", 0, v5)[..6]);
            let mut spotted = Vec::new();
            let ready = gate
                .checked_prefix(&bytes, None, v5, &mut mesh, &mut spotted)
                .unwrap();
            assert_eq!(ready, whole, "the partial packet waits for more bytes");
            let chunk = Bytes::copy_from_slice(&bytes[..ready]);
            let handing = gate.hand_over(&chunk, &mut spotted);
            let receiving = async {
                let handoff = rx.recv().await.unwrap();
                let got: Vec<(&[u8], &[u8])> = handoff
                    .publications
                    .iter()
                    .map(|p| (&p.topic[..], &p.payload[..]))
                    .collect();
                assert_eq!(
                    got,
                    vec![
                        (&b"swarm/lab/node/a/energy"[..], &b"e-0"[..]),
                        (&b"swarm/lab/node/a/heartbeat"[..], &b"hb-1"[..]),
                    ]
                );
                let first = &handoff.publications[0].payload;
                assert!(
                    chunk.as_ptr_range().contains(&first.as_ptr()),
                    "a slice, not a copy"
                );
                // A QoS 1 publication is in the batch: the gate waits for this.
                handoff
                    .taken
                    .expect("confirmation asked for")
                    .send(())
                    .unwrap();
            };
            let (handed, ()) = tokio::join!(handing, receiving);
            handed.unwrap();
            assert!(spotted.is_empty());
        }
    }

    #[tokio::test]
    async fn a_qos0_only_batch_is_not_held_back_and_a_refused_packet_hands_nothing() {
        let (gate, mut rx) = gate(None);
        let mut mesh = MeshTopics::new(&gate.keys, Arc::default());
        let bytes = publish("swarm/lab/node/a/energy", b"e", 0, false);
        let mut spotted = Vec::new();
        let ready = gate
            .checked_prefix(&bytes, None, false, &mut mesh, &mut spotted)
            .unwrap();
        gate.hand_over(&Bytes::copy_from_slice(&bytes[..ready]), &mut spotted)
            .await
            .unwrap();
        assert!(rx.recv().await.unwrap().taken.is_none());

        let mut spotted = Vec::new();
        let oversize = publish("swarm/lab/node/a/energy", &[0u8; 101], 0, false);
        assert!(matches!(
            gate.checked_prefix(&oversize, None, false, &mut mesh, &mut spotted),
            Err(Closed::Oversize { .. })
        ));
        let id = NodeId::new("a").unwrap();
        let foreign = publish("swarm/lab/node/b/energy", b"e", 0, false);
        assert!(matches!(
            gate.checked_prefix(&foreign, Some(&id), false, &mut mesh, &mut spotted),
            Err(Closed::Acl { .. })
        ));
    }

    #[test]
    fn a_declared_length_past_the_limit_is_refused_before_its_bytes_arrive() {
        let (gate, _rx) = gate(None);
        let mut mesh = MeshTopics::new(&gate.keys, Arc::default());
        // 250 MB announced, five bytes sent: refused on the header alone.
        let announced = [0x30, 0x80, 0xd1, 0x9a, 0x77];
        let mut spotted = Vec::new();
        let refused = gate.checked_prefix(&announced, None, false, &mut mesh, &mut spotted);
        assert!(
            matches!(refused, Err(Closed::TooLong { declared, .. }) if declared > 200_000_000),
            "{refused:?}"
        );
        // Just within the limit: waits for the rest.
        let mut fits = publish("swarm/lab/node/a/energy", &[0u8; 100], 0, false);
        fits.truncate(10);
        assert_eq!(
            gate.checked_prefix(&fits, None, false, &mut mesh, &mut spotted)
                .unwrap(),
            0
        );
    }

    #[test]
    fn a_qos2_publish_sent_again_before_its_pubrel_is_carried_once() {
        use crate::frame::testing::publish_with;
        let (gate, _rx) = gate(None);
        let mut mesh = MeshTopics::new(&gate.keys, Arc::default());
        let topic = "swarm/lab/node/a/energy";
        let first = publish_with(topic, b"e", 2, None);
        let mut again = first.clone();
        again[0] |= 0x08; // DUP
        let pubrel = [0x62, 0x02, 0x00, 0x07]; // the helper's packet id is 7
        let mut bytes = first.clone();
        bytes.extend(&again);
        let mut spotted = Vec::new();
        gate.checked_prefix(&bytes, None, false, &mut mesh, &mut spotted)
            .unwrap();
        assert_eq!(spotted.len(), 1, "the copy is not carried");
        // Released, the packet id is free for a new message.
        let mut bytes = pubrel.to_vec();
        bytes.extend(&first);
        let mut spotted = Vec::new();
        gate.checked_prefix(&bytes, None, false, &mut mesh, &mut spotted)
            .unwrap();
        assert_eq!(spotted.len(), 1);
    }

    #[test]
    fn a_second_connect_is_refused() {
        let (gate, _rx) = gate(None);
        let mut mesh = MeshTopics::new(&gate.keys, Arc::default());
        let mut bytes = publish("swarm/lab/node/a/energy", b"e", 0, false);
        bytes.extend(crate::frame::testing::connect("again"));
        let mut spotted = Vec::new();
        assert!(matches!(
            gate.checked_prefix(&bytes, None, false, &mut mesh, &mut spotted),
            Err(Closed::SecondConnect)
        ));
    }

    #[test]
    fn an_aliased_publish_goes_to_the_broker_alone_and_nothing_after_it() {
        use crate::frame::testing::publish_with;
        let (gate, _rx) = gate(None);
        let mut mesh = MeshTopics::new(&gate.keys, Arc::default());
        let mut bytes = publish("swarm/lab/node/a/energy", b"e-0", 0, true);
        let aliased = [0x23, 0x00, 0x01];
        bytes.extend(publish_with(
            "swarm/lab/node/a/heartbeat",
            b"hb",
            1,
            Some(&aliased),
        ));
        let through = bytes.len();
        bytes.extend(publish("swarm/lab/node/a/energy", b"e-1", 0, true));
        let mut spotted = Vec::new();
        let refused = gate.checked_prefix(&bytes, None, true, &mut mesh, &mut spotted);
        assert!(
            matches!(refused, Err(Closed::TopicAlias { through: t }) if t == through),
            "{refused:?}"
        );
        assert_eq!(
            spotted.len(),
            1,
            "only the publication before the alias is carried"
        );

        // With logins an empty aliased topic is not held to the ACL: the broker refuses it.
        let id = NodeId::new("a").unwrap();
        let empty = publish_with("", b"hb", 0, Some(&aliased));
        let mut spotted = Vec::new();
        assert!(matches!(
            gate.checked_prefix(&empty, Some(&id), true, &mut mesh, &mut spotted),
            Err(Closed::TopicAlias { .. })
        ));
        // A topic it names is.
        let foreign = publish_with("swarm/lab/node/b/energy", b"e", 0, Some(&aliased));
        assert!(matches!(
            gate.checked_prefix(&foreign, Some(&id), true, &mut mesh, &mut spotted),
            Err(Closed::Acl { .. })
        ));
    }

    #[test]
    fn client_ids_rumqttd_cannot_take_are_refused() {
        for id in ["a/b", "a+", "#", "$sys", crate::embedded::LINK_CLIENT_ID] {
            assert!(refused_client_id(id), "{id}");
        }
        for id in ["esp-1", "", "swarm-bridge-2", "é"] {
            assert!(!refused_client_id(id), "{id}");
        }
    }

    #[test]
    fn a_logged_in_device_subscribes_to_its_own_keys_and_the_swarm_wide_ones_only() {
        use crate::frame::testing::subscribe;
        let (gate, _rx) = gate(None);
        let mut mesh = MeshTopics::new(&gate.keys, Arc::default());
        let id = NodeId::new("a").unwrap();
        for v5 in [false, true] {
            let mut spotted = Vec::new();
            let fine = subscribe(
                &[
                    "swarm/lab/node/a/cmd",
                    "swarm/lab/node/a/#",
                    "swarm/lab/leader",
                ],
                v5,
            );
            let ready = gate
                .checked_prefix(&fine, Some(&id), v5, &mut mesh, &mut spotted)
                .unwrap();
            assert_eq!(ready, fine.len());
            for filter in [
                "swarm/lab/node/b/cmd",
                "swarm/lab/node/+/cmd",
                "swarm/#",
                "#",
                "swarm/lab/node/a",
                "swarm/lab/node/ab/cmd",
            ] {
                let bad = subscribe(&["swarm/lab/node/a/cmd", filter], v5);
                assert!(
                    matches!(
                        gate.checked_prefix(&bad, Some(&id), v5, &mut mesh, &mut spotted),
                        Err(Closed::SubscribeAcl { .. })
                    ),
                    "{filter}"
                );
            }
            // Without logins nobody is held to an ACL.
            let any = subscribe(&["#"], v5);
            assert!(
                gate.checked_prefix(&any, None, v5, &mut mesh, &mut spotted)
                    .is_ok()
            );
        }
    }

    #[test]
    fn home_assistant_reads_its_topics_and_says_only_its_status() {
        use crate::frame::testing::subscribe;
        let (mut gate, _rx) = gate(None);
        let ha = NodeId::new("hass").unwrap();
        gate.home_assistant = Some((ha.clone(), "homeassistant".into()));
        let mut mesh = MeshTopics::new(&gate.keys, Arc::default());
        let mut spotted = Vec::new();
        for v5 in [false, true] {
            let fine = subscribe(&["homeassistant/#", "swarm/lab/ha/#", "homeassistant"], v5);
            assert!(
                gate.checked_prefix(&fine, Some(&ha), v5, &mut mesh, &mut spotted)
                    .is_ok()
            );
            for filter in [
                "#",
                "swarm/lab/node/+/cmd",
                "homeassistantx/#",
                "swarm/lab/hax",
            ] {
                let bad = subscribe(&[filter], v5);
                assert!(
                    matches!(
                        gate.checked_prefix(&bad, Some(&ha), v5, &mut mesh, &mut spotted),
                        Err(Closed::SubscribeAcl { .. })
                    ),
                    "{filter}"
                );
            }
            let birth = publish("homeassistant/status", b"online", 0, v5);
            assert!(
                gate.checked_prefix(&birth, Some(&ha), v5, &mut mesh, &mut spotted)
                    .is_ok()
            );
            for topic in [
                "homeassistant/sensor/lab_a/power_w/config",
                "swarm/lab/ha/a/availability",
                "swarm/lab/node/hass/energy",
            ] {
                let forged = publish(topic, b"x", 0, v5);
                assert!(
                    matches!(
                        gate.checked_prefix(&forged, Some(&ha), v5, &mut mesh, &mut spotted),
                        Err(Closed::Acl { .. })
                    ),
                    "{topic}"
                );
            }
        }
        // Another login is still a device.
        let device = NodeId::new("esp-1").unwrap();
        let birth = publish("homeassistant/status", b"online", 0, false);
        assert!(matches!(
            gate.checked_prefix(&birth, Some(&device), false, &mut mesh, &mut spotted),
            Err(Closed::Acl { .. })
        ));
    }
}
