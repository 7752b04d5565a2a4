//! Frames on a UART: `COBS(message ‖ CRC-16) 0x00`. COBS keeps 0x00 out of the frame so a
//! receiver that joins mid-stream resynchronises at the next zero; the CRC catches line noise.
//! The message is the same CBOR a board sends over MQTT; its tag says which leaf it is.

use crc::{CRC_16_IBM_3740, Crc};

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameFault {
    #[error("frame is not valid COBS")]
    Cobs,
    #[error("frame shorter than its CRC")]
    Short,
    #[error("CRC mismatch")]
    Crc,
    #[error("frame longer than {0} bytes")]
    Oversize(usize),
}

impl FrameFault {
    pub fn kind(&self) -> &'static str {
        match self {
            FrameFault::Cobs => "bad_cobs",
            FrameFault::Short => "short",
            FrameFault::Crc => "bad_crc",
            FrameFault::Oversize(_) => "oversize",
        }
    }
}

/// One message as bytes for the wire, delimiter included.
pub fn encode_frame(message: &[u8]) -> Vec<u8> {
    let mut body = message.to_vec();
    body.extend_from_slice(&CRC16.checksum(message).to_be_bytes());
    let mut out = cobs::encode_vec(&body);
    out.push(0);
    out
}

/// Splits a byte stream into checked messages.
#[derive(Debug)]
pub struct Deframer {
    buf: Vec<u8>,
    max: usize,
    /// Dropping bytes until the next delimiter, after an oversize frame.
    skipping: bool,
}

impl Deframer {
    /// `max`: the largest message accepted, CRC excluded.
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
            skipping: false,
        }
    }

    /// Feeds bytes; returns each complete frame's message or the reason it was dropped.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<Vec<u8>, FrameFault>> {
        let mut out = Vec::new();
        // COBS grows a frame by one byte per 254, plus the CRC.
        let limit = self.max + 2 + self.max / 254 + 2;
        for &b in bytes {
            if b != 0 {
                if self.skipping {
                    continue;
                }
                self.buf.push(b);
                if self.buf.len() > limit {
                    self.buf.clear();
                    self.skipping = true;
                    out.push(Err(FrameFault::Oversize(self.max)));
                }
                continue;
            }
            if std::mem::take(&mut self.skipping) || self.buf.is_empty() {
                self.buf.clear();
                continue;
            }
            let frame = std::mem::take(&mut self.buf);
            out.push(check(&frame, self.max));
        }
        out
    }
}

fn check(frame: &[u8], max: usize) -> Result<Vec<u8>, FrameFault> {
    let body = cobs::decode_vec(frame).map_err(|_| FrameFault::Cobs)?;
    if body.len() < 3 {
        return Err(FrameFault::Short);
    }
    let (message, crc) = body.split_at(body.len() - 2);
    if message.len() > max {
        return Err(FrameFault::Oversize(max));
    }
    if CRC16.checksum(message).to_be_bytes() != crc {
        return Err(FrameFault::Crc);
    }
    Ok(message.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_bus::{encode, samples};

    #[test]
    fn frames_round_trip_across_any_split() {
        let a = encode(&samples::energy());
        let b = encode(&samples::heartbeat(8));
        let mut wire = encode_frame(&a);
        wire.extend(encode_frame(&b));
        assert_eq!(
            wire.iter().filter(|&&x| x == 0).count(),
            2,
            "zeros only as delimiters"
        );
        for split in 0..wire.len() {
            let mut d = Deframer::new(256);
            let mut got = d.push(&wire[..split]);
            got.extend(d.push(&wire[split..]));
            assert_eq!(got, vec![Ok(a.clone()), Ok(b.clone())], "split at {split}");
        }
    }

    #[test]
    fn noise_is_dropped_and_the_next_frame_still_arrives() {
        let msg = encode(&samples::energy());
        let mut bad = encode_frame(&msg);
        bad[3] ^= 0x40; // a flipped bit on the line
        let mut wire = vec![0x17, 0x42, 0x00]; // joined mid-frame: garbage up to a delimiter
        wire.extend(&bad);
        wire.extend(encode_frame(&msg));
        let got = Deframer::new(256).push(&wire);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].is_err());
        assert_eq!(got[1], Err(FrameFault::Crc));
        assert_eq!(got[2], Ok(msg));
    }

    #[test]
    fn oversize_frames_are_skipped_to_the_next_delimiter() {
        let big = vec![7u8; 400];
        let small = vec![1u8, 2, 3];
        let mut wire = encode_frame(&big);
        wire.extend(encode_frame(&small));
        let got = Deframer::new(64).push(&wire);
        assert_eq!(got, vec![Err(FrameFault::Oversize(64)), Ok(small)]);
        assert_eq!(
            Deframer::new(64).push(&[0x01, 0x00]),
            vec![Err(FrameFault::Short)]
        );
    }
}
