//! The identify pattern, sans-IO: which level the LED has at a given time since the start, and
//! when it next changes. The driver sleeps until then and sets the pin.

use std::time::Duration;

/// On and off in equal halves of `period`, for `length`, then off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blink {
    pub period: Duration,
    pub length: Duration,
}

impl Blink {
    pub const DEFAULT_PERIOD: Duration = Duration::from_millis(500);

    /// Whether the LED is lit `at` after the start.
    pub fn lit_at(&self, at: Duration) -> bool {
        let half = self.half().as_nanos();
        at < self.length && (at.as_nanos() / half).is_multiple_of(2)
    }

    /// The next instant after `at` at which the level changes; `None` once the pattern is over
    /// (the LED is then off).
    pub fn next_change(&self, at: Duration) -> Option<Duration> {
        if at >= self.length {
            return None;
        }
        let half = self.half().as_nanos();
        let next = Duration::from_nanos(((at.as_nanos() / half + 1) * half) as u64);
        Some(next.min(self.length))
    }

    fn half(&self) -> Duration {
        (self.period / 2).max(Duration::from_millis(1))
    }
}

/// Runs `blink` on `pin`: sets its level at every change, waiting with `sleep`. Ends with the
/// LED off. A pin error ends the pattern early and is returned.
pub async fn run<P, S, F>(blink: Blink, pin: &mut P, mut sleep: S) -> Result<(), P::Error>
where
    P: embedded_hal::digital::OutputPin,
    S: FnMut(Duration) -> F,
    F: std::future::Future<Output = ()>,
{
    let mut at = Duration::ZERO;
    loop {
        if blink.lit_at(at) {
            pin.set_high()?;
        } else {
            pin.set_low()?;
        }
        match blink.next_change(at) {
            Some(next) => {
                sleep(next - at).await;
                at = next;
            }
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// An LED that records (time, level) as the simulated clock says.
    struct Led<'a> {
        clock: &'a RefCell<Duration>,
        levels: Vec<(Duration, bool)>,
    }

    impl embedded_hal::digital::ErrorType for Led<'_> {
        type Error = core::convert::Infallible;
    }

    impl embedded_hal::digital::OutputPin for Led<'_> {
        fn set_low(&mut self) -> Result<(), Self::Error> {
            self.levels.push((*self.clock.borrow(), false));
            Ok(())
        }
        fn set_high(&mut self) -> Result<(), Self::Error> {
            self.levels.push((*self.clock.borrow(), true));
            Ok(())
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn blinks_in_halves_of_the_period_and_ends_off() {
        let clock = RefCell::new(Duration::ZERO);
        let mut led = Led {
            clock: &clock,
            levels: Vec::new(),
        };
        let blink = Blink {
            period: ms(500),
            length: ms(1200),
        };
        let sleep = |d: Duration| {
            *clock.borrow_mut() += d;
            std::future::ready(())
        };
        let done = poll_to_end(run(blink, &mut led, sleep));
        assert_eq!(done, Ok(()));
        let expected = [
            (0, true),
            (250, false),
            (500, true),
            (750, false),
            (1000, true),
            (1200, false),
        ];
        let expected: Vec<_> = expected.iter().map(|(t, l)| (ms(*t), *l)).collect();
        assert_eq!(led.levels, expected);
    }

    #[test]
    fn a_zero_length_leaves_the_led_off_and_a_tiny_period_cannot_spin() {
        let blink = Blink {
            period: ms(0),
            length: ms(0),
        };
        assert!(!blink.lit_at(ms(0)));
        assert_eq!(blink.next_change(ms(0)), None);
        let fast = Blink {
            period: ms(0),
            length: ms(3),
        };
        assert_eq!(fast.next_change(ms(0)), Some(ms(1)));
    }

    /// The futures here never wait (the clock is simulated), so one poll finishes them.
    fn poll_to_end<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }
}
