//! Gives back the heap a burst leaves behind. glibc's allocator keeps what a flood freed in its
//! arenas for reuse, so after one a gateway held 8.0 MiB of anonymous memory against 1.3 MiB
//! before it, and its next peak (a thousand devices connecting) came on top of that
//! (`swarm-bridge bench`). `malloc_trim` returns the free pages to the system.
//!
//! Checked every few seconds; a trim is made only when the free heap has grown by `WORTH`
//! since the last trim or the least seen since, so an idle or steady bridge makes none. Not
//! on other C libraries (musl returns memory by itself).

use std::time::Duration;

/// How often the free heap is read. A burst's memory is given back within this.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Free heap growth worth a trim: below it, the calls would cost more than they give back.
pub const WORTH: usize = 1 << 20;

/// When to trim, from readings of the allocator's free bytes.
#[derive(Debug, Default)]
pub struct TrimPolicy {
    /// The free bytes at the last trim, or the least read since: growth is counted from here.
    base: usize,
}

impl TrimPolicy {
    /// Whether a trim is due now that `free` bytes are free in the heap.
    pub fn due(&mut self, free: usize) -> bool {
        if free >= self.base.saturating_add(WORTH) {
            self.base = free;
            true
        } else {
            self.base = self.base.min(free);
            false
        }
    }
}

/// Trims whenever the policy says so, for as long as the task runs.
pub async fn keep_trimmed() {
    let mut policy = TrimPolicy::default();
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(free) = allocator::free_bytes() else {
            return;
        };
        if policy.due(free) {
            allocator::give_back();
            tracing::debug!("gave back the free heap ({free} bytes free)");
        }
    }
}

/// glibc's own figures and trim (`tests/heap.rs` checks them in a process of its own: they
/// are the whole process's, which other tests would move).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub mod allocator {
    /// Bytes free in all of glibc's arenas.
    pub fn free_bytes() -> Option<usize> {
        // SAFETY: mallinfo2 reads the allocator's statistics under its own locks and returns
        // them by value.
        Some(unsafe { libc::mallinfo2() }.fordblks)
    }

    /// Returns the whole free pages of every arena to the system.
    pub fn give_back() {
        // SAFETY: malloc_trim only releases pages of chunks that are free, under the
        // allocator's locks; memory in use is untouched.
        unsafe { libc::malloc_trim(0) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub mod allocator {
    pub fn free_bytes() -> Option<usize> {
        None
    }

    pub fn give_back() {}
}

#[cfg(test)]
mod tests {
    use super::{TrimPolicy, WORTH};

    #[test]
    fn a_burst_is_trimmed_once_and_a_steady_heap_not_again() {
        let mut p = TrimPolicy::default();
        assert!(
            !p.due(WORTH / 2),
            "little free after start: nothing to give back"
        );
        assert!(p.due(6 * WORTH), "a flood freed 6 MiB");
        assert!(!p.due(6 * WORTH), "the same free heap is not trimmed twice");
        assert!(!p.due(6 * WORTH + WORTH / 2));
    }

    #[test]
    fn growth_counts_from_the_least_free_heap_seen_since_the_last_trim() {
        let mut p = TrimPolicy::default();
        assert!(p.due(6 * WORTH));
        assert!(!p.due(2 * WORTH), "reused by new connections");
        assert!(
            p.due(3 * WORTH),
            "freed again: 1 MiB more than the least seen"
        );
    }

    #[test]
    fn a_free_heap_near_the_largest_count_does_not_overflow() {
        let mut p = TrimPolicy::default();
        assert!(p.due(usize::MAX - 1));
        assert!(!p.due(usize::MAX - 1));
    }
}
