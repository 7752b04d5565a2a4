//! A bounded ring of recent samples and its one-line sparkline.

use std::collections::VecDeque;

/// The last `cap` samples with their times (Unix ms), oldest first; pushing past `cap`
/// forgets the oldest, so a node that reports for days holds no more than a minute's worth.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    samples: VecDeque<(u64, f32)>,
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

    /// A sample heard live: the newest, whatever its time says.
    pub fn push(&mut self, ts_ms: u64, value: f32) {
        if self.samples.len() == self.cap {
            self.samples.pop_front();
        }
        self.samples.push_back((ts_ms, value));
    }

    /// A sample from before (the gateway's history, or a board's reading replayed after an
    /// outage) goes where its time puts it. One already held at that time, one without a time,
    /// or one older than all a full ring keeps is left out; returns whether it went in.
    pub fn place(&mut self, ts_ms: u64, value: f32) -> bool {
        if ts_ms == 0 {
            return false;
        }
        let mut at = self.samples.partition_point(|(t, _)| *t < ts_ms);
        if self.samples.get(at).is_some_and(|(t, _)| *t == ts_ms) {
            return false;
        }
        if self.samples.len() == self.cap {
            if at == 0 {
                return false;
            }
            self.samples.pop_front();
            at -= 1;
        }
        self.samples.insert(at, (ts_ms, value));
        true
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = f32> + '_ {
        self.samples.iter().map(|(_, v)| *v)
    }

    /// The newest `width` samples as bars, right-aligned. Scaled from zero to the window's
    /// peak, not min to max: a steady load reads as a steady bar instead of magnified noise,
    /// and nodes stay comparable to their own peak.
    pub fn sparkline(&self, width: usize) -> String {
        let skip = self.samples.len().saturating_sub(width);
        let shown: Vec<f32> = self.iter().skip(skip).collect();
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
            h.push(v * 1000, v as f32);
        }
        assert_eq!(h.iter().collect::<Vec<_>>(), [3.0, 4.0, 5.0]);
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn earlier_samples_go_where_their_time_puts_them_never_past_the_cap() {
        let mut h = History::new(5);
        h.push(10_000, 10.0);
        h.push(11_000, 11.0);
        for (ts, v) in [(1_000, 1.0), (2_000, 2.0), (3_000, 3.0), (4_000, 4.0)] {
            h.place(ts, v);
        }
        assert_eq!(h.iter().collect::<Vec<_>>(), [2.0, 3.0, 4.0, 10.0, 11.0]);
        // A board's replay after an outage: between what was heard before and after it.
        assert!(h.place(10_500, 10.5));
        assert_eq!(h.iter().collect::<Vec<_>>(), [3.0, 4.0, 10.0, 10.5, 11.0]);
        assert!(!h.place(10_500, 99.0), "a time already held");
        assert!(!h.place(0, 99.0), "no time");
        assert!(!h.place(500, 0.5), "older than all a full ring keeps");
        assert_eq!(h.iter().collect::<Vec<_>>(), [3.0, 4.0, 10.0, 10.5, 11.0]);
    }

    #[test]
    fn sparkline_is_scaled_from_zero_and_right_aligned() {
        let mut h = History::new(60);
        for v in [1.0, 2.0, 4.0, 8.0, 0.0] {
            h.push(0, v);
        }
        assert_eq!(h.sparkline(7), "  ▁▂▄█ ");
        assert_eq!(h.sparkline(2), "█ ", "the newest two");
        assert_eq!(History::new(4).sparkline(3), "   ");
    }
}
