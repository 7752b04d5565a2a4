//! A node gives back the code pages it only needed to start. Starting (the command line,
//! the config, zenoh's session, the TLS set-up) touches code spread over most of the binary,
//! and the kernel maps file pages 64 KiB around each fault, so a settled node keeps most of its
//! 20 MB of code resident although it runs about 2 MB of it. Once it has settled, the node
//! unmaps the read-only pages of its binary and libraries (MADV_DONTNEED): they stay in the
//! page cache, shared and clean, and what the node still runs is mapped again on its next
//! touch, as after the kernel reclaimed them under memory pressure.
//!
//! Only private read-only mappings of files that hold no private copies are unmapped: the
//! relocated read-only data (RELRO) is such a copy, and unmapping it would lose the
//! relocations. Devices (`/dev`) and shared mappings are left alone. A gateway does not trim
//! (`runtime/mod.rs`): its bridge would fault its hot code back in under traffic.

use std::ops::Range;
use std::time::Duration;

/// Long enough for a node to have joined, voted and gone quiet.
pub const FIRST_TRIM: Duration = Duration::from_secs(30);
/// Paths taken once in a while (an election, a reconnect) map code in again; this gives it
/// back. Not more often: what the node runs each minute comes back within that minute, so
/// trimming it again would only make the same faults again.
pub const TRIM_EVERY: Duration = Duration::from_secs(600);

/// What one trim gave back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub mappings: usize,
    pub resident_kib: u64,
}

/// Trims at `FIRST_TRIM`, then every `TRIM_EVERY`, for as long as the node runs.
pub async fn keep_trimmed() {
    tokio::time::sleep(FIRST_TRIM).await;
    loop {
        match trim() {
            Ok(t) => tracing::debug!(
                "gave back {} KiB of code pages from {} mappings",
                t.resident_kib,
                t.mappings
            ),
            Err(e) => {
                tracing::debug!("code pages not trimmed: {e}");
                return;
            }
        }
        tokio::time::sleep(TRIM_EVERY).await;
    }
}

/// Unmaps this process's trimmable pages (see the module's text).
pub fn trim() -> std::io::Result<Trimmed> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut done = Trimmed::default();
    for m in trimmable(&smaps) {
        let Some(start) = std::ptr::NonNull::new(m.range.start as *mut std::ffi::c_void) else {
            continue;
        };
        // SAFETY: the range is a whole private read-only mapping of a file with no private
        // (anonymous) pages, so every page in it reads back the same from the file. It is not
        // writable, so it cannot gain a private page between the read and the call.
        let unmapped = unsafe {
            nix::sys::mman::madvise(
                start,
                m.range.end - m.range.start,
                nix::sys::mman::MmapAdvise::MADV_DONTNEED,
            )
        };
        if unmapped.is_ok() {
            done.mappings += 1;
            done.resident_kib += m.resident_kib;
        }
    }
    Ok(done)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub range: Range<usize>,
    pub resident_kib: u64,
}

/// The mappings in `smaps` (the text of /proc/PID/smaps) of files outside /dev that are
/// readable, private, not writable, and hold no anonymous pages. A line that does not parse
/// leaves the mapping it belongs to unselected.
pub fn trimmable(smaps: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    let mut current: Option<(Mapping, Option<u64>)> = None;
    let finish = |m: Option<(Mapping, Option<u64>)>, out: &mut Vec<Mapping>| {
        if let Some((mapping, Some(0))) = m {
            out.push(mapping);
        }
    };
    for line in smaps.lines() {
        if let Some(header) = header(line) {
            finish(current.take(), &mut out);
            current = header.map(|range| {
                (
                    Mapping {
                        range,
                        resident_kib: 0,
                    },
                    None,
                )
            });
            continue;
        }
        let Some((mapping, anonymous)) = current.as_mut() else {
            continue;
        };
        if let Some(v) = line.strip_prefix("Rss:") {
            mapping.resident_kib = kib(v).unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Anonymous:") {
            // Unreadable counts as "has private pages": never unmap what might be a copy.
            *anonymous = Some(kib(v).unwrap_or(u64::MAX));
        }
    }
    finish(current, &mut out);
    out
}

