//! Just enough of the MQTT wire to find packet boundaries and read a PUBLISH's topic: the gate
//! checks these and passes the bytes on untouched.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("remaining length longer than four bytes")]
    BadLength,
    #[error("packet shorter than its fields")]
    Short,
    #[error("topic is not UTF-8")]
    BadTopic,
    #[error("unknown MQTT 5 property {0:#04x}")]
    BadProperty(u8),
}

/// Where the packet at the start of `buf` ends: `(fixed header length, remaining length)`,
/// or `None` until enough bytes have arrived.
pub fn frame(buf: &[u8]) -> Result<Option<(usize, usize)>, FrameError> {
    let mut value = 0usize;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((2 + i, value)));
        }
    }
    Err(FrameError::BadLength)
}

pub const CONNECT: u8 = 1;
pub const PUBLISH: u8 = 3;
pub const PUBREL: u8 = 6;
pub const SUBSCRIBE: u8 = 8;
pub const UNSUBSCRIBE: u8 = 10;

pub fn packet_type(first: u8) -> u8 {
    first >> 4
}

/// The protocol level of a CONNECT (4 = 3.1.1, 5 = 5), from its variable header.
pub fn connect_level(packet: &[u8], header_len: usize) -> Result<u8, FrameError> {
    connect_byte(packet, header_len, 0)
}

/// The connect flags of a CONNECT, the byte after its protocol level.
pub fn connect_flags(packet: &[u8], header_len: usize) -> Result<u8, FrameError> {
    connect_byte(packet, header_len, 1)
}

/// The byte `after` bytes past the protocol name of a CONNECT.
fn connect_byte(packet: &[u8], header_len: usize, after: usize) -> Result<u8, FrameError> {
    let body = packet.get(header_len..).ok_or(FrameError::Short)?;
    let name_len = usize::from(u16::from_be_bytes([
        *body.first().ok_or(FrameError::Short)?,
        *body.get(1).ok_or(FrameError::Short)?,
    ]));
    body.get(2 + name_len + after)
        .copied()
        .ok_or(FrameError::Short)
}

/// A PUBLISH's topic and payload length. `v5` adds the properties block.
pub fn publish_topic(
    packet: &[u8],
    header_len: usize,
    v5: bool,
) -> Result<(&str, usize), FrameError> {
    let qos = (packet[0] >> 1) & 0x03;
    let body = packet.get(header_len..).ok_or(FrameError::Short)?;
    let topic_len = usize::from(u16::from_be_bytes([
        *body.first().ok_or(FrameError::Short)?,
        *body.get(1).ok_or(FrameError::Short)?,
    ]));
    let topic = body.get(2..2 + topic_len).ok_or(FrameError::Short)?;
    let topic = std::str::from_utf8(topic).map_err(|_| FrameError::BadTopic)?;
    let mut at = 2 + topic_len + if qos > 0 { 2 } else { 0 };
    if v5 {
        at += properties_len(body.get(at..).ok_or(FrameError::Short)?)?;
    }
    let payload = body.len().checked_sub(at).ok_or(FrameError::Short)?;
    Ok((topic, payload))
}

