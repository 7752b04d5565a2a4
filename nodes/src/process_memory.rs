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

    #[test]
    fn this_process_reads_its_own() {
        let m = Memory::of(None).expect("/proc/self");
        assert!(m.rss > 0 && m.anon > 0, "{m:?}");
        assert!(m.anon + m.file <= m.rss + 4, "{m:?}");
    }
}
