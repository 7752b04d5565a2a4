//! Opaque bytes in a message (a task's payload, a handler's output): a CBOR byte string on the
//! wire; for humans, a string when the bytes are UTF-8 text, else an array of numbers.

use alloc::vec::Vec;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload(pub Vec<u8>);

impl Payload {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for Payload {
    fn from(b: &[u8]) -> Self {
        Payload(b.to_vec())
    }
}

impl serde::Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            if let Ok(text) = core::str::from_utf8(&self.0) {
                return s.serialize_str(text);
            }
            return s.collect_seq(self.0.iter());
        }
        s.serialize_bytes(&self.0)
    }
}

struct Bytes;

impl<'de> serde::de::Visitor<'de> for Bytes {
    type Value = Payload;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("bytes, a string or an array of numbers 0-255")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Payload, E> {
        Ok(Payload(v.to_vec()))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Payload, E> {
        Ok(Payload(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Payload, E> {
        Ok(Payload(v.as_bytes().to_vec()))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(Payload(out))
    }
}

impl<'de> serde::Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            d.deserialize_any(Bytes)
        } else {
            d.deserialize_bytes(Bytes)
        }
    }
}
