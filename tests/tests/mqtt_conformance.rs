//! The embedded broker (the gate in front of rumqttd) against the normative statements of MQTT
//! 3.1.1 and MQTT 5, one test per statement, with real clients: `mosquitto_pub` and
//! `mosquitto_sub` (Debian's mosquitto-clients), rumqttc, and a raw client where a statement
//! needs bytes no client library sends (a second CONNECT, a PUBLISH sent again before its
//! PUBREL, a packet id held back). Each test runs its own `swarm-bridge run` on loopback.
//!
//! Names follow the statement: `mqtt_<3.1.1 number>_…`, or `mqtt5_<5.0 number>_…` for what only
//! MQTT 5 has. docs/bridge.md ("Standards conformance") lists them with their outcome.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use swarm_tests::{BridgeProcess, loopback_session};

const SWARM: &str = "mc";

/// How long a packet that must come may take.
const SOON: Duration = Duration::from_secs(5);
/// How long to watch for a packet that must not come.
const QUIET: Duration = Duration::from_millis(700);
/// How long to go on watching once what must come came, for a copy too many.
const GRACE: Duration = Duration::from_millis(300);

fn bridge() -> BridgeProcess {
    // The broker alone: Home Assistant's announcements (on by default) would be retained
    // messages these tests do not expect on `#`.
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("bridge.toml"),
            "[homeassistant]\nenabled = false\n",
        )
        .expect("writing the bridge's config");
        dir
    });
    let config = dir.path().join("bridge.toml");
    BridgeProcess::start(SWARM, &["--config", config.to_str().expect("a UTF-8 path")])
}

// ---------------------------------------------------------------------------------------------
// A raw MQTT client: exact bytes out, whole packets in.

const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PUBREC: u8 = 5;
const PUBREL: u8 = 6;
const PUBCOMP: u8 = 7;
const SUBACK: u8 = 9;
const UNSUBACK: u8 = 11;
const PINGRESP: u8 = 13;
const DISCONNECT: u8 = 14;

#[derive(Debug, Clone)]
struct Packet {
    first: u8,
    body: Vec<u8>,
}

impl Packet {
    fn kind(&self) -> u8 {
        self.first >> 4
    }
}

#[derive(Debug, PartialEq)]
enum Gone {
    Timeout,
    Closed,
}

struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    v5: bool,
}

impl Raw {
    fn open(port: u16, v5: bool) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to the bridge");
        stream.set_nodelay(true).expect("nodelay");
        Raw {
            stream,
            buf: Vec::new(),
            v5,
        }
    }

    /// Connects with `connect` and returns the CONNACK.
    fn connect(port: u16, connect: &Connect) -> (Raw, ConnAck) {
        let mut raw = Raw::open(port, connect.v5);
        raw.send(&connect.encode());
        let ack = raw.expect(CONNACK, SOON);
        let ack = ConnAck::parse(&ack, connect.v5);
        (raw, ack)
    }

    /// Connects, and panics unless the CONNACK accepts.
    fn accepted(port: u16, connect: &Connect) -> (Raw, ConnAck) {
        let (raw, ack) = Raw::connect(port, connect);
        assert_eq!(ack.code, 0, "CONNACK refused {connect:?}");
        (raw, ack)
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("writing to the bridge");
    }

    fn recv(&mut self, within: Duration) -> Result<Packet, Gone> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(p) = self.take_packet() {
                return Ok(p);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Gone::Timeout);
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Gone::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(Gone::Timeout);
                }
                Err(_) => return Err(Gone::Closed),
            }
        }
    }

    fn take_packet(&mut self) -> Option<Packet> {
        let mut len = 0usize;
        for i in 0..4 {
            let byte = *self.buf.get(1 + i)?;
            len |= usize::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                let end = 2 + i + len;
                if self.buf.len() < end {
                    return None;
                }
                let packet = Packet {
                    first: self.buf[0],
                    body: self.buf[2 + i..end].to_vec(),
                };
                self.buf.drain(..end);
                return Some(packet);
            }
        }
        panic!("bad remaining length from the bridge: {:?}", &self.buf[..5]);
    }

    /// The next packet, which must be a `kind`.
    fn expect(&mut self, kind: u8, within: Duration) -> Packet {
        match self.recv(within) {
            Ok(p) if p.kind() == kind => p,
            other => panic!("expected packet type {kind}, got {other:?}"),
        }
    }

    /// Every packet until `within` passes; `Err` carries them if the connection closed.
    fn drain(&mut self, within: Duration) -> Result<Vec<Packet>, Vec<Packet>> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Ok(p) => got.push(p),
                Err(Gone::Timeout) => return Ok(got),
                Err(Gone::Closed) => return Err(got),
            }
        }
    }

    /// The publications that arrive within `within`, each acknowledged as its QoS asks.
    fn publications(&mut self, within: Duration) -> Vec<Pub> {
        self.collect(usize::MAX, within)
    }

    /// The first `n` publications (waiting up to `SOON` for them) and any more that follow
    /// within `GRACE`, acknowledged.
    fn take(&mut self, n: usize) -> Vec<Pub> {
        let mut got = self.collect(n, SOON);
        got.extend(self.publications(GRACE));
        got
    }

    fn collect(&mut self, n: usize, within: Duration) -> Vec<Pub> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        while got.len() < n
            && let Ok(p) = self.recv(deadline.saturating_duration_since(Instant::now()))
        {
            match p.kind() {
                PUBLISH => {
                    let publication = Pub::parse(&p, self.v5);
                    match publication.qos {
                        1 => self.send(&ack(PUBACK, publication.pkid)),
                        2 => self.send(&ack(PUBREC, publication.pkid)),
                        _ => {}
                    }
                    got.push(publication);
                }
                PUBREL => self.send(&ack(PUBCOMP, u16::from_be_bytes([p.body[0], p.body[1]]))),
                _ => {}
            }
        }
        got
    }

    /// The first `n` PUBLISH packets (up to `SOON`) and any more within `GRACE`, not
    /// acknowledged.
    fn held(&mut self, n: usize) -> Vec<Pub> {
        let mut got = Vec::new();
        let deadline = Instant::now() + SOON;
        while got.len() < n {
            match self.recv(deadline.saturating_duration_since(Instant::now())) {
                Ok(p) if p.kind() == PUBLISH => got.push(Pub::parse(&p, self.v5)),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let more = self.drain(GRACE).expect("still open");
        got.extend(
            more.iter()
                .filter(|p| p.kind() == PUBLISH)
                .map(|p| Pub::parse(p, self.v5)),
        );
        got
    }

    /// True once the bridge has closed the connection, within `within`.
    fn closed_within(&mut self, within: Duration) -> bool {
        self.drain(within).is_err()
    }

    /// Subscribes and returns the SUBACK codes.
    fn subscribe(&mut self, pkid: u16, filters: &[(&str, u8)], props: &[u8]) -> Vec<u8> {
        self.send(&subscribe(self.v5, pkid, filters, props));
        let suback = self.expect(SUBACK, SOON);
        let (id, codes) = SubAck::parse(&suback, self.v5);
        assert_eq!(id, pkid, "SUBACK for another packet id");
        codes
    }

    /// A PUBLISH at QoS 0 or 1, waiting for the PUBACK of the latter.
    fn publish(&mut self, topic: &str, payload: &[u8], qos: u8, retain: bool, props: &[u8]) {
        self.send(&publish(
            self.v5, topic, payload, qos, retain, false, 1, props,
        ));
        if qos == 1 {
            self.expect(PUBACK, SOON);
        }
    }

    fn ping(&mut self) -> bool {
        self.send(&[0xC0, 0x00]);
        matches!(self.recv(SOON), Ok(p) if p.kind() == PINGRESP)
    }
}

/// A CONNECT, built field by field.
#[derive(Debug, Clone)]
struct Connect {
    v5: bool,
    client_id: String,
    clean: bool,
    keep_alive: u16,
    will: Option<Will>,
    /// MQTT 5 properties, encoded (the length is added).
    props: Vec<u8>,
    /// Bits OR-ed into the connect flags: the reserved bit.
    extra_flags: u8,
    level: Option<u8>,
}

#[derive(Debug, Clone)]
struct Will {
    topic: String,
    payload: Vec<u8>,
    qos: u8,
    retain: bool,
    props: Vec<u8>,
}

impl Connect {
    fn new(v5: bool, client_id: &str) -> Connect {
        Connect {
            v5,
            client_id: client_id.into(),
            clean: true,
            keep_alive: 30,
            will: None,
            props: Vec::new(),
            extra_flags: 0,
            level: None,
        }
    }

    fn clean(mut self, clean: bool) -> Connect {
        self.clean = clean;
        self
    }

    fn keep_alive(mut self, secs: u16) -> Connect {
        self.keep_alive = secs;
        self
    }

    fn props(mut self, props: Vec<u8>) -> Connect {
        self.props = props;
        self
    }

    fn will(mut self, topic: &str, payload: &[u8], qos: u8, retain: bool) -> Connect {
        self.will = Some(Will {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
            props: Vec::new(),
        });
        self
    }

    fn will_props(mut self, props: Vec<u8>) -> Connect {
        if let Some(will) = self.will.as_mut() {
            will.props = props;
        }
        self
    }

    fn encode(&self) -> Vec<u8> {
        let mut body = string(b"MQTT");
        body.push(self.level.unwrap_or(if self.v5 { 5 } else { 4 }));
        let mut flags = self.extra_flags;
        if self.clean {
            flags |= 0x02;
        }
        if let Some(will) = &self.will {
            flags |= 0x04 | (will.qos << 3);
            if will.retain {
                flags |= 0x20;
            }
        }
        body.push(flags);
        body.extend_from_slice(&self.keep_alive.to_be_bytes());
        if self.v5 {
            body.extend(properties(&self.props));
        }
        body.extend(string(self.client_id.as_bytes()));
        if let Some(will) = &self.will {
            if self.v5 {
                body.extend(properties(&will.props));
            }
            body.extend(string(will.topic.as_bytes()));
            body.extend(string(&will.payload));
        }
        packet(0x10, &body)
    }
}

#[derive(Debug)]
struct ConnAck {
    session_present: bool,
    code: u8,
    props: Props,
}

impl ConnAck {
    fn parse(p: &Packet, v5: bool) -> ConnAck {
        ConnAck {
            session_present: p.body[0] & 0x01 == 1,
            code: p.body[1],
            props: if v5 && p.body.len() > 2 {
                Props::parse(&p.body[2..]).0
            } else {
                Props::default()
            },
        }
    }
}

/// A PUBLISH as received.
#[derive(Debug, Clone)]
struct Pub {
    topic: String,
    payload: Vec<u8>,
    qos: u8,
    retain: bool,
    dup: bool,
    pkid: u16,
    props: Props,
}

impl Pub {
    fn parse(p: &Packet, v5: bool) -> Pub {
        let qos = (p.first >> 1) & 0x03;
        let topic_len = usize::from(u16::from_be_bytes([p.body[0], p.body[1]]));
        let topic = String::from_utf8(p.body[2..2 + topic_len].to_vec()).expect("UTF-8 topic");
        let mut at = 2 + topic_len;
        let mut pkid = 0;
        if qos > 0 {
            pkid = u16::from_be_bytes([p.body[at], p.body[at + 1]]);
            at += 2;
        }
        let mut props = Props::default();
        if v5 {
            let (parsed, used) = Props::parse(&p.body[at..]);
            props = parsed;
            at += used;
        }
        Pub {
            topic,
            payload: p.body[at..].to_vec(),
            qos,
            retain: p.first & 0x01 == 1,
            dup: p.first & 0x08 != 0,
            pkid,
            props,
        }
    }
}

struct SubAck;

impl SubAck {
    /// (packet id, one code per filter)
    fn parse(p: &Packet, v5: bool) -> (u16, Vec<u8>) {
        let pkid = u16::from_be_bytes([p.body[0], p.body[1]]);
        let mut at = 2;
        if v5 {
            at += Props::parse(&p.body[2..]).1;
        }
        (pkid, p.body[at..].to_vec())
    }
}

/// MQTT 5 properties as (identifier, value), in the order they came.
#[derive(Debug, Clone, Default, PartialEq)]
struct Props(Vec<(u8, Value)>);

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(u32),
    Str(String),
    Bin(Vec<u8>),
    Pair(String, String),
}