/// The Topic Alias property (0x23) of an MQTT 5 PUBLISH, if it has one.
pub fn publish_topic_alias(packet: &[u8], header_len: usize) -> Result<Option<u16>, FrameError> {
    let qos = (packet.first().ok_or(FrameError::Short)? >> 1) & 0x03;
    let body = packet.get(header_len..).ok_or(FrameError::Short)?;
    let topic_len = usize::from(u16::from_be_bytes([
        *body.first().ok_or(FrameError::Short)?,
        *body.get(1).ok_or(FrameError::Short)?,
    ]));
    let at = 2 + topic_len + if qos > 0 { 2 } else { 0 };
    let rest = body.get(at..).ok_or(FrameError::Short)?;
    let mut props = rest
        .get(varint_len(rest)?..properties_len(rest)?)
        .ok_or(FrameError::Short)?;
    while let Some((&id, value)) = props.split_first() {
        let len = match id {
            // Payload format indicator, message expiry interval, topic alias.
            0x01 => 1,
            0x02 => 4,
            0x23 => 2,
            // Content type, response topic, correlation data.
            0x03 | 0x08 | 0x09 => 2 + prefixed(value, 0)?,
            0x26 => {
                // user property: two strings
                let key = 2 + prefixed(value, 0)?;
                key + 2 + prefixed(value, key)?
            }
            0x0B => varint_len(value)?, // subscription identifier
            other => return Err(FrameError::BadProperty(other)),
        };
        let field = value.get(..len).ok_or(FrameError::Short)?;
        if id == 0x23 {
            return Ok(Some(u16::from_be_bytes([field[0], field[1]])));
        }
        props = &value[len..];
    }
    Ok(None)
}

/// The length of the 2-byte-length-prefixed field at `at` in `bytes`, prefix excluded.
fn prefixed(bytes: &[u8], at: usize) -> Result<usize, FrameError> {
    Ok(usize::from(u16::from_be_bytes([
        *bytes.get(at).ok_or(FrameError::Short)?,
        *bytes.get(at + 1).ok_or(FrameError::Short)?,
    ])))
}

/// How many bytes the variable byte integer at the start of `bytes` takes.
fn varint_len(bytes: &[u8]) -> Result<usize, FrameError> {
    bytes
        .iter()
        .take(4)
        .position(|b| b & 0x80 == 0)
        .map(|last| last + 1)
        .ok_or(FrameError::BadLength)
}

/// How many bytes an MQTT 5 properties block at the start of `rest` takes, its length
/// included: a variable byte integer, like the remaining length.
fn properties_len(rest: &[u8]) -> Result<usize, FrameError> {
    let mut fake = vec![0u8];
    fake.extend_from_slice(&rest[..rest.len().min(4)]);
    let (len_bytes, props) = frame(&fake)?.ok_or(FrameError::Short)?;
    Ok(len_bytes - 1 + props)
}

/// The topic filters of a SUBSCRIBE. `v5` adds the properties block after the packet id.
pub fn subscribe_filters(
    packet: &[u8],
    header_len: usize,
    v5: bool,
) -> Result<Vec<&str>, FrameError> {
    filters(packet, header_len, v5, 1)
}

/// The topic filters of an UNSUBSCRIBE: a SUBSCRIBE's without the options byte after each.
pub fn unsubscribe_filters(
    packet: &[u8],
    header_len: usize,
    v5: bool,
) -> Result<Vec<&str>, FrameError> {
    filters(packet, header_len, v5, 0)
}

fn filters(
    packet: &[u8],
    header_len: usize,
    v5: bool,
    options_len: usize,
) -> Result<Vec<&str>, FrameError> {
    let body = packet.get(header_len..).ok_or(FrameError::Short)?;
    let mut at = 2; // packet identifier
    if v5 {
        at += properties_len(body.get(at..).ok_or(FrameError::Short)?)?;
    }
    let mut filters = Vec::new();
    while at < body.len() {
        let len = usize::from(u16::from_be_bytes([
            *body.get(at).ok_or(FrameError::Short)?,
            *body.get(at + 1).ok_or(FrameError::Short)?,
        ]));
        let filter = body.get(at + 2..at + 2 + len).ok_or(FrameError::Short)?;
        filters.push(std::str::from_utf8(filter).map_err(|_| FrameError::BadTopic)?);
        at += 2 + len + options_len;
    }
    if filters.is_empty() || at != body.len() {
        return Err(FrameError::Short);
    }
    Ok(filters)
}

