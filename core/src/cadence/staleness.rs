//! Judging a peer by its own cadence: a node that slowed down to save energy advertises its
//! longer interval in every heartbeat, and is suspect only after `k` of those intervals.

/// Whether a peer last heard at `last_heard_ms`, advertising `advertised_ms`, is suspect at
/// `now_ms`. An advertised 0 (an old sender) counts as `floor_ms`, the swarm's fastest cadence.
pub fn is_suspect(
    last_heard_ms: u64,
    advertised_ms: u32,
    suspect_after: u32,
    floor_ms: u32,
    now_ms: u64,
) -> bool {
    let interval = u64::from(advertised_ms.max(floor_ms).max(1));
    let allowance = interval.saturating_mul(u64::from(suspect_after.max(1)));
    now_ms.saturating_sub(last_heard_ms) > allowance
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn suspect_after_k_advertised_intervals() {
        assert!(!is_suspect(0, 4000, 3, 250, 12_000));
        assert!(is_suspect(0, 4000, 3, 250, 12_001));
        assert!(
            is_suspect(0, 0, 3, 250, 751),
            "no advertised interval: the floor"
        );
        assert!(
            !is_suspect(5000, 500, 3, 250, 1000),
            "a clock behind the last arrival"
        );
    }

    proptest! {
        /// A slowed node is never suspected while its heartbeats arrive within its advertised
        /// interval, however slow it went and however its arrivals jitter.
        #[test]
        fn heartbeats_within_the_advertised_interval_are_never_suspect(
            advertised in 250u32..=60_000,
            k in 2u32..=10,
            gaps in proptest::collection::vec(0.0f64..=1.0, 1..200),
        ) {
            let mut last = 0u64;
            let mut now = 0u64;
            for g in gaps {
                let gap = (f64::from(advertised) * g) as u64;
                // Probe the whole gap before the next heartbeat lands.
                for probe in [now + gap / 2, now + gap] {
                    prop_assert!(!is_suspect(last, advertised, k, 250, probe));
                }
                now += gap;
                last = now;
            }
        }
    }
}
