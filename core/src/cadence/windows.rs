//! Counts over a sliding pair of windows: a rate read just after a window began still rests on
//! the one before, and anything older than two windows is forgotten.

#[derive(Debug, Clone)]
pub struct Windows<T> {
    window_ms: u64,
    start_ms: u64,
    current: T,
    previous: T,
}

impl<T: Default> Windows<T> {
    pub fn new(window_ms: u64) -> Self {
        Self {
            window_ms: window_ms.max(1),
            start_ms: 0,
            current: T::default(),
            previous: T::default(),
        }
    }

    fn roll(&mut self, now_ms: u64) {
        while now_ms >= self.start_ms + self.window_ms {
            self.previous = core::mem::take(&mut self.current);
            self.start_ms += self.window_ms;
            if now_ms >= self.start_ms + 2 * self.window_ms {
                // Long silence: nothing of the old windows is worth keeping.
                self.previous = T::default();
                self.start_ms = now_ms - now_ms % self.window_ms;
            }
        }
    }

    /// The window `now_ms` falls in, to count into.
    pub fn current(&mut self, now_ms: u64) -> &mut T {
        self.roll(now_ms);
        &mut self.current
    }

    /// The current and the previous window, to read a rate from.
    pub fn both(&mut self, now_ms: u64) -> (&T, &T) {
        self.roll(now_ms);
        (&self.current, &self.previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_age_out_after_two_windows() {
        let mut w = Windows::<u32>::new(1_000);
        *w.current(100) += 1;
        *w.current(1_100) += 2;
        assert_eq!(w.both(1_500), (&2, &1));
        assert_eq!(w.both(2_500), (&0, &2));
        assert_eq!(w.both(9_000), (&0, &0), "a long silence forgets everything");
    }
}
