//! A process's memory as Linux reports it in /proc: for the footprint bench, which reads its
//! nodes', and for `/metrics`, where a node reports its own. File-backed pages are mostly the
//! binary's code, shared by every process that runs it; PSS splits shared pages among them.

/// Sizes in KiB; 0 where the kernel does not say (smaps_rollup needs Linux 4.14).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub rss: u64,
    pub anon: u64,
    pub file: u64,
    pub peak: u64,
    pub pss: u64,
}

impl Memory {
    /// Process `pid`'s, or this process's own for `None`.
    pub fn of(pid: Option<u32>) -> std::io::Result<Memory> {
        let dir = pid.map_or_else(|| "/proc/self".to_string(), |p| format!("/proc/{p}"));
        let status = std::fs::read_to_string(format!("{dir}/status"))?;
        let rollup = std::fs::read_to_string(format!("{dir}/smaps_rollup")).unwrap_or_default();
        Ok(Self::parse(&status, &rollup))
    }

    /// This process's own, from the mappings it sees. Natively that is `of(None)`. Under an
    /// emulator (qemu-user running a Pi build), /proc/self/maps lists the emulated program's
    /// mappings while status and smaps are the emulator's, its translation cache included; the
    /// program's own figures are then the smaps entries that fall in its mappings. The peak
    /// is not known there (0).
    pub fn own() -> std::io::Result<Memory> {
        let whole = Self::of(None)?;
        let (Ok(maps), Ok(smaps)) = (
            std::fs::read_to_string("/proc/self/maps"),
            std::fs::read_to_string("/proc/self/smaps"),
        ) else {
            return Ok(whole);
        };
        Ok(Self::within(&maps, &smaps).unwrap_or(whole))
    }

    /// The pages of `smaps` (the emulator's mappings) that lie in `maps` (the program's),
    /// which qemu may place at a base address of its own: found where a file is mapped at the
    /// same offset in both. `None` when smaps maps no file that maps does not (no emulator) or
    /// the base cannot be found.
    pub fn within(maps: &str, smaps: &str) -> Option<Memory> {
        let program: Vec<Mapping> = maps.lines().filter_map(Mapping::parse).collect();
        let mut host: Vec<(Mapping, u64, u64, u64)> = Vec::new();
        for line in smaps.lines() {
            if let Some(m) = Mapping::parse(line) {
                host.push((m, 0, 0, 0));
            } else if let Some(last) = host.last_mut() {
                let kib = |name: &str| {
                    line.strip_prefix(name)
                        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                };
                if let Some(v) = kib("Rss:") {
                    last.1 = v;
                } else if let Some(v) = kib("Pss:") {
                    last.2 = v;
                } else if let Some(v) = kib("Anonymous:") {
                    last.3 = v;
                }
            }
        }
        // The emulator's own files (its binary, at least) are mapped in smaps and not in maps.
        // Natively both list the same files; threads starting between the two reads only add
        // or remove anonymous stacks.
        let emulated = host.iter().any(|(h, ..)| {
            h.inode != 0 && !program.iter().any(|p| (p.dev, p.inode) == (h.dev, h.inode))
        });
        if !emulated || program.is_empty() {
            return None;
        }
        let base = program.iter().filter(|p| p.inode != 0).find_map(|p| {
            host.iter()
                .find(|(h, ..)| (h.dev, h.inode, h.offset) == (p.dev, p.inode, p.offset))
                .map(|(h, ..)| h.start.wrapping_sub(p.start))
        })?;
        let mut own = Memory::default();
        for (h, rss, pss, anon) in &host {
            let inside = program.iter().any(|p| {
                h.start >= p.start.wrapping_add(base) && h.end <= p.end.wrapping_add(base)
            });
            if inside {
                own.rss += rss;
                own.pss += pss;
                own.anon += anon;
                own.file += rss.saturating_sub(*anon);
            }
        }
        Some(own)
    }

    /// From the text of `status` and `smaps_rollup`; a field missing or unreadable is 0.
    pub fn parse(status: &str, rollup: &str) -> Memory {
        let field = |text: &str, name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        Memory {
            rss: field(status, "VmRSS:"),
            anon: field(status, "RssAnon:"),
            file: field(status, "RssFile:"),
            peak: field(status, "VmHWM:"),
            pss: field(rollup, "Pss:"),
        }
    }
}

/// One line of /proc/PID/maps (or a mapping's first line in smaps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    dev: (u32, u32),
    inode: u64,
}

