//! A circuit breaker per worker: after `threshold` failures in a row it opens and the worker
//! gets no new work for `cooldown`; then one probe task decides whether it closes again.

use crate::clock::At;
use core::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open {
        until: At,
    },
    /// The cool-down is over: one probe may run; `probing` once it has been handed out.
    HalfOpen {
        probing: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Breaker {
    failures: u32,
    state: BreakerState,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            failures: 0,
            state: BreakerState::Closed,
        }
    }
}

impl Breaker {
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether the worker may take a task now; an open breaker whose cool-down is over
    /// becomes half-open here.
    pub fn allows(&mut self, now: At) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen { probing: false };
                true
            }
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen { probing } => !probing,
        }
    }

    /// A task was handed to the worker: in half-open state it is the probe.
    pub fn assigned(&mut self) {
        if let BreakerState::HalfOpen { .. } = self.state {
            self.state = BreakerState::HalfOpen { probing: true };
        }
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.state = BreakerState::Closed;
    }

    /// Returns true when this failure opened the breaker.
    pub fn failed(&mut self, now: At, threshold: u32, cooldown: Duration) -> bool {
        self.failures = self.failures.saturating_add(1);
        let open = match self.state {
            BreakerState::HalfOpen { .. } => true,
            BreakerState::Closed => self.failures >= threshold.max(1),
            BreakerState::Open { .. } => false,
        };
        if open {
            self.state = BreakerState::Open {
                until: now + cooldown,
            };
        }
        open
    }

    /// When an open breaker's cool-down ends.
    pub fn reopens_at(&self) -> Option<At> {
        match self.state {
            BreakerState::Open { until } => Some(until),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_then_one_probe_decides() {
        let t0 = At::from_millis(1_000_000);
        let cool = Duration::from_secs(30);
        let mut b = Breaker::default();
        assert!(!b.failed(t0, 3, cool));
        assert!(!b.failed(t0, 3, cool));
        assert!(b.allows(t0), "two failures: still closed");
        assert!(b.failed(t0, 3, cool), "the third opens it");
        assert!(!b.allows(t0 + Duration::from_secs(29)), "cooling down");
        assert!(b.allows(t0 + cool), "half-open: a probe may run");
        b.assigned();
        assert!(!b.allows(t0 + cool), "only one probe at a time");
        // The probe fails: open for another cool-down.
        assert!(b.failed(t0 + cool, 3, cool));
        assert!(!b.allows(t0 + cool + Duration::from_secs(1)));
        assert!(b.allows(t0 + cool * 2));
        b.assigned();
        b.succeeded();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(
            !b.failed(t0, 3, cool),
            "the count starts again after a success"
        );
    }
}
