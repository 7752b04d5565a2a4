//! A hash on the wire (an image's SHA-256): a CBOR byte string; for humans (JSON replies,
//! `zenoh get`) lowercase hex, as `sha256sum` prints it.

use alloc::string::String;
use alloc::vec::Vec;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Digest(pub Vec<u8>);

impl Digest {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn hex(&self) -> String {
        use core::fmt::Write;
        let mut s = String::with_capacity(self.0.len() * 2);
        for b in &self.0 {
            let _ = write!(s, "{b:02x}");
        }
        s
    }
}

impl From<&[u8]> for Digest {
    fn from(b: &[u8]) -> Self {
        Digest(b.to_vec())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

struct Visitor;

impl<'de> serde::de::Visitor<'de> for Visitor {
    type Value = Digest;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("bytes, or a string of hex digits")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Digest, E> {
        Ok(Digest(v.to_vec()))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Digest, E> {
        Ok(Digest(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Digest, E> {
        if !v.len().is_multiple_of(2) || v.len() > 128 {
            return Err(E::custom(
                "a digest is an even number of hex digits, at most 128",
            ));
        }
        (0..v.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(v.get(i..i + 2).unwrap_or("x"), 16))
            .collect::<Result<Vec<u8>, _>>()
            .map(Digest)
            .map_err(|_| E::custom("not hex digits"))
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            d.deserialize_str(Visitor)
        } else {
            d.deserialize_bytes(Visitor)
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn hex_for_humans_bytes_on_the_wire() {
        let d = Digest(alloc::vec![0x00, 0xab, 0xff]);
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"00abff\"");
        assert_eq!(serde_json::from_str::<Digest>("\"00abff\"").unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"0g\"").is_err());
        assert!(serde_json::from_str::<Digest>("\"abc\"").is_err());
        let cbor = cbor4ii::serde::to_vec(Vec::new(), &d).unwrap();
        assert_eq!(cbor, [0x43, 0x00, 0xab, 0xff]);
    }
}
