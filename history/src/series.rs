//! Bounded time series, one per key, in time order. Sans-IO: the storage hands it samples and
//! asks for ranges; it never reads a clock.
//!
//! Bounds, so that what peers put cannot grow it:
//! - at most `per_key` samples per key: a new one pushes out the oldest;
//! - at most `max_keys` keys: a sample for a new key past it is refused;
//! - nothing older than `max_age_ms` behind the newest sample it holds.
//!
//! Samples may arrive out of order (a board's readings replayed after an outage, at the time
//! they were taken), so each is placed by its time, not appended.

use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_key: usize,
    pub max_keys: usize,
    pub max_age_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Stored,
    /// The same time on the same key again (a sample delivered twice): kept once.
    Duplicate,
    /// Older than everything a full series keeps, or than `max_age_ms`.
    TooOld,
    /// A new key while `max_keys` are held.
    TooManyKeys,
}

pub struct Series<T> {
    limits: Limits,
    keys: BTreeMap<String, VecDeque<(u64, T)>>,
}

impl<T: Clone> Series<T> {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            keys: BTreeMap::new(),
        }
    }

    pub fn put(&mut self, key: &str, time_ms: u64, value: T) -> Put {
        if !self.keys.contains_key(key) && self.keys.len() >= self.limits.max_keys {
            return Put::TooManyKeys;
        }
        let limits = self.limits;
        let series = self.keys.entry(key.to_string()).or_default();
        let newest = series.back().map_or(time_ms, |(t, _)| (*t).max(time_ms));
        if newest.saturating_sub(time_ms) > limits.max_age_ms {
            return Put::TooOld;
        }
        if series.len() >= limits.per_key && series.front().is_some_and(|(t, _)| time_ms < *t) {
            return Put::TooOld;
        }
        // Most samples are the newest: the search starts from the back.
        let at = series.partition_point(|(t, _)| *t <= time_ms);
        if at > 0 && series[at - 1].0 == time_ms {
            return Put::Duplicate;
        }
        series.insert(at, (time_ms, value));
        while series.len() > limits.per_key {
            series.pop_front();
        }
        while series
            .front()
            .is_some_and(|(t, _)| newest.saturating_sub(*t) > limits.max_age_ms)
        {
            series.pop_front();
        }
        Put::Stored
    }

    /// The samples of `key` whose time `within` accepts, oldest first.
    pub fn range(&self, key: &str, within: impl Fn(u64) -> bool) -> Vec<(u64, T)> {
        self.keys
            .get(key)
            .map(|s| s.iter().filter(|(t, _)| within(*t)).cloned().collect())
            .unwrap_or_default()
    }

    /// Each key with the time of its newest sample.
    pub fn keys(&self) -> Vec<(String, u64)> {
        self.keys
            .iter()
            .filter_map(|(k, s)| s.back().map(|(t, _)| (k.clone(), *t)))
            .collect()
    }

    pub fn remove(&mut self, key: &str) {
        self.keys.remove(key);
    }

    pub fn len(&self) -> usize {
        self.keys.values().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(per_key: usize, max_keys: usize) -> Series<u32> {
        Series::new(Limits {
            per_key,
            max_keys,
            max_age_ms: 1_000_000,
        })
    }

    fn times(s: &Series<u32>, key: &str) -> Vec<u64> {
        s.range(key, |_| true).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn late_samples_take_their_place_in_time() {
        let mut s = series(10, 4);
        for t in [100, 300, 200, 50, 400] {
            assert_eq!(s.put("a", t, 0), Put::Stored);
        }
        assert_eq!(times(&s, "a"), [50, 100, 200, 300, 400]);
        assert_eq!(s.put("a", 200, 1), Put::Duplicate);
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn a_full_series_drops_its_oldest_and_refuses_older_still() {
        let mut s = series(3, 4);
        for t in [10, 20, 30, 40] {
            s.put("a", t, 0);
        }
        assert_eq!(times(&s, "a"), [20, 30, 40]);
        assert_eq!(s.put("a", 5, 0), Put::TooOld);
        assert_eq!(s.put("a", 25, 0), Put::Stored);
        assert_eq!(times(&s, "a"), [25, 30, 40]);
    }

    #[test]
    fn keys_are_bounded() {
        let mut s = series(3, 2);
        s.put("a", 1, 0);
        s.put("b", 1, 0);
        assert_eq!(s.put("c", 1, 0), Put::TooManyKeys);
        assert_eq!(s.put("a", 2, 0), Put::Stored);
        assert_eq!(s.keys(), [("a".to_string(), 2), ("b".to_string(), 1)]);
    }

    #[test]
    fn nothing_outlives_the_age_limit() {
        let mut s = Series::new(Limits {
            per_key: 100,
            max_keys: 4,
            max_age_ms: 1_000,
        });
        s.put("a", 10_000, 0u32);
        s.put("a", 10_500, 0);
        assert_eq!(s.put("a", 8_999, 0), Put::TooOld);
        s.put("a", 11_200, 0);
        let kept: Vec<u64> = s.range("a", |_| true).into_iter().map(|(t, _)| t).collect();
        assert_eq!(kept, [10_500, 11_200]);
    }

    #[test]
    fn ranges_select_by_time() {
        let mut s = series(100, 4);
        for t in 0..10 {
            s.put("a", t * 100, t as u32);
        }
        let got = s.range("a", |t| (250..=600).contains(&t));
        assert_eq!(got, [(300, 3), (400, 4), (500, 5), (600, 6)]);
        assert!(s.range("nobody", |_| true).is_empty());
    }
}