impl Props {
    /// The properties at the start of `bytes` and how many bytes they took, length included.
    fn parse(bytes: &[u8]) -> (Props, usize) {
        let (len, len_bytes) = varint(bytes);
        let mut rest = &bytes[len_bytes..len_bytes + len];
        let mut out = Vec::new();
        let s = |b: &[u8]| -> (String, usize) {
            let n = usize::from(u16::from_be_bytes([b[0], b[1]]));
            (
                String::from_utf8(b[2..2 + n].to_vec()).expect("UTF-8"),
                2 + n,
            )
        };
        while let Some((&id, value)) = rest.split_first() {
            let (v, used) = match id {
                0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => {
                    (Value::Int(u32::from(value[0])), 1)
                }
                0x13 | 0x21 | 0x22 | 0x23 => (
                    Value::Int(u32::from(u16::from_be_bytes([value[0], value[1]]))),
                    2,
                ),
                0x02 | 0x11 | 0x18 | 0x27 => (
                    Value::Int(u32::from_be_bytes([value[0], value[1], value[2], value[3]])),
                    4,
                ),
                0x0B => {
                    let (n, used) = varint(value);
                    (Value::Int(n as u32), used)
                }
                0x03 | 0x08 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F => {
                    let (text, used) = s(value);
                    (Value::Str(text), used)
                }
                0x09 | 0x16 => {
                    let n = usize::from(u16::from_be_bytes([value[0], value[1]]));
                    (Value::Bin(value[2..2 + n].to_vec()), 2 + n)
                }
                0x26 => {
                    let (k, a) = s(value);
                    let (v, b) = s(&value[a..]);
                    (Value::Pair(k, v), a + b)
                }
                other => panic!("unknown property {other:#x}"),
            };
            out.push((id, v));
            rest = &value[used..];
        }
        (Props(out), len_bytes + len)
    }

    fn int(&self, id: u8) -> Option<u32> {
        self.0.iter().find_map(|(i, v)| match v {
            Value::Int(n) if *i == id => Some(*n),
            _ => None,
        })
    }

    fn str(&self, id: u8) -> Option<String> {
        self.0.iter().find_map(|(i, v)| match v {
            Value::Str(s) if *i == id => Some(s.clone()),
            _ => None,
        })
    }

    fn ints(&self, id: u8) -> Vec<u32> {
        self.0
            .iter()
            .filter_map(|(i, v)| match v {
                Value::Int(n) if *i == id => Some(*n),
                _ => None,
            })
            .collect()
    }
}

// Property identifiers used below.
const PAYLOAD_FORMAT: u8 = 0x01;
const MESSAGE_EXPIRY: u8 = 0x02;
const CONTENT_TYPE: u8 = 0x03;
const RESPONSE_TOPIC: u8 = 0x08;
const CORRELATION_DATA: u8 = 0x09;
const SUBSCRIPTION_ID: u8 = 0x0B;
const SESSION_EXPIRY: u8 = 0x11;
const ASSIGNED_CLIENT_ID: u8 = 0x12;
const AUTHENTICATION_METHOD: u8 = 0x15;
const WILL_DELAY: u8 = 0x18;
const RECEIVE_MAXIMUM: u8 = 0x21;
const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
const TOPIC_ALIAS: u8 = 0x23;
const USER_PROPERTY: u8 = 0x26;
const MAXIMUM_PACKET_SIZE: u8 = 0x27;

fn prop_u8(id: u8, v: u8) -> Vec<u8> {
    vec![id, v]
}

fn prop_u16(id: u8, v: u16) -> Vec<u8> {
    let mut out = vec![id];
    out.extend_from_slice(&v.to_be_bytes());
    out
}

fn prop_u32(id: u8, v: u32) -> Vec<u8> {
    let mut out = vec![id];
    out.extend_from_slice(&v.to_be_bytes());
    out
}

fn prop_str(id: u8, v: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    out.extend(string(v));
    out
}

fn prop_pair(id: u8, k: &str, v: &str) -> Vec<u8> {
    let mut out = vec![id];
    out.extend(string(k.as_bytes()));
    out.extend(string(v.as_bytes()));
    out
}

fn prop_varint(id: u8, v: usize) -> Vec<u8> {
    let mut out = vec![id];
    out.extend(encode_varint(v));
    out
}

fn string(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

fn encode_varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut b = (n & 0x7f) as u8;
        n >>= 7;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return out;
        }
    }
}

/// (value, bytes used)
fn varint(bytes: &[u8]) -> (usize, usize) {
    let mut n = 0usize;
    for (i, b) in bytes.iter().take(4).enumerate() {
        n |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (n, i + 1);
        }
    }
    panic!("bad variable byte integer")
}

fn properties(props: &[u8]) -> Vec<u8> {
    let mut out = encode_varint(props.len());
    out.extend_from_slice(props);
    out
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    out.extend(encode_varint(body.len()));
    out.extend_from_slice(body);
    out
}

#[allow(clippy::too_many_arguments)]
fn publish(
    v5: bool,
    topic: &str,
    payload: &[u8],
    qos: u8,
    retain: bool,
    dup: bool,
    pkid: u16,
    props: &[u8],
) -> Vec<u8> {
    let mut body = string(topic.as_bytes());
    if qos > 0 {
        body.extend_from_slice(&pkid.to_be_bytes());
    }
    if v5 {
        body.extend(properties(props));
    }
    body.extend_from_slice(payload);
    let first = 0x30 | (qos << 1) | u8::from(retain) | if dup { 0x08 } else { 0 };
    packet(first, &body)
}

/// `filters`: (filter, options byte: QoS in bits 0-1, MQTT 5 options above).
fn subscribe(v5: bool, pkid: u16, filters: &[(&str, u8)], props: &[u8]) -> Vec<u8> {
    let mut body = pkid.to_be_bytes().to_vec();
    if v5 {
        body.extend(properties(props));
    }
    for (filter, options) in filters {
        body.extend(string(filter.as_bytes()));
        body.push(*options);
    }
    packet(0x82, &body)
}

fn unsubscribe(v5: bool, pkid: u16, filters: &[&str]) -> Vec<u8> {
    let mut body = pkid.to_be_bytes().to_vec();
    if v5 {
        body.push(0);
    }
    for filter in filters {
        body.extend(string(filter.as_bytes()));
    }
    packet(0xA2, &body)
}

fn ack(kind: u8, pkid: u16) -> Vec<u8> {
    let first = (kind << 4) | if kind == PUBREL { 0x02 } else { 0 };
    packet(first, &pkid.to_be_bytes())
}

fn disconnect(v5: bool, reason: u8) -> Vec<u8> {
    if v5 {
        packet(0xE0, &[reason, 0])
    } else {
        packet(0xE0, &[])
    }
}

fn both<F: Fn(bool) + Sync>(f: F) {
    std::thread::scope(|s| {
        let v4 = s.spawn(|| f(false));
        f(true);
        if let Err(panic) = v4.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

fn payloads(pubs: &[Pub]) -> Vec<String> {
    pubs.iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect()
}

/// What `mosquitto_sub` prints for the first `count` messages on `topic`, one line each in
/// `format` (`%r` the retain flag, `%p` the payload, `%q` the QoS), within 5 s.
fn mosquitto_sub(port: u16, version: &str, topic: &str, count: u32, format: &str) -> String {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version])
        .args(["-t", topic, "-q", "1", "-C", &count.to_string(), "-W", "5"])
        .args(["-F", format])
        .stdin(Stdio::null())
        .output()
        .expect("mosquitto_sub (Debian package mosquitto-clients)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `mosquitto_pub` at QoS 0 with more flags; panics unless it succeeds.
fn mosquitto_send(port: u16, version: &str, topic: &str, payload: &str, extra: &[&str]) {
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version])
        .args(["-t", topic, "-m", payload])
        .args(extra)
        .output()
        .expect("mosquitto_pub (Debian package mosquitto-clients)");
    assert!(
        out.status.success(),
        "mosquitto_pub {topic}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A rumqttc 3.1.1 client polled on its own thread; its incoming packets (or its error) in
/// the channel.
fn rumqttc_v4(
    port: u16,
    client_id: &str,
    tweak: impl FnOnce(&mut rumqttc::MqttOptions),
) -> (
    rumqttc::Client,
    mpsc::Receiver<Result<rumqttc::Packet, String>>,
) {
    let mut opts = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
    tweak(&mut opts);
    let (client, mut connection) = rumqttc::Client::new(opts, 16);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            let item = match event {
                Ok(rumqttc::Event::Incoming(p)) => Ok(p),
                Ok(_) => continue,
                Err(e) => Err(e.to_string()),
            };
            let stop = item.is_err();
            if tx.send(item).is_err() || stop {
                return;
            }
        }
    });
    (client, rx)
}

fn next_v4(
    rx: &mpsc::Receiver<Result<rumqttc::Packet, String>>,
    pick: impl Fn(&rumqttc::Packet) -> bool,
) -> rumqttc::Packet {
    let deadline = Instant::now() + SOON;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(p)) if pick(&p) => return p,
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => panic!("rumqttc: {e}"),
            Err(_) => panic!("rumqttc: nothing expected within {SOON:?}"),
        }
    }
}

/// A zenoh subscriber on the bridge's zenoh port: what reaches the mesh.
struct MeshWatch {
    rt: tokio::runtime::Runtime,
    _session: zenoh::Session,
    sub: zenoh::pubsub::Subscriber<zenoh::handlers::FifoChannelHandler<zenoh::sample::Sample>>,
}

