//! Gives back the heap a burst leaves behind. glibc's allocator keeps what a flood freed in its
//! arenas for reuse, so after one a gateway held 8.0 MiB of anonymous memory against 1.3 MiB
//! before it, and its next peak (a thousand devices connecting) came on top of that
//! (`swarm-bridge bench`). `malloc_trim` returns the free pages to the system.
//!
//! Checked every few seconds. A trim is made when the process's resident anonymous memory has
//! grown by `WORTH` since the last trim (or the least seen since) while the heap holds at least
//! `WORTH` free, so an idle or steady bridge makes none. Growth of the free heap alone is not
//! the sign: a flood that goes on after a trim writes to the pages the trim gave back, and
//! frees them again, with the free heap no larger than it was. The bridge also allocates from
//! one arena (`allocator::one_arena`), so that a few live chunks do not pin pages across many.
//! Not on other C libraries (musl returns memory by itself).

use std::time::Duration;

/// How often the heap is read. A burst's memory is given back within this.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Growth worth a trim: below it, the calls would cost more than they give back.
pub const WORTH: usize = 1 << 20;

/// When to trim, from readings of resident anonymous memory and the allocator's free bytes.
#[derive(Debug, Default)]
pub struct TrimPolicy {
    /// Resident anonymous bytes after the last trim, or the least read since.
    base: usize,
}

impl TrimPolicy {
    /// Whether a trim is due now that `resident` anonymous bytes are resident and `free`
    /// bytes are free in the heap. Call `trimmed` after the trim.
    pub fn due(&mut self, resident: usize, free: usize) -> bool {
        let grown = resident >= self.base.saturating_add(WORTH);
        if grown && free >= WORTH {
            return true;
        }
        self.base = self.base.min(resident);
        false
    }

    /// A trim left `resident` anonymous bytes: what it could not give back is in use, and
    /// growth counts from here.
    pub fn trimmed(&mut self, resident: usize) {
        self.base = resident;
    }
}

/// Trims whenever the policy says so, for as long as the task runs.
pub async fn keep_trimmed() {
    let mut policy = TrimPolicy::default();
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (Some(free), Some(resident)) = (allocator::free_bytes(), resident_anonymous_bytes())
        else {
            return;
        };
        if policy.due(resident, free) {
            allocator::give_back();
            let left = resident_anonymous_bytes().unwrap_or(resident);
            policy.trimmed(left);
            tracing::debug!(
                "gave back the free heap: {resident} -> {left} bytes resident, {free} bytes were free"
            );
        }
    }
}

/// The process's resident anonymous memory: resident pages less file-backed and shared ones
/// (`/proc/self/statm`), a read of one small file.
pub fn resident_anonymous_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut fields = statm.split_ascii_whitespace().skip(1);
    let resident: usize = fields.next()?.parse().ok()?;
    let shared: usize = fields.next()?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    resident.saturating_sub(shared).checked_mul(page)
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

    /// Makes every thread allocate from one arena. glibc gives threads arenas of their own
    /// when they contend, and a flood's buffers, allocated on one thread and freed on another,
    /// left pages of each arena pinned by a few live chunks: a debug bridge kept 3.9-5.3 MiB
    /// of anonymous memory after `swarm-bridge bench`'s flood with its default arenas, and
    /// 0.9-1.0 MiB with one, at the same flood rate (a trim cannot return a page that holds
    /// anything live). Call before the process starts threads: those already attached to an
    /// arena keep it. A `MALLOC_ARENA_MAX` the user set (glibc documents it) wins.
    pub fn one_arena() {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        // SAFETY: mallopt sets an allocator parameter under the allocator's own lock.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub mod allocator {
    pub fn free_bytes() -> Option<usize> {
        None
    }

    pub fn give_back() {}

    pub fn one_arena() {}
}

#[cfg(test)]
mod tests {
    use super::{TrimPolicy, WORTH};

    const MIB: usize = WORTH;

    #[test]
    fn a_burst_is_trimmed_once_and_a_steady_heap_not_again() {
        let mut p = TrimPolicy::default();
        assert!(
            p.due(3 * MIB, 6 * MIB),
            "the first reading trims what start-up freed"
        );
        p.trimmed(2 * MIB);
        assert!(!p.due(2 * MIB, 6 * MIB), "nothing resident to give back");
        assert!(p.due(8 * MIB, 6 * MIB), "a flood left 6 MiB resident");
        p.trimmed(2 * MIB);
        assert!(
            !p.due(2 * MIB + MIB / 2, 6 * MIB),
            "half a MiB is not worth a trim"
        );
    }

    #[test]
    fn pages_a_flood_writes_again_after_a_trim_are_trimmed_again() {
        let mut p = TrimPolicy::default();
        p.trimmed(2 * MIB);
        assert!(p.due(8 * MIB, 6 * MIB), "mid-flood");
        p.trimmed(3 * MIB);
        // The flood goes on: the same 6 MiB of free heap, written again and freed again.
        assert!(
            p.due(8 * MIB, 6 * MIB),
            "the free heap did not grow, but what is resident did"
        );
    }

    #[test]
    fn memory_in_use_is_not_trimmed_for() {
        let mut p = TrimPolicy::default();
        p.trimmed(2 * MIB);
        assert!(!p.due(20 * MIB, MIB / 2), "a thousand devices connected");
        assert!(p.due(20 * MIB, 4 * MIB), "some of them left");
        p.trimmed(17 * MIB);
        assert!(
            !p.due(17 * MIB, 4 * MIB),
            "a trim that gave back what it could is not repeated"
        );
        assert!(!p.due(15 * MIB, 4 * MIB), "more left, their memory reused");
        assert!(
            p.due(16 * MIB, 4 * MIB),
            "growth counts from the least seen since"
        );
    }

    #[test]
    fn readings_near_the_largest_count_do_not_overflow() {
        let mut p = TrimPolicy::default();
        p.trimmed(usize::MAX - 1);
        assert!(!p.due(usize::MAX - 1, usize::MAX));
    }
}
