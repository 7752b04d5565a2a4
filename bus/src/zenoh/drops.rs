//! Counts of messages refused on receipt, by reason: bad input is dropped, never fatal. Also
//! the count of those accepted, so a reader can tell what share was refused.

use crate::codec::DecodeError;
pub use crate::refused::Refused;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
struct Counts {
    truncated: AtomicU64,
    unknown_version: AtomicU64,
    wrong_type: AtomicU64,
    malformed: AtomicU64,
    bad_key: AtomicU64,
    overflow: AtomicU64,
    refused: [AtomicU64; Refused::ALL.len()],
    accepted: AtomicU64,
}

/// Every reason with its count.
pub type DropSnapshot = [(&'static str, u64); 6 + Refused::ALL.len()];

/// Shared by all subscribers of one process; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct DropCounters(Arc<Counts>);

impl DropCounters {
    /// Counts one refused payload; returns how many of that reason so far.
    pub fn count_decode(&self, err: &DecodeError) -> u64 {
        let c = &self.0;
        let counter = match err {
            DecodeError::Truncated => &c.truncated,
            DecodeError::UnknownVersion { .. } => &c.unknown_version,
            DecodeError::WrongType { .. } => &c.wrong_type,
            DecodeError::Malformed { .. } => &c.malformed,
        };
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn count_accepted(&self) {
        self.0.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages that decoded and were handed on.
    pub fn accepted(&self) -> u64 {
        self.0.accepted.load(Ordering::Relaxed)
    }

    pub fn count_bad_key(&self) -> u64 {
        self.0.bad_key.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A sample that arrived while its subscriber's queue was full.
    pub fn count_overflow(&self) -> u64 {
        self.0.overflow.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A well-formed message refused by admission; returns how many of that reason so far.
    pub fn count_refused(&self, why: Refused) -> u64 {
        self.0.refused[why as usize].fetch_add(1, Ordering::Relaxed) + 1
    }

    /// How many were refused for `why`.
    pub fn refused(&self, why: Refused) -> u64 {
        self.0.refused[why as usize].load(Ordering::Relaxed)
    }

    /// `(reason, count)` pairs, for logs and state replies.
    pub fn snapshot(&self) -> DropSnapshot {
        let c = &self.0;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = [("", 0); 6 + Refused::ALL.len()];
        out[..6].copy_from_slice(&[
            ("truncated", get(&c.truncated)),
            ("unknown_version", get(&c.unknown_version)),
            ("wrong_type", get(&c.wrong_type)),
            ("malformed", get(&c.malformed)),
            ("bad_key", get(&c.bad_key)),
            ("overflow", get(&c.overflow)),
        ]);
        for (slot, why) in out[6..].iter_mut().zip(Refused::ALL) {
            *slot = (why.as_str(), get(&c.refused[why as usize]));
        }
        out
    }

    pub fn total(&self) -> u64 {
        self.snapshot().iter().map(|(_, n)| n).sum()
    }
}

/// Whether the `n`-th drop of a reason is worth a log line: the first ten, then at powers of
/// two, so a peer flooding garbage cannot flood the log too.
pub fn worth_logging(n: u64) -> bool {
    n <= 10 || n.is_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_thins_the_log() {
        let drops = DropCounters::default();
        assert_eq!(drops.count_decode(&DecodeError::Truncated), 1);
        assert_eq!(drops.count_decode(&DecodeError::Truncated), 2);
        assert_eq!(drops.count_bad_key(), 1);
        assert_eq!(drops.count_overflow(), 1);
        assert_eq!(drops.count_refused(Refused::NonMember), 1);
        assert_eq!(drops.count_refused(Refused::Busy), 1);
        assert_eq!(drops.refused(Refused::NonMember), 1);
        assert_eq!(drops.total(), 6);
        assert!(drops.snapshot().contains(&("non_member", 1)));
        assert!(drops.snapshot().contains(&("busy", 1)));
        assert_eq!(drops.snapshot()[0], ("truncated", 2));
        let logged = (1..=1000).filter(|n| worth_logging(*n)).count();
        assert_eq!(logged, 10 + 6); // 16, 32, 64, 128, 256, 512
    }
}
