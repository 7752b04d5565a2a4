//! Package power from Intel/AMD RAPL counters (`/sys/class/powercap/intel-rapl:N/energy_uj`):
//! the energy counter's rise between two readings over the time between them. The counters
//! wrap at `max_energy_range_uj`; a reading that went down has wrapped once. Sub-zones
//! (`intel-rapl:N:M`, cores and uncore) are inside their package and are not added again.
//! Missing or unreadable counters (no RAPL, or root-only since the PLATYPUS fix) mean no
//! reading, never an error.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One package's counter at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Count {
    energy_uj: u64,
    range_uj: u64,
}

#[derive(Debug, Clone)]
pub struct Rapl {
    sys: PathBuf,
    last: Option<(Instant, Vec<(String, Count)>)>,
}

impl Rapl {
    pub fn new(sys: &Path) -> Self {
        Self {
            sys: sys.to_path_buf(),
            last: None,
        }
    }

    /// Watts since the previous call, summed over packages; `None` on the first call, without
    /// RAPL, or when the set of packages changed.
    pub fn watts(&mut self, now: Instant) -> Option<f32> {
        let counts = packages(&self.sys);
        let previous = self.last.replace((now, counts.clone()));
        let (then, before) = previous?;
        let seconds = now.saturating_duration_since(then).as_secs_f64();
        if counts.is_empty() || seconds <= 0.0 || before.len() != counts.len() {
            return None;
        }
        let mut joules = 0.0;
        for ((name, was), (same, is)) in before.iter().zip(&counts) {
            if name != same {
                return None;
            }
            let rise = if is.energy_uj >= was.energy_uj {
                is.energy_uj - was.energy_uj
            } else {
                // Wrapped: up to the top of the range, then from zero.
                is.range_uj.checked_sub(was.energy_uj)? + is.energy_uj
            };
            joules += rise as f64 / 1e6;
        }
        Some((joules / seconds) as f32)
    }
}

/// Every package counter that can be read, in name order.
fn packages(sys: &Path) -> Vec<(String, Count)> {
    let Ok(entries) = fs::read_dir(sys.join("class/powercap")) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Count)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            // `intel-rapl:0` is a package; `intel-rapl:0:1` a zone inside it.
            let index = name.strip_prefix("intel-rapl:")?;
            if index.contains(':') {
                return None;
            }
            let energy_uj = read_u64(&e.path().join("energy_uj"))?;
            let range_uj = read_u64(&e.path().join("max_energy_range_uj")).unwrap_or(u64::MAX);
            Some((
                name,
                Count {
                    energy_uj,
                    range_uj,
                },
            ))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::fixture::put;
    use super::*;
    use std::time::Duration;

    fn package(root: &Path, name: &str, energy_uj: u64) {
        put(
            root,
            &format!("class/powercap/{name}/energy_uj"),
            &energy_uj.to_string(),
        );
        put(
            root,
            &format!("class/powercap/{name}/max_energy_range_uj"),
            "1000000000",
        );
    }

    #[test]
    fn watts_are_the_packages_rise_over_time_and_subzones_are_not_added() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let t0 = Instant::now();
        let mut r = Rapl::new(root);
        assert_eq!(r.watts(t0), None, "no RAPL here");
        package(root, "intel-rapl:0", 5_000_000);
        package(root, "intel-rapl:1", 1_000_000);
        package(root, "intel-rapl:0:0", 4_000_000);
        assert_eq!(
            r.watts(t0),
            None,
            "the first reading only sets the baseline"
        );
        package(root, "intel-rapl:0", 15_000_000); // +10 J
        package(root, "intel-rapl:1", 6_000_000); // +5 J
        package(root, "intel-rapl:0:0", 14_000_000); // inside package 0: not added
        assert_eq!(r.watts(t0 + Duration::from_secs(2)), Some(7.5));
    }

    #[test]
    fn a_counter_that_wrapped_counts_its_way_round() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let t0 = Instant::now();
        let mut r = Rapl::new(root);
        package(root, "intel-rapl:0", 999_000_000);
        r.watts(t0);
        package(root, "intel-rapl:0", 3_000_000); // 1 J to the top, 3 J after
        assert_eq!(r.watts(t0 + Duration::from_secs(1)), Some(4.0));
    }

    #[test]
    fn unreadable_or_vanished_counters_give_no_reading() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let t0 = Instant::now();
        let mut r = Rapl::new(root);
        package(root, "intel-rapl:0", 1_000);
        r.watts(t0);
        put(root, "class/powercap/intel-rapl:0/energy_uj", "garbage");
        assert_eq!(r.watts(t0 + Duration::from_secs(1)), None);
        package(root, "intel-rapl:0", 2_000);
        assert_eq!(r.watts(t0 + Duration::from_secs(1)), None, "same instant");
        package(root, "intel-rapl:0", 1_002_000);
        assert_eq!(r.watts(t0 + Duration::from_secs(2)), Some(1.0));
    }
}