impl Mapping {
    /// `start-end perms offset major:minor inode [path]`; `None` for any other line.
    fn parse(line: &str) -> Option<Mapping> {
        let mut f = line.split_whitespace();
        let (start, end) = f.next()?.split_once('-')?;
        let perms = f.next()?;
        if perms.len() != 4 {
            return None;
        }
        let offset = u64::from_str_radix(f.next()?, 16).ok()?;
        let (major, minor) = f.next()?.split_once(':')?;
        Some(Mapping {
            start: u64::from_str_radix(start, 16).ok()?,
            end: u64::from_str_radix(end, 16).ok()?,
            offset,
            dev: (
                u32::from_str_radix(major, 16).ok()?,
                u32::from_str_radix(minor, 16).ok()?,
            ),
            inode: f.next()?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_by_name_and_the_missing_or_garbled_are_zero() {
        let status = "Name:\tswarm-node\nVmHWM:\t   20480 kB\nVmRSS:\t   18000 kB\n\
                      RssAnon:\t    2500 kB\nRssFile:\t   15500 kB\nRssShmem:\t       0 kB\n";
        let rollup = "55bf-7fff ---p 00000000 00:00 0 [rollup]\nRss: 18000 kB\nPss: 6000 kB\n\
                      Pss_Anon: 2500 kB\n";
        assert_eq!(
            Memory::parse(status, rollup),
            Memory {
                rss: 18_000,
                anon: 2_500,
                file: 15_500,
                peak: 20_480,
                pss: 6_000,
            }
        );
        let m = Memory::parse("VmRSS:\tlots kB\n", "");
        assert_eq!(m, Memory::default());
    }

    /// qemu-user's view: the program's two mappings in maps; smaps has them (at `base`) and
    /// the emulator's own binary and translation cache.
    fn emulated(base: u64) -> (String, String) {
        let maps = "00010000-00020000 r-xp 00000000 fe:00 42   /usr/bin/swarm-node\n\
                    00400000-00500000 rw-p 00000000 00:00 0 \n"
            .to_string();
        let entry = |start: u64, end: u64, inode: u64, rss: u64, anon: u64| {
            format!(
                "{start:08x}-{end:08x} r--p 00000000 fe:00 {inode}   /x\n\
                 Size: 64 kB\nRss: {rss} kB\nPss: {rss} kB\nAnonymous: {anon} kB\n\
                 VmFlags: rd mr mw me\n"
            )
        };
        let smaps = [
            entry(0x7000_0000, 0x7100_0000, 7, 3000, 100), // qemu itself
            entry(base + 0x10000, base + 0x20000, 42, 40, 0), // the program's code
            entry(base + 0x40_0000, base + 0x48_0000, 0, 200, 200), // its heap, split in two
            entry(base + 0x48_0000, base + 0x50_0000, 0, 100, 100),
            entry(0x7f00_0000, 0x7f80_0000, 0, 9000, 9000), // the translation cache
        ]
        .concat();
        (maps, smaps)
    }

    #[test]
    fn under_an_emulator_only_the_programs_own_mappings_count() {
        for base in [0, 0x1_0000_0000] {
            let (maps, smaps) = emulated(base);
            assert_eq!(
                Memory::within(&maps, &smaps),
                Some(Memory {
                    rss: 340,
                    anon: 300,
                    file: 40,
                    peak: 0,
                    pss: 340,
                }),
                "base {base:#x}"
            );
        }
        // Natively both list the same mappings: status and smaps_rollup say it.
        let native = "00010000-00020000 r-xp 00000000 fe:00 42   /usr/bin/swarm-node\n";
        let smaps = format!(
            "{native}Rss: 40 kB\nAnonymous: 0 kB\n\
             7f000000-7f800000 rw-p 00000000 00:00 0 \nRss: 8 kB\nAnonymous: 8 kB\n"
        );
        assert_eq!(
            Memory::within(native, &smaps),
            None,
            "a thread's stack mapped between the two reads is no emulator"
        );
        assert_eq!(Memory::within("", "garbage\n"), None);
    }

    #[test]
    fn this_process_reads_its_own() {
        let m = Memory::of(None).expect("/proc/self");
        assert!(m.rss > 0 && m.anon > 0, "{m:?}");
        assert!(m.anon + m.file <= m.rss + 4, "{m:?}");
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        assert_eq!(Memory::within(&maps, &smaps), None, "no emulator here");
        assert!(
            Memory::own().expect("/proc/self").peak > 0,
            "natively the kernel's figures"
        );
    }
}