/// `None` if `line` is a field (`Name: value`); otherwise a mapping's header, `Some(None)` if
/// it does not parse or names a mapping not to trim.
fn header(line: &str) -> Option<Option<Range<usize>>> {
    let mut fields = line.split_whitespace();
    let first = fields.next()?;
    if first.ends_with(':') {
        return None;
    }
    Some(parse_header(first, fields))
}

fn parse_header<'a>(span: &str, mut fields: impl Iterator<Item = &'a str>) -> Option<Range<usize>> {
    let (lo, hi) = span.split_once('-')?;
    let lo = usize::from_str_radix(lo, 16).ok()?;
    let hi = usize::from_str_radix(hi, 16).ok()?;
    let perms = fields.next()?;
    let path = fields.nth(3).unwrap_or("");
    let wanted = matches!(perms.as_bytes(), [b'r', b'-', _, b'p'])
        && lo < hi
        && path.starts_with('/')
        && !path.starts_with("/dev/");
    wanted.then_some(lo..hi)
}

fn kib(v: &str) -> Option<u64> {
    let mut parts = v.split_whitespace();
    let n = parts.next()?.parse().ok()?;
    (parts.next()? == "kB").then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/usr/bin/swarm-node";

    fn mapping(range: &str, perms: &str, path: &str, rss: u64, anon: &str) -> String {
        format!(
            "{range} {perms} 00000000 fd:01 123 {path}\nSize: 100 kB\nRss: {rss} kB\n\
             Pss: 10 kB\nAnonymous: {anon}\nVmFlags: rd mr mw me\n"
        )
    }

    #[test]
    fn only_clean_private_read_only_file_mappings_are_trimmed() {
        let smaps = [
            mapping("1000-3000", "r--p", EXE, 8, "0 kB"),
            mapping("3000-9000", "r-xp", EXE, 20, "0 kB"),
            // RELRO: relocated by the loader, so its pages are private copies.
            mapping("9000-a000", "r--p", EXE, 4, "4 kB"),
            mapping("a000-b000", "rw-p", EXE, 4, "0 kB"),
            mapping("c000-d000", "r-xp", "/usr/lib/libc.so.6", 4, "0 kB"),
            mapping("d000-e000", "r-xp", "", 4, "0 kB"),
            mapping("e000-f000", "r-xp", "[vdso]", 4, "0 kB"),
            mapping("f000-10000", "r--s", "/usr/lib/shared.cache", 4, "0 kB"),
            mapping("10000-11000", "r--p", "/dev/gpiomem", 4, "0 kB"),
        ]
        .concat();
        assert_eq!(
            trimmable(&smaps),
            vec![
                Mapping {
                    range: 0x1000..0x3000,
                    resident_kib: 8
                },
                Mapping {
                    range: 0x3000..0x9000,
                    resident_kib: 20
                },
                Mapping {
                    range: 0xc000..0xd000,
                    resident_kib: 4
                },
            ]
        );
    }

    #[test]
    fn a_mapping_whose_private_pages_cannot_be_read_is_left_alone() {
        let smaps = [
            mapping("1000-3000", "r-xp", EXE, 8, "lots"),
            mapping("3000-4000", "r-xp", EXE, 8, "4 MB"),
            // No Anonymous line at all.
            "4000-5000 r-xp 00000000 fd:01 123 /usr/bin/swarm-node\nRss: 4 kB\n".to_string(),
            // A header that does not parse, then a field that would otherwise select it.
            "zzzz-5000 r-xp 00000000 fd:01 123 /usr/bin/swarm-node\nAnonymous: 0 kB\n".to_string(),
            mapping("6000-5000", "r-xp", EXE, 8, "0 kB"),
        ]
        .concat();
        assert_eq!(trimmable(&smaps), vec![]);
    }

    #[test]
    fn this_process_gives_back_its_code_and_keeps_running() {
        let before = crate::process_memory::Memory::of(None).expect("/proc/self");
        let trimmed = trim().expect("trim");
        let after = crate::process_memory::Memory::of(None).expect("/proc/self");
        assert!(trimmed.mappings >= 2, "{trimmed:?}");
        assert!(
            after.file < before.file,
            "file-backed pages {} KiB before, {} KiB after {trimmed:?}",
            before.file,
            after.file
        );
        // The code runs on from the file: a computation after the trim still gives its answer.
        let sum: u64 = (1..=1000u64).map(|n| n * n).sum();
        assert_eq!(sum, 333_833_500);
    }
}