#[cfg(test)]
pub(crate) mod testing {
    /// A PUBLISH packet as a client would send it.
    pub fn publish(topic: &str, payload: &[u8], qos: u8, v5: bool) -> Vec<u8> {
        // MQTT 5: a payload format indicator as its one property.
        let props: Option<&[u8]> = v5.then_some(&[0x01, 0x01]);
        publish_with(topic, payload, qos, props)
    }

    /// A PUBLISH packet with MQTT 5 `props` (their length is added), or a 3.1.1 one.
    pub fn publish_with(topic: &str, payload: &[u8], qos: u8, props: Option<&[u8]>) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        body.extend_from_slice(topic.as_bytes());
        if qos > 0 {
            body.extend_from_slice(&7u16.to_be_bytes());
        }
        if let Some(props) = props {
            body.push(props.len() as u8);
            body.extend_from_slice(props);
        }
        body.extend_from_slice(payload);
        packet(0x30 | (qos << 1), &body)
    }

    /// A 3.1.1 CONNECT with clean session and no login.
    pub fn connect(client_id: &str) -> Vec<u8> {
        let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 4, 0x02, 0x00, 0x3c];
        body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
        body.extend_from_slice(client_id.as_bytes());
        packet(0x10, &body)
    }

    /// A SUBSCRIBE packet for `filters`, QoS 1 each.
    pub fn subscribe(filters: &[&str], v5: bool) -> Vec<u8> {
        let mut body = 9u16.to_be_bytes().to_vec();
        if v5 {
            body.push(0); // no properties
        }
        for f in filters {
            body.extend_from_slice(&(f.len() as u16).to_be_bytes());
            body.extend_from_slice(f.as_bytes());
            body.push(1);
        }
        packet(0x82, &body)
    }

    /// An UNSUBSCRIBE packet for `filters`.
    pub fn unsubscribe(filters: &[&str], v5: bool) -> Vec<u8> {
        let mut body = 10u16.to_be_bytes().to_vec();
        if v5 {
            body.push(0); // no properties
        }
        for f in filters {
            body.extend_from_slice(&(f.len() as u16).to_be_bytes());
            body.extend_from_slice(f.as_bytes());
        }
        packet(0xa2, &body)
    }

    /// A packet: its first byte, the remaining length, then `body`.
    fn packet(first: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        let mut len = body.len();
        loop {
            let mut b = (len & 0x7f) as u8;
            len >>= 7;
            if len > 0 {
                b |= 0x80;
            }
            out.push(b);
            if len == 0 {
                break;
            }
        }
        out.extend_from_slice(body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testing::publish;
    use super::*;

    #[test]
    fn frames_and_topics_of_v4_and_v5_publishes() {
        for v5 in [false, true] {
            for qos in [0, 1] {
                let payload = vec![9u8; 300];
                let p = publish("swarm/lab/node/a/energy", &payload, qos, v5);
                let (h, rem) = frame(&p).unwrap().unwrap();
                assert_eq!(h, 3, "300+ bytes need two length bytes");
                assert_eq!(h + rem, p.len());
                assert_eq!(packet_type(p[0]), PUBLISH);
                let (topic, len) = publish_topic(&p, h, v5).unwrap();
                assert_eq!(topic, "swarm/lab/node/a/energy");
                assert_eq!(len, 300, "v5={v5} qos={qos}");
            }
        }
    }

    #[test]
    fn partial_and_broken_frames() {
        assert_eq!(frame(&[0x30]), Ok(None));
        assert_eq!(frame(&[0x30, 0x80]), Ok(None));
        assert_eq!(
            frame(&[0x30, 0xff, 0xff, 0xff, 0xff]),
            Err(FrameError::BadLength)
        );
        // Topic length pointing past the end.
        assert_eq!(
            publish_topic(&[0x30, 0x03, 0x00, 0x09, b'a'], 2, false),
            Err(FrameError::Short)
        );
        assert_eq!(
            publish_topic(&[0x30, 0x04, 0x00, 0x02, 0xff, 0xfe], 2, false),
            Err(FrameError::BadTopic)
        );
    }

    #[test]
    fn subscribe_filters_of_v4_and_v5() {
        for v5 in [false, true] {
            let p = super::testing::subscribe(&["swarm/lab/node/a/cmd", "swarm/#"], v5);
            let (h, rem) = frame(&p).unwrap().unwrap();
            assert_eq!(h + rem, p.len());
            assert_eq!(packet_type(p[0]), SUBSCRIBE);
            assert_eq!(
                subscribe_filters(&p, h, v5).unwrap(),
                vec!["swarm/lab/node/a/cmd", "swarm/#"]
            );
            let cut = &p[..p.len() - 3];
            let mut short = cut.to_vec();
            short[1] -= 3;
            assert_eq!(subscribe_filters(&short, h, v5), Err(FrameError::Short));
        }
    }

    #[test]
    fn unsubscribe_filters_of_v4_and_v5() {
        for v5 in [false, true] {
            let p = super::testing::unsubscribe(&["swarm/lab/node/a/cmd", "swarm/#"], v5);
            let (h, rem) = frame(&p).unwrap().unwrap();
            assert_eq!(h + rem, p.len());
            assert_eq!(packet_type(p[0]), UNSUBSCRIBE);
            assert_eq!(
                unsubscribe_filters(&p, h, v5).unwrap(),
                vec!["swarm/lab/node/a/cmd", "swarm/#"]
            );
            // Read as a SUBSCRIBE, the bytes do not add up.
            assert!(subscribe_filters(&p, h, v5).is_err());
            let mut short = p[..p.len() - 2].to_vec();
            short[1] -= 2;
            assert_eq!(unsubscribe_filters(&short, h, v5), Err(FrameError::Short));
        }
    }

    #[test]
    fn connect_levels_and_flags() {
        let v4 = [
            0x10, 0x0a, 0x00, 0x04, b'M', b'Q', b'T', b'T', 4, 0x02, 0x00, 0x3c,
        ];
        assert_eq!(connect_level(&v4, 2), Ok(4));
        assert_eq!(connect_flags(&v4, 2), Ok(0x02));
        let mut v5 = v4;
        v5[8] = 5;
        assert_eq!(connect_level(&v5, 2), Ok(5));
        assert_eq!(
            connect_level(&[0x10, 0x01, 0x00], 2),
            Err(FrameError::Short)
        );
        assert_eq!(connect_flags(&v4[..9], 2), Err(FrameError::Short));
    }

    #[test]
    fn topic_aliases_are_found_among_the_properties_and_bad_ones_refused() {
        use super::testing::publish_with;
        let alias = |props: &[u8], qos: u8| {
            let p = publish_with("a/b", b"x", qos, Some(props));
            let (h, _) = frame(&p).unwrap().unwrap();
            publish_topic_alias(&p, h)
        };
        assert_eq!(alias(&[0x23, 0x00, 0x07], 0), Ok(Some(7)));
        assert_eq!(alias(&[0x23, 0x01, 0x00], 1), Ok(Some(256)));
        assert_eq!(alias(&[0x01, 0x01], 1), Ok(None));
        assert_eq!(alias(&[], 0), Ok(None));
        // After a user property, a correlation data and a subscription identifier.
        let mixed = [
            0x26, 0, 1, b'k', 0, 2, b'v', b'w', 0x09, 0, 1, 0xff, 0x0B, 0x81, 0x01, 0x23, 0, 3,
        ];
        assert_eq!(alias(&mixed, 2), Ok(Some(3)));
        assert_eq!(alias(&[0x7f, 0], 0), Err(FrameError::BadProperty(0x7f)));
        // A string running past the properties.
        assert_eq!(alias(&[0x03, 0, 9, b'x'], 0), Err(FrameError::Short));
        assert_eq!(alias(&[0x23, 0], 0), Err(FrameError::Short));
    }
}
