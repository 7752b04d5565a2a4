//! The cores' one clock: `At`, microseconds since a start the adapter picks. The cores never
//! read a clock; each input comes with its `At`. `Epoch` turns a process's `Instant`s into
//! `At`s and back (with the `std` feature).

use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A moment, in microseconds since the adapter's start. Arithmetic saturates: a clock value
/// never wraps, whatever a caller adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct At(u64);

impl At {
    pub const ZERO: At = At(0);

    pub const fn from_micros(us: u64) -> At {
        At(us)
    }

    pub const fn from_millis(ms: u64) -> At {
        At(ms.saturating_mul(1000))
    }

    pub const fn as_micros(self) -> u64 {
        self.0
    }

    pub const fn as_millis(self) -> u64 {
        self.0 / 1000
    }

    /// How long after `earlier` this is; zero if it is not after.
    pub fn saturating_duration_since(self, earlier: At) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for At {
    type Output = At;
    fn add(self, d: Duration) -> At {
        At(self.0.saturating_add(micros(d)))
    }
}

impl AddAssign<Duration> for At {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for At {
    type Output = At;
    fn sub(self, d: Duration) -> At {
        At(self.0.saturating_sub(micros(d)))
    }
}

impl Sub<At> for At {
    type Output = Duration;
    fn sub(self, earlier: At) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// A process's start, to turn its `Instant`s into `At`s and back.
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy)]
pub struct Epoch(std::time::Instant);

#[cfg(feature = "std")]
impl Epoch {
    pub fn now() -> Epoch {
        Epoch(std::time::Instant::now())
    }

    pub fn at(&self, instant: std::time::Instant) -> At {
        At(micros(instant.saturating_duration_since(self.0)))
    }

    /// Now, on this epoch's clock.
    pub fn at_now(&self) -> At {
        self.at(std::time::Instant::now())
    }

    pub fn instant(&self, at: At) -> std::time::Instant {
        self.0 + Duration::from_micros(at.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = At::from_millis(5);
        assert_eq!(t + Duration::from_millis(1), At::from_micros(6_000));
        assert_eq!(t - Duration::from_secs(1), At::ZERO);
        assert_eq!(
            At::from_micros(u64::MAX) + Duration::from_secs(1),
            At::from_micros(u64::MAX)
        );
        assert_eq!(At::ZERO - t, Duration::ZERO);
        assert_eq!(t - At::ZERO, Duration::from_millis(5));
        assert_eq!(t.as_millis(), 5);
    }

    #[cfg(feature = "std")]
    #[test]
    fn an_epoch_round_trips_instants() {
        let e = Epoch::now();
        let later = std::time::Instant::now() + Duration::from_millis(1500);
        let at = e.at(later);
        assert!(at >= At::from_millis(1500));
        assert_eq!(e.instant(at), e.instant(e.at(e.instant(at))));
    }
}
