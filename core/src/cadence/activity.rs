//! The node's own sending: messages it published per second, over a sliding window.

use super::windows::Windows;

#[derive(Debug, Clone)]
pub struct ActivityMeter {
    window_ms: u64,
    windows: Windows<u64>,
}

impl ActivityMeter {
    pub fn new(window_ms: u64) -> Self {
        Self {
            window_ms: window_ms.max(1),
            windows: Windows::new(window_ms),
        }
    }

    /// `count` messages left this node.
    pub fn sent(&mut self, count: u64, now_ms: u64) {
        *self.windows.current(now_ms) += count;
    }

    /// Messages per second over the current and the previous window. Reckoned over two whole
    /// windows, so a burst at the start of a window is not read as a storm.
    pub fn per_s(&mut self, now_ms: u64) -> f64 {
        let (current, previous) = self.windows.both(now_ms);
        (current + previous) as f64 * 1000.0 / (2 * self.window_ms) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_was_sent_over_two_windows() {
        let mut a = ActivityMeter::new(10_000);
        for t in 0..100 {
            a.sent(4, t * 100);
        }
        assert!((a.per_s(10_000) - 20.0).abs() < 1e-9, "{}", a.per_s(10_000));
        assert_eq!(a.per_s(40_000), 0.0, "forgotten after two quiet windows");
    }
}
