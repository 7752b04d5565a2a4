//! What TCP sockets on loopback sent, from the kernel's own per-socket counters (`ss -ti`):
//! payload bytes and segments, pure acknowledgements and retransmissions included, so idle
//! traffic is counted exactly without root or a packet capture.

use anyhow::Context;
use std::ops::RangeInclusive;
use std::process::Command;

/// Ethernet (14), IPv4 (20) and TCP with timestamps (32): one loopback segment's headers.
pub const HEADER_BYTES: u64 = 66;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub payload: u64,
    pub segments: u64,
    /// Segments that carried payload; the others are pure acknowledgements, which TCP on
    /// Linux sends at once for a lone small segment, so idle traffic costs about two packets
    /// a message whatever its size.
    pub data_segments: u64,
}

impl Sent {
    /// Payload plus every segment's headers: what the link carried.
    pub fn on_the_wire(self) -> u64 {
        self.payload
            .saturating_add(self.segments.saturating_mul(HEADER_BYTES))
    }

    pub fn since(self, before: Sent) -> Sent {
        Sent {
            payload: self.payload.saturating_sub(before.payload),
            segments: self.segments.saturating_sub(before.segments),
            data_segments: self.data_segments.saturating_sub(before.data_segments),
        }
    }
}

/// Summed over every TCP socket with an end on one of `ports`: both ends of a link between
/// two of them are counted, each for what it sent.
pub fn sent(ports: RangeInclusive<u16>) -> anyhow::Result<Sent> {
    let filter = format!(
        "( sport >= :{lo} and sport <= :{hi} ) or ( dport >= :{lo} and dport <= :{hi} )",
        lo = ports.start(),
        hi = ports.end()
    );
    let out = Command::new("ss")
        .args(["-tinH", &filter])
        .output()
        .context("running ss (iproute2) for the sockets' counters")?;
    anyhow::ensure!(
        out.status.success(),
        "ss failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(parse(&String::from_utf8_lossy(&out.stdout)))
}

fn parse(ss: &str) -> Sent {
    let mut sum = Sent::default();
    for word in ss.split_whitespace() {
        let value = |prefix: &str| word.strip_prefix(prefix)?.parse::<u64>().ok();
        if let Some(n) = value("bytes_sent:") {
            sum.payload = sum.payload.saturating_add(n);
        } else if let Some(n) = value("segs_out:") {
            sum.segments = sum.segments.saturating_add(n);
        } else if let Some(n) = value("data_segs_out:") {
            sum.data_segments = sum.data_segments.saturating_add(n);
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_each_sockets_payload_and_segments() {
        let ss = "ESTAB 0 0 127.0.0.1:17800 127.0.0.1:40000\n\t cubic rto:201 \
                  bytes_sent:1200 bytes_acked:1201 bytes_received:300 segs_out:20 segs_in:12 \
                  data_segs_out:11 data_segs_in:6\n\
                  ESTAB 0 0 127.0.0.1:40000 127.0.0.1:17800\n\t cubic bytes_sent:300 \
                  bytes_retrans:40 segs_out:15 segs_in:20\n";
        let s = parse(ss);
        assert_eq!(
            s,
            Sent {
                payload: 1500,
                segments: 35,
                data_segments: 11
            },
            "a socket that never sent data has no data_segs_out"
        );
        assert_eq!(s.on_the_wire(), 1500 + 35 * HEADER_BYTES);
        assert_eq!(
            s.since(Sent {
                payload: 500,
                segments: 5,
                data_segments: 4
            }),
            Sent {
                payload: 1000,
                segments: 30,
                data_segments: 7
            }
        );
    }
}
