//! A bounded ring of recent samples and its one-line sparkline.

use std::collections::VecDeque;

/// The last `cap` samples, oldest first; pushing past `cap` forgets the oldest, so a node that
/// reports for days holds no more than a minute's worth.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    samples: VecDeque<f32>,
    cap: usize,
}

/// Eight heights, from a sliver to a full cell.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

impl History {
    pub fn new(cap: usize) -> Self {
        Self {
            samples: VecDeque::with_capacity(cap.min(64)),
            cap: cap.max(1),
        }
    }

    pub fn push(&mut self, value: f32) {
        if self.samples.len() == self.cap {
            self.samples.pop_front();
        }
        self.samples.push_back(value);
    }

    /// Samples from before the first one pushed (the gateway's history, oldest first) go in
    /// front of it; past `cap` the oldest of them are left out.
    pub fn backfill(&mut self, older: &[f32]) {
        let room = self.cap.saturating_sub(self.samples.len());
        let skip = older.len().saturating_sub(room);
        for v in older[skip..].iter().rev() {
            self.samples.push_front(*v);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = f32> + '_ {
        self.samples.iter().copied()
    }

    /// The newest `width` samples as bars, right-aligned. Scaled from zero to the window's
    /// peak, not min to max: a steady load reads as a steady bar instead of magnified noise,
    /// and nodes stay comparable to their own peak.
    pub fn sparkline(&self, width: usize) -> String {
        let skip = self.samples.len().saturating_sub(width);
        let shown: Vec<f32> = self.samples.iter().skip(skip).copied().collect();
        let peak = shown.iter().copied().fold(0.0f32, f32::max);
        let mut line = " ".repeat(width.saturating_sub(shown.len()));
        for v in shown {
            let level = if peak > 0.0 && v > 0.0 {
                // Anything above zero gets at least the lowest bar, so "on" never looks "off".
                (((v / peak) * BARS.len() as f32).ceil() as usize).clamp(1, BARS.len()) - 1
            } else {
                0
            };
            line.push(if v > 0.0 { BARS[level] } else { ' ' });
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest_samples() {
        let mut h = History::new(3);
        for v in 1..=5 {
            h.push(v as f32);
        }
        assert_eq!(h.iter().collect::<Vec<_>>(), [3.0, 4.0, 5.0]);
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn history_goes_in_front_and_never_past_the_cap() {
        let mut h = History::new(5);
        h.push(10.0);
        h.push(11.0);
        h.backfill(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(h.iter().collect::<Vec<_>>(), [2.0, 3.0, 4.0, 10.0, 11.0]);
        let mut full = History::new(2);
        full.push(1.0);
        full.push(2.0);
        full.backfill(&[0.5]);
        assert_eq!(full.iter().collect::<Vec<_>>(), [1.0, 2.0]);
    }

    #[test]
    fn sparkline_is_scaled_from_zero_and_right_aligned() {
        let mut h = History::new(60);
        for v in [1.0, 2.0, 4.0, 8.0, 0.0] {
            h.push(v);
        }
        assert_eq!(h.sparkline(7), "  ▁▂▄█ ");
        assert_eq!(h.sparkline(2), "█ ", "the newest two");
        assert_eq!(History::new(4).sparkline(3), "   ");
    }
}