impl MeshWatch {
    fn start(b: &BridgeProcess, key_expr: &str) -> MeshWatch {
        let rt = tokio::runtime::Runtime::new().expect("tokio");
        let (session, sub) = rt.block_on(async {
            let session = loopback_session(None, Some(b.zenoh_port)).await;
            let sub = session
                .declare_subscriber(key_expr.to_string())
                .await
                .expect("zenoh subscriber");
            // The link to the bridge comes up just after opening.
            tokio::time::sleep(Duration::from_millis(300)).await;
            (session, sub)
        });
        MeshWatch {
            rt,
            _session: session,
            sub,
        }
    }

    /// The payloads of the samples that arrive within `within`.
    fn samples(&self, within: Duration) -> Vec<Vec<u8>> {
        self.rt.block_on(async {
            let deadline = tokio::time::Instant::now() + within;
            let mut got = Vec::new();
            while let Ok(Ok(sample)) =
                tokio::time::timeout_at(deadline, self.sub.recv_async()).await
            {
                got.push(sample.payload().to_bytes().to_vec());
            }
            got
        })
    }
}

fn energy(ts_ms: u64) -> Vec<u8> {
    swarm_bus::encode(&swarm_bus::Energy {
        ts_ms,
        ..swarm_bus::samples::energy()
    })
}

// ---------------------------------------------------------------------------------------------
// CONNECT

/// 3.1.2.10 (3.1.1 and 5): "a Keep Alive value of zero has the effect of turning off the keep
/// alive mechanism". rumqttd refused such a CONNECT without a CONNACK (`ZeroKeepAlive`).
#[test]
fn mqtt_3_1_2_10_keep_alive_zero_means_off() {
    let b = bridge();
    std::thread::scope(|s| {
        // 3.1.1 through rumqttc, which sends no PINGREQ with keep-alive 0.
        s.spawn(|| {
            let (client, rx) = rumqttc_v4(b.mqtt_port, "ka0-v4", |o| {
                o.set_keep_alive(Duration::ZERO);
            });
            let ack = next_v4(&rx, |p| matches!(p, rumqttc::Packet::ConnAck(_)));
            let rumqttc::Packet::ConnAck(ack) = ack else {
                unreachable!()
            };
            assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success);
            std::thread::sleep(Duration::from_secs(3));
            client
                .publish("ka0/v4", rumqttc::QoS::AtLeastOnce, false, "still here")
                .expect("publish queued");
            next_v4(&rx, |p| matches!(p, rumqttc::Packet::PubAck(_)));
        });
        // 5 raw: rumqttc 5 and mosquitto_pub refuse a keep-alive under 5 s.
        let (mut raw, _) = Raw::accepted(b.mqtt_port, &Connect::new(true, "ka0-v5").keep_alive(0));
        std::thread::sleep(Duration::from_secs(3));
        assert!(raw.ping(), "a silent client with keep-alive 0 was closed");
    });
}

/// [MQTT-3.1.2-24] (5: [MQTT-3.1.2-22]): with a keep-alive, a client silent for one and a half
/// times it is disconnected.
#[test]
fn mqtt_3_1_2_24_a_silent_client_is_closed_after_one_and_a_half_keep_alives() {
    let b = bridge();
    both(|v5| {
        let id = if v5 { "ka1-5" } else { "ka1-4" };
        let (mut raw, _) = Raw::accepted(b.mqtt_port, &Connect::new(v5, id).keep_alive(1));
        let start = Instant::now();
        assert!(
            raw.closed_within(Duration::from_secs(5)),
            "v5={v5}: still open"
        );
        let after = start.elapsed();
        assert!(
            after >= Duration::from_millis(1400),
            "v5={v5}: closed after {after:?}, before 1.5 × 1 s"
        );
    });
}

/// [MQTT-3.1.0-2] (3.1.1 and 5): a second CONNECT is a protocol violation; the Server
/// disconnects the client. rumqttd ignored it.
#[test]
fn mqtt_3_1_0_2_a_second_connect_closes_the_connection() {
    let b = bridge();
    both(|v5| {
        let connect = Connect::new(v5, if v5 { "twice-5" } else { "twice-4" });
        let (mut raw, _) = Raw::accepted(b.mqtt_port, &connect);
        raw.send(&connect.encode());
        assert!(
            raw.closed_within(SOON),
            "v5={v5}: a second CONNECT was taken"
        );
    });
}

/// [MQTT-3.1.2-2]: an unsupported protocol level gets CONNACK 0x01 and the connection closes
/// (5: [MQTT-3.1.2-2], MAY answer 0x84, MUST close). MQTT 3.1 ("MQIsdp", level 3) was passed to
/// rumqttd, which cannot read it, and closed without an answer.
#[test]
fn mqtt_3_1_2_2_an_unsupported_protocol_level_gets_connack_0x01() {
    let b = bridge();
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &b.mqtt_port.to_string()])
        .args(["-V", "mqttv31", "-t", "v31/x", "-m", "hi"])
        .output()
        .expect("mosquitto_pub (Debian package mosquitto-clients)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("unacceptable protocol version"), "{err}");

    let mut raw = Connect::new(false, "lvl6");
    raw.level = Some(6);
    let (mut raw, ack) = Raw::connect(b.mqtt_port, &raw);
    assert_eq!(ack.code, 0x01);
    assert!(raw.closed_within(SOON));
}

/// [MQTT-3.1.2-3] (3.1.1 and 5): a CONNECT with the reserved flag set is closed. rumqttd did not
/// look at the flag.
#[test]
fn mqtt_3_1_2_3_a_set_reserved_connect_flag_closes_the_connection() {
    let b = bridge();
    both(|v5| {
        let mut connect = Connect::new(v5, "reserved");
        connect.extra_flags = 0x01;
        let mut raw = Raw::open(b.mqtt_port, v5);
        raw.send(&connect.encode());
        match raw.drain(SOON) {
            Err(got) => assert!(
                got.iter().all(|p| p.kind() != CONNACK || p.body[1] != 0),
                "v5={v5}: accepted"
            ),
            Ok(got) => panic!("v5={v5}: still open after {got:?}"),
        }
    });
}

/// [MQTT-3.1.4-2] (5: [MQTT-3.1.4-3]): a CONNECT with the client id of a connected client
/// disconnects the existing client.
#[test]
fn mqtt_3_1_4_2_a_second_connection_with_the_same_client_id_takes_over() {
    let b = bridge();
    both(|v5| {
        let connect = Connect::new(v5, if v5 { "twin-5" } else { "twin-4" });
        let (mut first, _) = Raw::accepted(b.mqtt_port, &connect);
        let (mut second, _) = Raw::accepted(b.mqtt_port, &connect);
        assert!(first.closed_within(SOON), "v5={v5}: the first stayed");
        assert!(second.ping(), "v5={v5}: the second was closed");
    });
}

/// [MQTT-3.14.4-1], [MQTT-3.14.4-2]: after a DISCONNECT the server closes that connection, and
/// no other. rumqttd reused a gone connection's index at once, and the link's own "closed" word
/// that followed a DISCONNECT closed whichever client had taken the index meanwhile: one
/// conformance run in fifteen saw a fresh watcher closed before its SUBACK.
#[test]
fn mqtt_3_14_4_2_a_disconnect_closes_only_its_own_connection() {
    let b = bridge();
    both(|v5| {
        for round in 0..150 {
            let (mut leaving, _) =
                Raw::accepted(b.mqtt_port, &Connect::new(v5, &format!("go-{v5}-{round}")));
            leaving.send(&disconnect(v5, 0));
            drop(leaving);
            let (mut arriving, _) = Raw::accepted(
                b.mqtt_port,
                &Connect::new(v5, &format!("come-{v5}-{round}")),
            );
            let filter = format!("stay/{v5}/{round}");
            assert_eq!(
                arriving.subscribe(1, &[(&filter, 0)], &[]),
                [0],
                "v5={v5} round {round}"
            );
            assert!(
                arriving.ping(),
                "v5={v5} round {round}: closed by another's DISCONNECT"
            );
        }
    });
}

/// [MQTT-3.1.3-9]: a client id the Server rejects gets CONNACK 0x02, then the connection
/// closes (5: [MQTT-3.1.3-8], 0x85). rumqttd's router dropped ids with `+ # / $` without an
/// answer, and the second such CONNECT panicked its listener for everybody; an id like the
/// bridge's own link took the link over.
#[test]
fn mqtt_3_1_3_9_a_client_id_the_broker_cannot_take_is_refused_with_connack_0x02() {
    let b = bridge();
    for id in ["a/b", "a/b", "swarm-bridge"] {
        let out = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &b.mqtt_port.to_string()])
            .args(["-i", id, "-t", "id/x", "-m", "hi"])
            .output()
            .expect("mosquitto_pub (Debian package mosquitto-clients)");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("identifier rejected"), "{id}: {err}");
    }
    let (mut raw, ack) = Raw::connect(b.mqtt_port, &Connect::new(true, "a+b"));
    assert_eq!(ack.code, 0x85);
    assert!(raw.closed_within(SOON));
    // Everybody else is still served, and the bridge kept its own link.
    mosquitto_send(b.mqtt_port, "mqttv311", "id/x", "fine", &["-i", "fine"]);
    assert!(
        !b.log_text().contains("embedded broker link closed"),
        "{}",
        b.log_text()
    );
}

/// [MQTT-3.1.3-6]: a zero-byte client id (with Clean Session 1) gets an id of its own; two
/// such clients do not take each other over. 5 ([MQTT-3.1.3-7], [MQTT-3.2.2-16]): the CONNACK
/// carries the Assigned Client Identifier, unique.
#[test]
fn mqtt_3_1_3_6_an_empty_client_id_gets_a_unique_one() {
    let b = bridge();
    let (mut a, _) = Raw::accepted(b.mqtt_port, &Connect::new(false, ""));
    let (mut c, _) = Raw::accepted(b.mqtt_port, &Connect::new(false, ""));
    assert!(a.ping() && c.ping(), "one took the other over");

    let (_x, ack_x) = Raw::accepted(b.mqtt_port, &Connect::new(true, ""));
    let (_y, ack_y) = Raw::accepted(b.mqtt_port, &Connect::new(true, ""));
    let (x, y) = (
        ack_x.props.str(ASSIGNED_CLIENT_ID),
        ack_y.props.str(ASSIGNED_CLIENT_ID),
    );
    assert!(x.is_some() && y.is_some() && x != y, "{x:?} {y:?}");
}

