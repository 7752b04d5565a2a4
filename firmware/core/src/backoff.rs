//! Reconnect delays: exponential, capped, with jitter so a gateway that reboots is not met by
//! every board at the same instant.

#[derive(Debug, Clone)]
pub struct Backoff {
    min_ms: u32,
    max_ms: u32,
    ceiling_ms: u32,
}

impl Backoff {
    pub fn new(min_ms: u32, max_ms: u32) -> Self {
        let min_ms = min_ms.max(1);
        Self {
            min_ms,
            max_ms: max_ms.max(min_ms),
            ceiling_ms: min_ms,
        }
    }

    /// The next delay: uniform in the upper half of the current ceiling ("equal jitter"), so a
    /// delay never collapses to zero. `random` is any random word.
    pub fn next_ms(&mut self, random: u32) -> u32 {
        let ceiling = self.ceiling_ms;
        self.ceiling_ms = ceiling.saturating_mul(2).min(self.max_ms);
        let half = ceiling / 2;
        half + random % (ceiling - half + 1)
    }

    /// After a connection that worked.
    pub fn reset(&mut self) {
        self.ceiling_ms = self.min_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_stay_in_the_upper_half() {
        let mut b = Backoff::new(1000, 8000);
        for (step, ceiling) in [1000u32, 2000, 4000, 8000, 8000].into_iter().enumerate() {
            for random in [0, 1, 7, 999, 4001, u32::MAX] {
                let d = b.clone().next_ms(random);
                assert!((ceiling / 2..=ceiling).contains(&d), "step {step}: {d}");
            }
            b.next_ms(0);
        }
        b.reset();
        assert_eq!(b.next_ms(0), 500);
    }

    #[test]
    fn jitter_spreads_boards_apart() {
        let delays: alloc::vec::Vec<u32> = (0..8u32)
            .map(|r| Backoff::new(4000, 60_000).next_ms(r.wrapping_mul(2_654_435_761)))
            .collect();
        let distinct = delays
            .iter()
            .collect::<alloc::collections::BTreeSet<_>>()
            .len();
        assert!(distinct >= 6, "{delays:?}");
    }
}
