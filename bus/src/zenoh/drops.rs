//! Counts of messages refused on receipt, by reason: bad input is dropped, never fatal.

use crate::codec::DecodeError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
struct Counts {
    truncated: AtomicU64,
    unknown_version: AtomicU64,
    wrong_type: AtomicU64,
    malformed: AtomicU64,
    bad_key: AtomicU64,
}

/// Shared by all subscribers of one process; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct DropCounters(Arc<Counts>);

impl DropCounters {
    pub fn count_decode(&self, err: &DecodeError) {
        let c = &self.0;
        let counter = match err {
            DecodeError::Truncated => &c.truncated,
            DecodeError::UnknownVersion { .. } => &c.unknown_version,
            DecodeError::WrongType { .. } => &c.wrong_type,
            DecodeError::Malformed { .. } => &c.malformed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_bad_key(&self) {
        self.0.bad_key.fetch_add(1, Ordering::Relaxed);
    }

    /// `(reason, count)` pairs, for logs and state replies.
    pub fn snapshot(&self) -> [(&'static str, u64); 5] {
        let c = &self.0;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("truncated", get(&c.truncated)),
            ("unknown_version", get(&c.unknown_version)),
            ("wrong_type", get(&c.wrong_type)),
            ("malformed", get(&c.malformed)),
            ("bad_key", get(&c.bad_key)),
        ]
    }

    pub fn total(&self) -> u64 {
        self.snapshot().iter().map(|(_, n)| n).sum()
    }
}