/// [MQTT-3.1.3-8]: a zero-byte client id with Clean Session 0 gets CONNACK 0x02 and the
/// connection closes.
#[test]
fn mqtt_3_1_3_8_an_empty_client_id_without_clean_session_gets_connack_0x02() {
    let b = bridge();
    let (mut raw, ack) = Raw::connect(b.mqtt_port, &Connect::new(false, "").clean(false));
    assert_eq!(ack.code, 0x02);
    assert!(!ack.session_present);
    assert!(raw.closed_within(SOON));
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// A session with one subscription to `filter` at QoS 1, left by a connection that said
/// DISCONNECT.
fn leave_session(port: u16, connect: &Connect, filter: &str) {
    leave_session_at(port, connect, filter, 1);
}

fn leave_session_at(port: u16, connect: &Connect, filter: &str, qos: u8) {
    let (mut raw, _) = Raw::accepted(port, connect);
    assert_eq!(raw.subscribe(1, &[(filter, qos)], &[]), vec![qos]);
    raw.send(&disconnect(connect.v5, 0));
    assert!(raw.closed_within(SOON));
}

/// [MQTT-3.2.2-1] (5: [MQTT-3.2.2-2]): a connection with Clean Session (Clean Start) 1 gets
/// Session Present 0, even when a session was stored.
#[test]
fn mqtt_3_2_2_1_clean_session_gets_session_present_0() {
    let b = bridge();
    leave_session(
        b.mqtt_port,
        &Connect::new(false, "sp-c4").clean(false),
        "sp/c4",
    );
    let (_client, rx) = rumqttc_v4(b.mqtt_port, "sp-c4", |o| {
        o.set_clean_session(true);
    });
    let rumqttc::Packet::ConnAck(ack) = next_v4(&rx, |p| matches!(p, rumqttc::Packet::ConnAck(_)))
    else {
        unreachable!()
    };
    assert!(!ack.session_present);

    let kept = prop_u32(SESSION_EXPIRY, 60);
    leave_session(
        b.mqtt_port,
        &Connect::new(true, "sp-c5").clean(false).props(kept.clone()),
        "sp/c5",
    );
    let (_raw, ack) = Raw::accepted(b.mqtt_port, &Connect::new(true, "sp-c5").props(kept));
    assert!(!ack.session_present);
}

/// [MQTT-3.2.2-2] (5: [MQTT-3.2.2-3]): Clean Session (Start) 0 with a stored session gets
/// Session Present 1, and the session's subscriptions are there.
#[test]
fn mqtt_3_2_2_2_a_resumed_session_gets_session_present_1() {
    let b = bridge();
    leave_session(
        b.mqtt_port,
        &Connect::new(false, "sp-r4").clean(false),
        "sp/r4",
    );
    let (_client, rx) = rumqttc_v4(b.mqtt_port, "sp-r4", |o| {
        o.set_clean_session(false);
    });
    let rumqttc::Packet::ConnAck(ack) = next_v4(&rx, |p| matches!(p, rumqttc::Packet::ConnAck(_)))
    else {
        unreachable!()
    };
    assert!(ack.session_present);
    mosquitto_send(b.mqtt_port, "mqttv311", "sp/r4", "kept", &["-q", "1"]);
    let rumqttc::Packet::Publish(p) = next_v4(&rx, |p| matches!(p, rumqttc::Packet::Publish(_)))
    else {
        unreachable!()
    };
    assert_eq!(&p.payload[..], b"kept");

    let kept = Connect::new(true, "sp-r5")
        .clean(false)
        .props(prop_u32(SESSION_EXPIRY, 60));
    leave_session(b.mqtt_port, &kept, "sp/r5");
    let (mut raw, ack) = Raw::accepted(b.mqtt_port, &kept);
    assert!(ack.session_present);
    mosquitto_send(b.mqtt_port, "mqttv5", "sp/r5", "kept", &["-q", "1"]);
    assert_eq!(payloads(&raw.take(1)), ["kept"]);
}

/// [MQTT-3.2.2-3] (5: [MQTT-3.2.2-3]): Clean Session (Start) 0 without a stored session gets
/// Session Present 0.
#[test]
fn mqtt_3_2_2_3_no_stored_session_gets_session_present_0() {
    let b = bridge();
    both(|v5| {
        let connect = Connect::new(v5, if v5 { "fresh-5" } else { "fresh-4" })
            .clean(false)
            .props(if v5 {
                prop_u32(SESSION_EXPIRY, 60)
            } else {
                Vec::new()
            });
        let (_raw, ack) = Raw::accepted(b.mqtt_port, &connect);
        assert!(!ack.session_present, "v5={v5}");
    });
}

/// MQTT 5 [MQTT-3.1.2-23]: the session outlives its connection only with a Session Expiry
/// Interval above 0; absent means 0, "the Session ends when the Network Connection is closed".
/// rumqttd read Clean Start 0 as 3.1.1's Clean Session 0 and kept it for ever.
#[test]
fn mqtt5_3_1_2_23_session_expiry_0_ends_the_session_with_its_connection() {
    let b = bridge();
    let connect = Connect::new(true, "exp0").clean(false);
    leave_session(b.mqtt_port, &connect, "exp0/x");
    let (mut raw, ack) = Raw::accepted(b.mqtt_port, &connect);
    assert!(!ack.session_present, "the session outlived its connection");
    mosquitto_send(b.mqtt_port, "mqttv5", "exp0/x", "gone", &["-q", "1"]);
    assert!(raw.publications(QUIET).is_empty(), "its subscription too");
}

/// MQTT 5 [MQTT-3.1.2-4]: Clean Start 1 discards an existing session and starts a new one, and
/// that new session, with a Session Expiry Interval, is kept after its connection
/// [MQTT-3.1.2-23]. rumqttd kept no Clean Start 1 session past its connection.
#[test]
fn mqtt5_3_1_2_4_clean_start_drops_the_old_session_and_keeps_the_new_one() {
    let b = bridge();
    let expiry = prop_u32(SESSION_EXPIRY, 60);
    leave_session(
        b.mqtt_port,
        &Connect::new(true, "cs1").clean(false).props(expiry.clone()),
        "cs1/old",
    );
    leave_session(
        b.mqtt_port,
        &Connect::new(true, "cs1").clean(true).props(expiry.clone()),
        "cs1/new",
    );
    let (mut raw, ack) = Raw::accepted(
        b.mqtt_port,
        &Connect::new(true, "cs1").clean(false).props(expiry),
    );
    assert!(
        ack.session_present,
        "the Clean Start 1 session was not kept"
    );
    mosquitto_send(b.mqtt_port, "mqttv5", "cs1/old", "old", &["-q", "1"]);
    mosquitto_send(b.mqtt_port, "mqttv5", "cs1/new", "new", &["-q", "1"]);
    assert_eq!(payloads(&raw.take(1)), ["new"]);
}

/// MQTT 5 [MQTT-4.1.0-2]: the Server discards the session state once the connection is closed
/// and the Session Expiry Interval has passed. rumqttd never did.
#[test]
fn mqtt5_4_1_0_2_an_expired_session_is_discarded() {
    let b = bridge();
    let connect = Connect::new(true, "exp1")
        .clean(false)
        .props(prop_u32(SESSION_EXPIRY, 1));
    leave_session(b.mqtt_port, &connect, "exp1/x");
    std::thread::sleep(Duration::from_millis(2200));
    let (_raw, ack) = Raw::accepted(b.mqtt_port, &connect);
    assert!(!ack.session_present, "kept past its expiry");
}

// ---------------------------------------------------------------------------------------------
// Wills

/// A raw subscriber to `filter`, its SUBACK received.
fn watcher(port: u16, v5: bool, filter: &str, qos: u8) -> Raw {
    static N: AtomicUsize = AtomicUsize::new(0);
    let id = format!("watch-{}", N.fetch_add(1, Relaxed));
    let (mut raw, _) = Raw::accepted(port, &Connect::new(v5, &id));
    assert_eq!(raw.subscribe(1, &[(filter, qos)], &[]), vec![qos]);
    raw
}

/// [MQTT-3.1.2-8] (3.1.1 and 5): the Will Message is published when the connection closes
/// without a DISCONNECT.
#[test]
fn mqtt_3_1_2_8_the_will_is_published_when_the_connection_closes_without_disconnect() {
    let b = bridge();
    let mut watch = watcher(b.mqtt_port, false, "will/#", 0);
    for v5 in [false, true] {
        let topic = format!("will/{v5}");
        let (raw, _) = Raw::accepted(
            b.mqtt_port,
            &Connect::new(v5, &format!("will-{v5}")).will(&topic, b"gone", 0, false),
        );
        drop(raw);
        let got = watch.take(1);
        assert_eq!(
            got.iter().map(|p| p.topic.as_str()).collect::<Vec<_>>(),
            [topic.as_str()]
        );
    }
}

/// [MQTT-3.1.2-10], [MQTT-3.14.4-3] (5: [MQTT-3.14.4-3]): a DISCONNECT removes the Will
/// Message; it is not published.
#[test]
fn mqtt_3_1_2_10_a_disconnect_removes_the_will() {
    let b = bridge();
    let mut watch = watcher(b.mqtt_port, false, "quiet/#", 0);
    both(|v5| {
        let (mut raw, _) = Raw::accepted(
            b.mqtt_port,
            &Connect::new(v5, &format!("quiet-{v5}")).will("quiet/will", b"no", 0, false),
        );
        raw.send(&disconnect(v5, 0));
        assert!(raw.closed_within(SOON));
    });
    // A will that must come shows the watcher would have seen one.
    let (raw, _) = Raw::accepted(
        b.mqtt_port,
        &Connect::new(false, "loud").will("quiet/control", b"yes", 0, false),
    );
    drop(raw);
    let got = watch.take(1);
    assert_eq!(payloads(&got), ["yes"], "{got:?}");
}

/// [MQTT-3.1.2-8]: the Will Message is "associated with the Network Connection". A connection
/// taken over by a new one with the same client id is closed without DISCONNECT, so its will is
/// published; the new connection keeps its own will until it closes. rumqttd kept wills by
/// client id: the takeover published the new connection's will at once and left it without one.
#[test]
fn mqtt_3_1_2_8_a_will_belongs_to_the_connection_that_set_it() {
    let b = bridge();
    both(|v5| {
        let topic = format!("own/{v5}");
        let mut watch = watcher(b.mqtt_port, v5, &topic, 0);
        let id = format!("same-{v5}");
        let (_first, _) = Raw::accepted(
            b.mqtt_port,
            &Connect::new(v5, &id).will(&topic, b"first", 0, false),
        );
        let (second, _) = Raw::accepted(
            b.mqtt_port,
            &Connect::new(v5, &id).will(&topic, b"second", 0, false),
        );
        assert_eq!(
            payloads(&watch.take(1)),
            ["first"],
            "v5={v5}: at the takeover"
        );
        drop(second);
        assert_eq!(
            payloads(&watch.take(1)),
            ["second"],
            "v5={v5}: when the second closed"
        );
    });
}

/// [MQTT-3.1.2-17] (5: [MQTT-3.1.2-15]): a will with Will Retain 1 is published as a retained
/// message.
#[test]
fn mqtt_3_1_2_17_a_retained_will_is_published_retained() {
    let b = bridge();
    both(|v5| {
        let topic = format!("rw/{v5}");
        let (raw, _) = Raw::accepted(
            b.mqtt_port,
            &Connect::new(v5, &format!("rw-{v5}")).will(&topic, b"bye", 1, true),
        );
        drop(raw);
        std::thread::sleep(Duration::from_millis(300));
        let mut later = watcher(b.mqtt_port, v5, &topic, 1);
        let got = later.take(1);
        assert_eq!(payloads(&got), ["bye"], "v5={v5}");
        assert!(got[0].retain, "v5={v5}: not retained");
    });
}

/// MQTT 5 §3.14.2.1: DISCONNECT with reason 0x04 ("Disconnect with Will Message") closes the
/// connection and the Will Message is published all the same ([MQTT-3.1.2-8] deletes it only
/// on reason 0x00). rumqttd deleted it on every DISCONNECT.
#[test]
fn mqtt5_3_14_2_1_disconnect_with_will_message_publishes_the_will() {
    let b = bridge();
    let mut watch = watcher(b.mqtt_port, true, "w4/#", 0);
    let (mut raw, _) = Raw::accepted(
        b.mqtt_port,
        &Connect::new(true, "w4").will("w4/x", b"asked for", 0, false),
    );
    raw.send(&disconnect(true, 0x04));
    assert!(raw.closed_within(SOON));
    assert_eq!(payloads(&watch.take(1)), ["asked for"]);
}

/// MQTT 5 [MQTT-3.1.3-9] and [MQTT-3.1.2-8]: the will waits for its Will Delay Interval, and a
/// new connection to the session within it means the will is not sent.
#[test]
fn mqtt5_3_1_3_9_a_will_delay_waits_and_a_reconnect_within_it_cancels_the_will() {
    let b = bridge();
    let mut watch = watcher(b.mqtt_port, true, "wd/#", 0);
    let session = prop_u32(SESSION_EXPIRY, 30);
    let delayed = |id: &str, delay: u32| {
        Connect::new(true, id)
            .clean(false)
            .props(session.clone())
            .will(&format!("wd/{id}"), id.as_bytes(), 0, false)
            .will_props(prop_u32(WILL_DELAY, delay))
    };
    let (waits, _) = Raw::accepted(b.mqtt_port, &delayed("waits", 1));
    let (back, _) = Raw::accepted(b.mqtt_port, &delayed("back", 2));
    let closed = Instant::now();
    drop(waits);
    drop(back);
    let (_back, ack) = Raw::accepted(b.mqtt_port, &delayed("back", 2));
    assert!(ack.session_present);

    let first = watch.publications(Duration::from_millis(700));
    assert!(first.is_empty(), "a will before its delay: {first:?}");
    let got = watch.take(1);
    assert_eq!(payloads(&got), ["waits"], "after {:?}", closed.elapsed());
    // Past the other will's delay, with some to spare.
    let late = watch.publications(Duration::from_millis(2800).saturating_sub(closed.elapsed()));
    assert!(late.is_empty(), "a will despite the reconnect: {late:?}");
}

// ---------------------------------------------------------------------------------------------
// MQTT 5 properties and topic aliases

/// MQTT 5 [MQTT-3.2.2-17/18], §3.3.4: the Server takes no topic aliases (Topic Alias Maximum 0
/// in CONNACK: the gate checks every topic against the ACL and hands it to the mesh, which an
/// alias would hide), and a PUBLISH with one is answered with DISCONNECT 0x94. rumqttd offered
/// 4096 aliases, whose topics the gate could not see.
#[test]
fn mqtt5_3_2_2_18_topic_alias_maximum_0_and_an_alias_is_refused() {
    let b = bridge();
    let mesh = MeshWatch::start(&b, &format!("swarm/{SWARM}/**"));
    let mut watch = watcher(b.mqtt_port, true, "swarm/#", 0);
    let (mut raw, ack) = Raw::accepted(b.mqtt_port, &Connect::new(true, "alias"));
    assert_eq!(ack.props.int(TOPIC_ALIAS_MAXIMUM).unwrap_or(0), 0);
    let topic = format!("swarm/{SWARM}/node/alias-1/energy");
    let alias = prop_u16(TOPIC_ALIAS, 1);
    raw.send(&publish(
        true,
        &topic,
        &energy(1),
        0,
        false,
        false,
        0,
        &alias,
    ));
    match raw.drain(SOON) {
        Err(got) => assert!(
            got.iter()
                .any(|p| p.kind() == DISCONNECT && p.body.first() == Some(&0x94)),
            "closed without DISCONNECT 0x94: {got:?}"
        ),
        Ok(got) => panic!("still open after {got:?}"),
    }
    assert!(watch.publications(QUIET).is_empty(), "delivered over MQTT");
    assert!(mesh.samples(GRACE).is_empty(), "carried into the mesh");
}

/// MQTT 5 [MQTT-3.1.2-26] and [MQTT-3.3.2-3]: the Server's topic aliases stay within the
/// client's Topic Alias Maximum, and every PUBLISH, alias resolved, names its own topic.
/// rumqttd kept one alias per subscription filter: under a wildcard filter every later message
/// came as an alias of the first topic.
#[test]
fn mqtt5_3_3_2_3_4_a_server_topic_alias_stands_for_one_topic() {
    let b = bridge();
    let (mut sub, _) = Raw::accepted(
        b.mqtt_port,
        &Connect::new(true, "aliased").props(prop_u16(TOPIC_ALIAS_MAXIMUM, 4)),
    );
    assert_eq!(
        sub.subscribe(1, &[("ta/#", 0), ("tx/1", 0)], &[]),
        vec![0, 0]
    );
    let sent = ["ta/1", "ta/2", "ta/1", "tx/1", "tx/1", "ta/3"];
    for topic in sent {
        mosquitto_send(b.mqtt_port, "mqttv5", topic, topic, &[]);
    }
    let got = sub.take(6);
    let mut aliases = std::collections::HashMap::new();
    let mut resolved = Vec::new();
    for p in &got {
        let topic = match p.props.int(TOPIC_ALIAS) {
            Some(alias) => {
                assert!((1..=4).contains(&alias), "alias {alias} beyond 4");
                if !p.topic.is_empty() {
                    aliases.insert(alias, p.topic.clone());
                }
                aliases.get(&alias).cloned().expect("an alias never set")
            }
            None => p.topic.clone(),
        };
        assert_eq!(topic.as_bytes(), &p.payload[..], "{got:?}");
        resolved.push(topic);
    }
    assert_eq!(resolved, sent);
}

/// MQTT 5 [MQTT-3.3.2-4], [MQTT-3.3.2-15], [MQTT-3.3.2-16], [MQTT-3.3.2-17], [MQTT-3.3.2-18],
/// [MQTT-3.3.2-20]: Payload Format Indicator, Response Topic, Correlation Data, User Properties
/// (in their order) and Content Type reach the subscriber unaltered.
#[test]
fn mqtt5_3_3_2_4_message_properties_reach_subscribers_unaltered() {
    let b = bridge();
    let mut sub = watcher(b.mqtt_port, true, "props/x", 0);
    let (mut publisher, _) = Raw::accepted(b.mqtt_port, &Connect::new(true, "props"));
    let props: Vec<u8> = [
        prop_u8(PAYLOAD_FORMAT, 1),
        prop_str(CONTENT_TYPE, b"text/plain"),
        prop_str(RESPONSE_TOPIC, b"props/reply"),
        prop_str(CORRELATION_DATA, &[0, 1, 2, 255]),
        prop_pair(USER_PROPERTY, "b", "2"),
        prop_pair(USER_PROPERTY, "a", "1"),
        prop_pair(USER_PROPERTY, "b", "3"),
    ]
    .concat();
    publisher.publish("props/x", b"text", 1, false, &props);
    let got = sub.take(1);
    assert_eq!(got.len(), 1, "{got:?}");
    // Only the user properties' order is the publisher's; the others' order is free.
    let split = |props: &Props| {
        let (user, mut other): (Vec<_>, Vec<_>) = props
            .0
            .iter()
            .filter(|(id, _)| *id != MESSAGE_EXPIRY && *id != SUBSCRIPTION_ID)
            .cloned()
            .partition(|(id, _)| *id == USER_PROPERTY);
        other.sort_by_key(|(id, _)| *id);
        (user, other)
    };
    assert_eq!(
        split(&got[0].props),
        split(&Props::parse(&properties(&props)).0)
    );
}

/// MQTT 5 [MQTT-3.3.2-5], [MQTT-3.3.2-6]: a message whose Message Expiry Interval has passed
/// is not delivered, and one delivered carries what is left of its interval. rumqttd took the
/// time waited off a retained message's stored interval on every read, so it shrank too fast.
#[test]
fn mqtt5_3_3_2_5_expired_messages_are_dropped_and_intervals_count_down() {
    let b = bridge();
    let (mut publisher, _) = Raw::accepted(b.mqtt_port, &Connect::new(true, "exp-pub"));
    publisher.publish("me/short", b"short", 1, true, &prop_u32(MESSAGE_EXPIRY, 1));
    publisher.publish("me/long", b"long", 1, true, &prop_u32(MESSAGE_EXPIRY, 100));
    let start = Instant::now();
    let left_at = |at: Duration| {
        std::thread::sleep(at.saturating_sub(start.elapsed()));
        let mut sub = watcher(b.mqtt_port, true, "me/#", 0);
        let got = sub.take(1);
        assert_eq!(payloads(&got), ["long"], "{got:?}");
        got[0]
            .props
            .int(MESSAGE_EXPIRY)
            .expect("an expiry interval")
    };
    let first = left_at(Duration::from_millis(2200));
    assert!((97..=98).contains(&first), "{first} left after 2.2 s");
    let second = left_at(Duration::from_millis(4300));
    assert!((95..=96).contains(&second), "{second} left after 4.3 s");
}

/// MQTT 5 [MQTT-3.3.4-3], [MQTT-3.3.4-5]: with overlapping subscriptions the messages carry the
/// Subscription Identifiers of the subscriptions they match: each copy its own.
#[test]
fn mqtt5_3_3_4_3_copies_carry_the_subscription_identifiers_they_match() {
    let b = bridge();
    let (mut sub, _) = Raw::accepted(b.mqtt_port, &Connect::new(true, "subid"));
    assert_eq!(
        sub.subscribe(1, &[("si/#", 0)], &prop_varint(SUBSCRIPTION_ID, 7)),
        [0]
    );
    assert_eq!(
        sub.subscribe(2, &[("si/x", 0)], &prop_varint(SUBSCRIPTION_ID, 9)),
        [0]
    );
    mosquitto_send(b.mqtt_port, "mqttv5", "si/x", "both", &[]);
    mosquitto_send(b.mqtt_port, "mqttv5", "si/y", "one", &[]);
    let got = sub.take(3);
    let mut ids: Vec<(String, Vec<u32>)> = got
        .iter()
        .map(|p| (p.topic.clone(), p.props.ints(SUBSCRIPTION_ID)))
        .collect();
    ids.sort();
    let mut x: Vec<u32> = ids
        .iter()
        .filter(|(t, _)| t == "si/x")
        .flat_map(|(_, i)| i.clone())
        .collect();
    x.sort();
    assert_eq!(x, [7, 9], "{ids:?}");
    assert!(ids.contains(&("si/y".into(), vec![7])), "{ids:?}");
}

/// MQTT 5 [MQTT-3.8.3-3]: with No Local, a client's own messages are not sent back to it.
/// rumqttd ignored the option.
#[test]
fn mqtt5_3_8_3_3_no_local_keeps_a_clients_own_messages_from_it() {
    let b = bridge();
    let (mut raw, _) = Raw::accepted(b.mqtt_port, &Connect::new(true, "nolocal"));
    assert_eq!(raw.subscribe(1, &[("nl/x", 0x04)], &[]), [0]);
    raw.publish("nl/x", b"mine", 0, false, &[]);
    mosquitto_send(b.mqtt_port, "mqttv5", "nl/x", "theirs", &[]);
    assert_eq!(payloads(&raw.take(1)), ["theirs"]);
}

/// MQTT 5 [MQTT-3.3.1-12], [MQTT-3.3.1-13]: forwarded messages have RETAIN 0, unless the
/// subscription asked for Retain As Published: then RETAIN as the publisher set it. rumqttd
/// always sent 0.
#[test]
fn mqtt5_3_3_1_13_retain_as_published_keeps_the_retain_flag() {
    let b = bridge();
    let (mut plain, _) = Raw::accepted(b.mqtt_port, &Connect::new(true, "rap0"));
    let (mut kept, _) = Raw::accepted(b.mqtt_port, &Connect::new(true, "rap1"));
    assert_eq!(plain.subscribe(1, &[("rap/x", 0)], &[]), [0]);
    assert_eq!(kept.subscribe(1, &[("rap/x", 0x08)], &[]), [0]);
    mosquitto_send(b.mqtt_port, "mqttv5", "rap/x", "r", &["-r"]);
    mosquitto_send(b.mqtt_port, "mqttv5", "rap/x", "n", &[]);
    let flags = |raw: &mut Raw| {
        raw.take(2)
            .iter()
            .map(|p| (String::from_utf8_lossy(&p.payload).into_owned(), p.retain))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        flags(&mut plain),
        [("r".into(), false), ("n".into(), false)]
    );
    assert_eq!(flags(&mut kept), [("r".into(), true), ("n".into(), false)]);
}

/// MQTT 5 [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11], [MQTT-3.8.4-4]: Retain Handling 0
/// sends the retained messages on every SUBSCRIBE, 1 only when the subscription is new, 2
/// never. rumqttd sent them for new subscriptions only, whatever the option.
#[test]
fn mqtt5_3_3_1_11_retain_handling_decides_when_retained_messages_are_sent() {
    let b = bridge();
    mosquitto_send(b.mqtt_port, "mqttv5", "rh/x", "kept", &["-r", "-q", "1"]);
    let (mut raw, _) = Raw::accepted(b.mqtt_port, &Connect::new(true, "rh"));
    let mut got = |filter: &str, handling: u8, expected: usize| {
        let options = handling << 4;
        assert_eq!(raw.subscribe(1, &[(filter, options)], &[]), [0]);
        match expected {
            0 => payloads(&raw.publications(QUIET)),
            n => payloads(&raw.take(n)),
        }
    };
    assert!(got("rh/x", 2, 0).is_empty(), "handling 2, new subscription");
    assert!(
        got("rh/+", 1, 1) == ["kept"],
        "handling 1, new subscription"
    );
    assert!(
        got("rh/+", 1, 0).is_empty(),
        "handling 1, existing subscription"
    );
    assert!(
        got("rh/#", 0, 1) == ["kept"],
        "handling 0, new subscription"
    );
    assert!(
        got("rh/#", 0, 1) == ["kept"],
        "handling 0, existing subscription"
    );
}

/// MQTT 5 [MQTT-3.3.4-9]: the Server sends no more unacknowledged QoS 1 and 2 messages than the
/// client's Receive Maximum. rumqttd sent up to 100.
#[test]
fn mqtt5_3_3_4_9_receive_maximum_bounds_unacknowledged_messages() {
    let b = bridge();
    let (mut sub, _) = Raw::accepted(
        b.mqtt_port,
        &Connect::new(true, "recvmax").props(prop_u16(RECEIVE_MAXIMUM, 2)),
    );
    assert_eq!(sub.subscribe(1, &[("rm/x", 1)], &[]), [1]);
    let (mut publisher, _) = Raw::accepted(b.mqtt_port, &Connect::new(true, "rm-pub"));
    for n in 0..5u8 {
        publisher.publish("rm/x", &[b'0' + n], 1, false, &[]);
    }
    let first = sub.held(2);
    assert_eq!(payloads(&first), ["0", "1"], "beyond Receive Maximum 2");
    sub.send(&ack(PUBACK, first[0].pkid));
    let next = sub.held(1);
    assert_eq!(payloads(&next), ["2"]);
    sub.send(&ack(PUBACK, first[1].pkid));
    sub.send(&ack(PUBACK, next[0].pkid));
    assert_eq!(payloads(&sub.take(2)), ["3", "4"]);
}

// ---------------------------------------------------------------------------------------------
// Retained messages

/// [MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-7], [MQTT-3.3.1-8] (5: [MQTT-3.3.1-5],
/// [MQTT-3.3.1-9]): a new subscription gets the last retained message of each matching topic,
/// with RETAIN 1.
#[test]
fn mqtt_3_3_1_6_a_new_subscription_gets_the_last_retained_message() {
    let b = bridge();
    both(|v5| {
        let version = if v5 { "mqttv5" } else { "mqttv311" };
        let topic = format!("rt/{v5}");
        mosquitto_send(b.mqtt_port, version, &topic, "one", &["-r", "-q", "1"]);
        mosquitto_send(b.mqtt_port, version, &topic, "two", &["-r", "-q", "1"]);
        // Retain flag, then payload.
        let got = mosquitto_sub(b.mqtt_port, version, &topic, 1, "%r %p");
        assert_eq!(got, "1 two\n", "v5={v5}");
    });
}

/// [MQTT-3.3.1-9] (5: [MQTT-3.3.1-12]): a message sent to an established subscription has
/// RETAIN 0, however it was published.
#[test]
fn mqtt_3_3_1_9_an_established_subscription_gets_retain_0() {
    let b = bridge();
    both(|v5| {
        let version = if v5 { "mqttv5" } else { "mqttv311" };
        let topic = format!("re/{v5}");
        let mut sub = watcher(b.mqtt_port, v5, &topic, 0);
        mosquitto_send(b.mqtt_port, version, &topic, "live", &["-r"]);
        let got = sub.take(1);
        assert_eq!(payloads(&got), ["live"], "v5={v5}");
        assert!(!got[0].retain, "v5={v5}");
    });
}

/// [MQTT-3.3.1-10], [MQTT-3.3.1-11] (5: [MQTT-3.3.1-6], [MQTT-3.3.1-7]): an empty retained
/// message is delivered as usual and clears the topic's retained message; it is not stored.
#[test]
fn mqtt_3_3_1_10_an_empty_retained_message_clears_the_topic() {
    let b = bridge();
    both(|v5| {
        let version = if v5 { "mqttv5" } else { "mqttv311" };
        let topic = format!("rc/{v5}");
        mosquitto_send(b.mqtt_port, version, &topic, "x", &["-r", "-q", "1"]);
        let mut sub = watcher(b.mqtt_port, v5, &topic, 0);
        assert_eq!(payloads(&sub.take(1)), ["x"]);
        mosquitto_send(b.mqtt_port, version, &topic, "", &["-r", "-q", "1"]);
        assert_eq!(payloads(&sub.take(1)), [""], "v5={v5}");
        let mut later = watcher(b.mqtt_port, v5, &topic, 0);
        assert!(later.publications(QUIET).is_empty(), "v5={v5}");
    });
}

/// [MQTT-3.3.1-12] (5: [MQTT-3.3.1-8]): a message without RETAIN neither replaces nor removes the
/// retained one. rumqttd removed it on any empty message.
#[test]
fn mqtt_3_3_1_12_a_message_without_retain_leaves_the_retained_one_alone() {
    let b = bridge();
    both(|v5| {
        let version = if v5 { "mqttv5" } else { "mqttv311" };
        let topic = format!("rk/{v5}");
        mosquitto_send(b.mqtt_port, version, &topic, "keep", &["-r", "-q", "1"]);
        mosquitto_send(b.mqtt_port, version, &topic, "", &["-q", "1"]);
        mosquitto_send(b.mqtt_port, version, &topic, "other", &["-q", "1"]);
        let mut sub = watcher(b.mqtt_port, v5, &topic, 0);
        assert_eq!(payloads(&sub.take(1)), ["keep"], "v5={v5}");
    });
}

/// [MQTT-3.8.4-3] (5: [MQTT-3.8.4-3], [MQTT-3.8.4-4]): a SUBSCRIBE to a filter already
/// subscribed replaces the subscription, at the new QoS, and the retained messages are sent
/// again. rumqttd kept the old subscription (at the old QoS, while SUBACK granted the new one)
/// and sent nothing.
#[test]
fn mqtt_3_8_4_3_a_repeated_subscribe_replaces_the_subscription_and_resends_retained() {
    let b = bridge();
    both(|v5| {
        let version = if v5 { "mqttv5" } else { "mqttv311" };
        let topic = format!("rs/{v5}");
        mosquitto_send(b.mqtt_port, version, &topic, "kept", &["-r", "-q", "1"]);
        let mut sub = watcher(b.mqtt_port, v5, &topic, 0);
        assert_eq!(payloads(&sub.take(1)), ["kept"]);
        assert_eq!(sub.subscribe(2, &[(&topic, 1)], &[]), [1]);
        let again = sub.take(1);
        assert_eq!(payloads(&again), ["kept"], "v5={v5}: not resent");
        assert!(again[0].retain);
        mosquitto_send(b.mqtt_port, version, &topic, "live", &["-q", "1"]);
        let live = sub.take(1);
        assert_eq!(payloads(&live), ["live"]);
        assert_eq!(live[0].qos, 1, "v5={v5}: still at the old QoS");
    });
}

// ---------------------------------------------------------------------------------------------
// QoS

/// [MQTT-3.8.4-6] (5: [MQTT-3.8.4-8]): a message goes to a subscriber at the lower of the QoS it
/// was published with and the QoS granted. rumqttd sent every message at the granted QoS.
#[test]
fn mqtt_3_8_4_6_messages_go_at_the_lower_of_published_and_granted_qos() {
    let b = bridge();
    both(|v5| {
        let topic = format!("minq/{v5}");
        let mut sub = watcher(b.mqtt_port, v5, &topic, 2);
        for qos in ["0", "1", "2"] {
            mosquitto_send(b.mqtt_port, "mqttv311", &topic, qos, &["-q", qos]);
        }
        let got = sub.take(3);
        let qos: Vec<(String, u8)> = got
            .iter()
            .map(|p| (String::from_utf8_lossy(&p.payload).into_owned(), p.qos))
            .collect();
        assert_eq!(
            qos,
            [("0".into(), 0), ("1".into(), 1), ("2".into(), 2)],
            "v5={v5}"
        );
    });
}

/// [MQTT-3.3.1-3] (5: the same): the DUP flag of a PUBLISH the Server sends depends only on
/// whether that PUBLISH is sent again; the publisher's DUP is not passed on. rumqttd passed it.
#[test]
fn mqtt_3_3_1_3_the_publishers_dup_flag_is_not_passed_on() {
    let b = bridge();
    both(|v5| {
        let topic = format!("dup/{v5}");
        let mut sub = watcher(b.mqtt_port, v5, &topic, 1);
        let (mut publisher, _) =
            Raw::accepted(b.mqtt_port, &Connect::new(v5, &format!("dup-{v5}")));
        publisher.send(&publish(v5, &topic, b"again", 1, false, true, 3, &[]));
        publisher.expect(PUBACK, SOON);
        let got = sub.take(1);
        assert_eq!(payloads(&got), ["again"]);
        assert!(!got[0].dup, "v5={v5}: DUP passed on");
    });
}

// ---------------------------------------------------------------------------------------------
// QoS 1 and 2 across reconnects

/// [MQTT-3.1.2-5] (5: [MQTT-3.1.2-23], [MQTT-4.5.0-1]): while a persistent session's client is
/// away, the QoS 1 and 2 messages for its subscriptions are kept and delivered when it is back.
#[test]
fn mqtt_3_1_2_5_a_persistent_session_keeps_qos1_and_qos2_messages_while_away() {
    let b = bridge();
    leave_session_at(
        b.mqtt_port,
        &Connect::new(false, "away").clean(false),
        "away/#",
        2,
    );
    mosquitto_send(b.mqtt_port, "mqttv311", "away/1", "one", &["-q", "1"]);
    mosquitto_send(b.mqtt_port, "mqttv311", "away/2", "two", &["-q", "2"]);
    let (_client, rx) = rumqttc_v4(b.mqtt_port, "away", |o| {
        o.set_clean_session(false);
    });
    let mut got = Vec::new();
    while got.len() < 2 {
        if let rumqttc::Packet::Publish(p) =
            next_v4(&rx, |p| matches!(p, rumqttc::Packet::Publish(_)))
        {
            got.push(String::from_utf8_lossy(&p.payload).into_owned());
        }
    }
    // At which QoS is for [MQTT-3.8.4-6] below.
    assert_eq!(got, ["one", "two"]);
}

/// [MQTT-4.4.0-1], [MQTT-3.3.1-1] (5: the same): on reconnecting to the session the Server sends
/// the unacknowledged QoS 1 and 2 PUBLISH packets again, with their original Packet Identifiers
/// and DUP 1, and nothing that was acknowledged. rumqttd sent them as new messages: new ids,
/// DUP 0.
#[test]
fn mqtt_4_4_0_1_unacknowledged_publishes_are_sent_again_with_their_ids_and_dup() {
    let b = bridge();
    both(|v5| {
        let topic = format!("again/{v5}");
        let connect = Connect::new(v5, &format!("again-{v5}"))
            .clean(false)
            .props(if v5 {
                prop_u32(SESSION_EXPIRY, 60)
            } else {
                Vec::new()
            });
        let (mut sub, _) = Raw::accepted(b.mqtt_port, &connect);
        assert_eq!(sub.subscribe(1, &[(&topic, 2)], &[]), [2]);
        // Something acknowledged first, so the ids in question are not the first ones.
        mosquitto_send(b.mqtt_port, "mqttv311", &topic, "acked", &["-q", "1"]);
        assert_eq!(payloads(&sub.take(1)), ["acked"]);
        mosquitto_send(b.mqtt_port, "mqttv311", &topic, "q1", &["-q", "1"]);
        mosquitto_send(b.mqtt_port, "mqttv311", &topic, "q2", &["-q", "2"]);
        let held = sub.held(2);
        assert_eq!(payloads(&held), ["q1", "q2"], "v5={v5}");
        drop(sub);

        let (mut sub, ack) = Raw::accepted(b.mqtt_port, &connect);
        assert!(ack.session_present);
        let again = sub.held(2);
        let seen = |ps: &[Pub]| {
            ps.iter()
                .map(|p| {
                    (
                        String::from_utf8_lossy(&p.payload).into_owned(),
                        p.pkid,
                        p.dup,
                    )
                })
                .collect::<Vec<_>>()
        };
        let expected: Vec<_> = held
            .iter()
            .map(|p| {
                (
                    String::from_utf8_lossy(&p.payload).into_owned(),
                    p.pkid,
                    true,
                )
            })
            .collect();
        assert_eq!(seen(&again), expected, "v5={v5}");
    });
}

/// [MQTT-4.3.3-2] (5: [MQTT-4.3.3-10]): a QoS 2 PUBLISH received again before its PUBREL is
/// answered with PUBREC and not delivered twice. rumqttd queued the copy and a later PUBREL
/// delivered it in place of the message it released.
#[test]
fn mqtt_4_3_3_2_a_qos2_publish_sent_again_before_pubrel_is_delivered_once() {
    let b = bridge();
    let mesh = MeshWatch::start(&b, &format!("swarm/{SWARM}/node/*/energy"));
    for v5 in [false, true] {
        // A board's energy: MQTT subscribers and the mesh are both onward recipients.
        let topic = format!("swarm/{SWARM}/node/q2-{v5}/energy");
        let mut sub = watcher(b.mqtt_port, v5, &topic, 2);
        let connect = Connect::new(v5, &format!("q2-{v5}"));
        let (mut publisher, _) = Raw::accepted(b.mqtt_port, &connect);
        let (a, c) = (energy(1), energy(2));
        publisher.send(&publish(v5, &topic, &a, 2, false, false, 1, &[]));
        publisher.expect(PUBREC, SOON);
        publisher.send(&publish(v5, &topic, &a, 2, false, true, 1, &[]));
        publisher.expect(PUBREC, SOON);
        publisher.send(&ack(PUBREL, 1));
        publisher.expect(PUBCOMP, SOON);
        // The packet id, released, is a new message's.
        publisher.send(&publish(v5, &topic, &c, 2, false, false, 1, &[]));
        publisher.expect(PUBREC, SOON);
        publisher.send(&ack(PUBREL, 1));
        publisher.expect(PUBCOMP, SOON);
        let got: Vec<Vec<u8>> = sub.take(2).into_iter().map(|p| p.payload).collect();
        assert_eq!(got, [a.clone(), c.clone()], "v5={v5}: over MQTT");
        assert_eq!(mesh.samples(QUIET), [a, c], "v5={v5}: into the mesh");
    }
}

/// [MQTT-4.4.0-1], [MQTT-4.3.3-2] (5: [MQTT-4.4.0-1], [MQTT-4.3.3-11]): a client that reconnects
/// to its session sends its unacknowledged PUBREL again; the Server answers with PUBCOMP, and the
/// message is delivered once. rumqttd lost the message with the connection and closed the client
/// on the PUBREL, on every reconnect.
#[test]
fn mqtt_4_4_0_1_a_pubrel_sent_again_after_reconnect_completes_the_qos2_message() {
    let b = bridge();
    both(|v5| {
        let topic = format!("rel/{v5}");
        let mut sub = watcher(b.mqtt_port, v5, &topic, 2);
        let connect = Connect::new(v5, &format!("rel-{v5}"))
            .clean(false)
            .props(if v5 {
                prop_u32(SESSION_EXPIRY, 60)
            } else {
                Vec::new()
            });
        let (mut publisher, _) = Raw::accepted(b.mqtt_port, &connect);
        publisher.send(&publish(v5, &topic, b"once", 2, false, false, 5, &[]));
        publisher.expect(PUBREC, SOON);
        drop(publisher);

        let (mut publisher, connack) = Raw::accepted(b.mqtt_port, &connect);
        assert!(connack.session_present);
        publisher.send(&ack(PUBREL, 5));
        let comp = publisher.expect(PUBCOMP, SOON);
        assert_eq!(comp.body[..2], 5u16.to_be_bytes());
        // Its PUBCOMP lost, a client may send the PUBREL once more: answered, not delivered.
        publisher.send(&ack(PUBREL, 5));
        publisher.expect(PUBCOMP, SOON);
        assert!(publisher.ping());
        assert_eq!(payloads(&sub.take(1)), ["once"], "v5={v5}");
    });
}

/// [MQTT-4.4.0-1] (5: the same): the Server sends its unacknowledged PUBREL again, with its
/// Packet Identifier, when the client reconnects to its session.
#[test]
fn mqtt_4_4_0_1_an_unacknowledged_pubrel_is_sent_again_after_reconnect() {
    let b = bridge();
    both(|v5| {
        let topic = format!("pr/{v5}");
        let connect = Connect::new(v5, &format!("pr-{v5}"))
            .clean(false)
            .props(if v5 {
                prop_u32(SESSION_EXPIRY, 60)
            } else {
                Vec::new()
            });
        let (mut sub, _) = Raw::accepted(b.mqtt_port, &connect);
        assert_eq!(sub.subscribe(1, &[(&topic, 2)], &[]), [2]);
        mosquitto_send(b.mqtt_port, "mqttv311", &topic, "x", &["-q", "2"]);
        let p = Pub::parse(&sub.expect(PUBLISH, SOON), v5);
        sub.send(&ack(PUBREC, p.pkid));
        let rel = sub.expect(PUBREL, SOON);
        assert_eq!(rel.body[..2], p.pkid.to_be_bytes());
        drop(sub);

        let (mut sub, ack) = Raw::accepted(b.mqtt_port, &connect);
        assert!(ack.session_present);
        let rel = sub.expect(PUBREL, SOON);
        assert_eq!(rel.body[..2], p.pkid.to_be_bytes(), "v5={v5}");
    });
}

// ---------------------------------------------------------------------------------------------
// Overlapping subscriptions

/// [MQTT-3.3.5-1] (5: [MQTT-3.3.4-2]): a message matching several of a client's subscriptions
/// is delivered respecting the highest QoS among them (further copies, one per subscription,
/// are allowed).
#[test]
fn mqtt_3_3_5_1_overlapping_subscriptions_deliver_at_the_highest_qos() {
    let b = bridge();
    both(|v5| {
        let (mut sub, _) = Raw::accepted(b.mqtt_port, &Connect::new(v5, &format!("ov-{v5}")));
        let wide = format!("ov{v5}/#");
        let narrow = format!("ov{v5}/x");
        assert_eq!(sub.subscribe(1, &[(&wide, 0), (&narrow, 1)], &[]), [0, 1]);
        mosquitto_send(b.mqtt_port, "mqttv311", &narrow, "m", &["-q", "1"]);
        let got = sub.take(2);
        assert!(!got.is_empty() && got.len() <= 2, "v5={v5}: {got:?}");
        assert!(got.iter().all(|p| p.payload == b"m"));
        assert_eq!(got.iter().map(|p| p.qos).max(), Some(1), "v5={v5}");
    });
}

// ---------------------------------------------------------------------------------------------
// `$` topics

/// [MQTT-4.7.2-1] (3.1.1 and 5): filters starting with a wildcard do not match topics starting
/// with `$`.
#[test]
fn mqtt_4_7_2_1_wildcards_do_not_match_dollar_topics() {
    let b = bridge();
    let (mut sub, _) = Raw::accepted(b.mqtt_port, &Connect::new(false, "dollar"));
    assert_eq!(sub.subscribe(1, &[("#", 0), ("+/x", 0)], &[]), [0, 0]);
    mosquitto_send(b.mqtt_port, "mqttv311", "$test/x", "hidden", &[]);
    mosquitto_send(b.mqtt_port, "mqttv311", "dollar/x", "seen", &[]);
    let got = sub.take(2);
    assert!(got.iter().all(|p| !p.topic.starts_with('$')), "{got:?}");
    assert!(got.iter().any(|p| p.topic == "dollar/x"), "{got:?}");
}

/// [MQTT-4.7.2-1] and [MQTT-1.4.0-1] (5: [MQTT-1.5.4-1]): a `$` topic is one whose first
/// character is `$`; a topic is any UTF-8 string. rumqttd tested the first byte by slicing,
/// which panicked on a topic starting with a multi-byte character: one `mosquitto_pub -t é`
/// took the broker down for every client.
#[test]
fn mqtt_4_7_2_1_a_topic_starting_with_a_multibyte_character_is_no_dollar_topic() {
    let b = bridge();
    let mut sub = watcher(b.mqtt_port, false, "#", 0);
    mosquitto_send(b.mqtt_port, "mqttv311", "é/x", "accent", &[]);
    mosquitto_send(b.mqtt_port, "mqttv5", "ünï/cødé", "more", &[]);
    mosquitto_send(b.mqtt_port, "mqttv311", "plain/x", "after", &[]);
    let got = sub.take(3);
    let topics: Vec<&str> = got.iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(topics, ["é/x", "ünï/cødé", "plain/x"]);
}

/// [MQTT-3.8.4-1], [MQTT-3.8.4-5] (5: [MQTT-3.8.4-1], [MQTT-3.8.4-6]): every SUBSCRIBE gets a
/// SUBACK with a code per filter; the broker serves no `$` topics, so a `$SYS/#` filter gets
/// the failure code 0x80 and the rest are granted. rumqttd closed the connection.
#[test]
fn mqtt_3_8_4_1_a_subscribe_to_a_dollar_filter_gets_a_suback() {
    let b = bridge();
    both(|v5| {
        let (mut sub, _) = Raw::accepted(b.mqtt_port, &Connect::new(v5, &format!("sys-{v5}")));
        assert_eq!(
            sub.subscribe(3, &[("$SYS/#", 0), ("ok/x", 1)], &[]),
            [0x80, 1],
            "v5={v5}"
        );
        assert!(sub.ping(), "v5={v5}: closed");
    });
}

// ---------------------------------------------------------------------------------------------
// Unsubscribe

/// [MQTT-3.10.4-4], [MQTT-3.10.4-5] (5: [MQTT-3.10.4-4], [MQTT-3.10.4-5], [MQTT-3.11.3-2]):
/// the Server answers every UNSUBSCRIBE with an UNSUBACK of the same packet id, even when it
/// removed nothing (MQTT 5: reason 0x11, "No subscription existed"). rumqttd sent none.
#[test]
fn mqtt_3_10_4_5_unsubscribe_is_acknowledged_even_when_nothing_was_subscribed() {
    let b = bridge();
    both(|v5| {
        let (mut raw, _) = Raw::accepted(b.mqtt_port, &Connect::new(v5, &format!("un0-{v5}")));
        raw.send(&unsubscribe(v5, 7, &["never/x"]));
        let ack = raw.expect(UNSUBACK, SOON);
        assert_eq!(ack.body[..2], 7u16.to_be_bytes());
        if v5 {
            assert_eq!(SubAck::parse(&ack, true).1, [0x11]);
        }
    });
}

/// [MQTT-3.10.4-6] (5: [MQTT-3.10.4-6], [MQTT-3.11.3-1]): an UNSUBSCRIBE of several filters gets
/// one UNSUBACK (MQTT 5: a reason per filter, in order). rumqttd sent one per removed filter.
#[test]
fn mqtt_3_10_4_6_several_filters_get_one_unsuback() {
    let b = bridge();
    both(|v5| {
        let (mut raw, _) = Raw::accepted(b.mqtt_port, &Connect::new(v5, &format!("un3-{v5}")));
        assert_eq!(raw.subscribe(1, &[("u/a", 0), ("u/b", 0)], &[]), [0, 0]);
        raw.send(&unsubscribe(v5, 8, &["u/a", "u/c", "u/b"]));
        let ack = raw.expect(UNSUBACK, SOON);
        let more = raw.drain(GRACE).expect("open");
        assert!(more.is_empty(), "v5={v5}: {more:?}");
        if v5 {
            assert_eq!(SubAck::parse(&ack, true).1, [0x00, 0x11, 0x00]);
        }
    });
}

/// [MQTT-3.10.4-2] (5: the same): after the UNSUBACK no new messages for the filter are sent.
#[test]
fn mqtt_3_10_4_2_after_unsubscribe_no_new_messages_are_sent() {
    let b = bridge();
    both(|v5| {
        let topic = format!("gone/{v5}");
        let mut sub = watcher(b.mqtt_port, v5, &topic, 1);
        let mut control = watcher(b.mqtt_port, v5, &topic, 1);
        sub.send(&unsubscribe(v5, 9, &[&topic]));
        sub.expect(UNSUBACK, SOON);
        mosquitto_send(b.mqtt_port, "mqttv311", &topic, "late", &["-q", "1"]);
        assert_eq!(payloads(&control.take(1)), ["late"]);
        assert!(
            sub.publications(Duration::from_millis(300)).is_empty(),
            "v5={v5}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// More of MQTT 5

/// MQTT 5 [MQTT-3.1.2-24], [MQTT-3.1.2-25]: the Server sends no packet larger than the client's
/// Maximum Packet Size; a message that would be larger is left out and counts as delivered (the
/// messages after it still come). rumqttd sent it all the same.
#[test]
fn mqtt5_3_1_2_24_nothing_larger_than_the_clients_maximum_packet_size_is_sent() {
    let b = bridge();
    let (mut sub, _) = Raw::accepted(
        b.mqtt_port,
        &Connect::new(true, "small").props(prop_u32(MAXIMUM_PACKET_SIZE, 64)),
    );
    assert_eq!(sub.subscribe(1, &[("mp/x", 1)], &[]), [1]);
    let large = "x".repeat(200);
    for payload in ["before", large.as_str(), "after"] {
        mosquitto_send(b.mqtt_port, "mqttv5", "mp/x", payload, &["-q", "1"]);
    }
    assert_eq!(payloads(&sub.take(2)), ["before", "after"]);
}

/// MQTT 5 [MQTT-3.3.4-3]: a subscription's identifier belongs to it, so to the session; a
/// resumed session's messages carry it. rumqttd dropped the identifiers with the connection.
#[test]
fn mqtt5_3_3_4_3_a_resumed_session_keeps_its_subscription_identifiers() {
    let b = bridge();
    let connect = Connect::new(true, "subid-kept")
        .clean(false)
        .props(prop_u32(SESSION_EXPIRY, 60));
    let (mut raw, _) = Raw::accepted(b.mqtt_port, &connect);
    let id = prop_varint(SUBSCRIPTION_ID, 42);
    assert_eq!(raw.subscribe(1, &[("sik/x", 0)], &id), [0]);
    raw.send(&disconnect(true, 0));
    assert!(raw.closed_within(SOON));
    let (mut raw, ack) = Raw::accepted(b.mqtt_port, &connect);
    assert!(ack.session_present);
    mosquitto_send(b.mqtt_port, "mqttv5", "sik/x", "m", &[]);
    let got = raw.take(1);
    assert_eq!(got[0].props.ints(SUBSCRIPTION_ID), [42], "{got:?}");
}

/// MQTT 5 §3.14.2.2.2: a DISCONNECT may change the Session Expiry Interval; set to 0 it ends
/// the session with the connection. rumqttd ignored it.
#[test]
fn mqtt5_3_14_2_2_2_a_disconnect_can_end_the_session() {
    let b = bridge();
    let connect = Connect::new(true, "ends")
        .clean(false)
        .props(prop_u32(SESSION_EXPIRY, 60));
    let (mut raw, _) = Raw::accepted(b.mqtt_port, &connect);
    assert_eq!(raw.subscribe(1, &[("ends/x", 1)], &[]), [1]);
    let mut body = vec![0x00];
    body.extend(properties(&prop_u32(SESSION_EXPIRY, 0)));
    raw.send(&packet(0xE0, &body));
    assert!(raw.closed_within(SOON));
    let (_raw, ack) = Raw::accepted(b.mqtt_port, &connect);
    assert!(
        !ack.session_present,
        "the session outlived the DISCONNECT that ended it"
    );
}

/// MQTT 5 [MQTT-4.12.0-1]: a Server that does not support the client's Authentication Method
/// MAY answer CONNACK 0x8C or 0x87 and MUST close the connection. rumqttd ignored the method
/// and let the client in.
#[test]
fn mqtt5_4_12_0_1_an_unsupported_authentication_method_is_refused() {
    let b = bridge();
    let (mut raw, ack) = Raw::connect(
        b.mqtt_port,
        &Connect::new(true, "scram").props(prop_str(AUTHENTICATION_METHOD, b"SCRAM-SHA-1")),
    );
    assert_eq!(ack.code, 0x8C);
    assert!(raw.closed_within(SOON));
}

/// [MQTT-3.1.2-4] has a Clean Session 0 session stored after its connection; the bridge keeps
/// at most its `max_connections` + 16 sessions and drops the oldest first, as any client could
/// otherwise fill memory with sessions under new client ids. This checks the bound, and that
/// the newest sessions are the ones kept.
#[test]
fn mqtt_3_1_2_4_stored_sessions_are_bounded_and_the_oldest_go_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("swarm.toml");
    std::fs::write(&config, "[bridge]\nmax_connections = 4\n").expect("config");
    let b = BridgeProcess::start(SWARM, &["--config", config.to_str().expect("UTF-8")]);
    // 20 sessions fit (4 + 16); 24 are left.
    for n in 0..24 {
        let connect = Connect::new(false, &format!("kept-{n}")).clean(false);
        let (mut raw, _) = Raw::accepted(b.mqtt_port, &connect);
        raw.send(&disconnect(false, 0));
        assert!(raw.closed_within(SOON));
    }
    let present = |n: usize| {
        let connect = Connect::new(false, &format!("kept-{n}")).clean(false);
        Raw::accepted(b.mqtt_port, &connect).1.session_present
    };
    // Newest first: a check of a session that is gone leaves a new one behind.
    assert!(present(23) && present(4), "a newer one went");
    assert!(!present(0) && !present(3), "the oldest stayed");
}
