//! Debouncing an input pin, sans-IO: a level counts once it has held for the debounce time,
//! so contact bounce or a noisy supply line reports one change, not dozens.

use std::time::{Duration, Instant};

pub const DEBOUNCE: Duration = Duration::from_millis(50);
pub const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
pub struct Debounce {
    stable: Option<bool>,
    candidate: Option<(bool, Instant)>,
}

impl Debounce {
    /// Feeds one reading; returns the new level when it has just become the stable one
    /// (the first stable reading included).
    pub fn sample(&mut self, level: bool, now: Instant) -> Option<bool> {
        if self.stable == Some(level) {
            self.candidate = None;
            return None;
        }
        match self.candidate {
            Some((l, since)) if l == level => {
                if now.duration_since(since) >= DEBOUNCE {
                    self.stable = Some(level);
                    self.candidate = None;
                    return Some(level);
                }
            }
            _ => self.candidate = Some((level, now)),
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounces_report_one_change_once_the_level_holds() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut d = Debounce::default();
        assert_eq!(d.sample(true, at(0)), None);
        assert_eq!(d.sample(true, at(60)), Some(true));
        // Bouncing low and high within the debounce time: nothing.
        for (i, level) in [false, true, false, true, false].into_iter().enumerate() {
            assert_eq!(d.sample(level, at(100 + 10 * i as u64)), None);
        }
        // Still high as far as anyone was told: a high reading changes nothing.
        assert_eq!(d.sample(true, at(160)), None);
        assert_eq!(d.sample(false, at(200)), None);
        assert_eq!(d.sample(false, at(249)), None);
        assert_eq!(d.sample(false, at(250)), Some(false));
        assert_eq!(d.sample(false, at(400)), None);
    }
}
