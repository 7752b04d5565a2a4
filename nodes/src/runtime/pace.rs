//! The node's timers at the pace its core decides (`Output::Pace`): heartbeats, energy
//! samples and anti-entropy surveys. The heartbeat advertises the interval in force.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use swarm_node::cadence::Decision;
use tokio::time::{Interval, MissedTickBehavior};

/// How often the core is asked whether to change pace (`Input::Retune`).
pub const RETUNE_EVERY: Duration = Duration::from_secs(1);

pub struct Pace {
    current: Decision,
    pub heartbeat: Interval,
    pub energy: Interval,
    pub anti_entropy: Interval,
    /// Every message this node has published, for `/metrics`.
    sent_total: Arc<AtomicU64>,
    /// When this node last sent its heartbeat.
    pub last_beat: tokio::time::Instant,
}

/// The first anti-entropy round comes soon after joining; later ones at the cadence.
const FIRST_SURVEY: Duration = Duration::from_secs(2);

/// Ticks at once, then every `ms`: a node announces itself as soon as it starts (peers
/// discover voters from heartbeats), and a new pace takes effect with a heartbeat.
fn timer(ms: u32) -> Interval {
    let mut t = tokio::time::interval(Duration::from_millis(u64::from(ms.max(1))));
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

impl Pace {
    /// Timers at `start`, the core's pace as it starts.
    pub fn new(start: Decision) -> Self {
        Self {
            heartbeat: timer(start.heartbeat_ms),
            energy: timer(start.energy_ms),
            anti_entropy: {
                let period = Duration::from_millis(u64::from(start.anti_entropy_ms.max(1)));
                let mut t =
                    tokio::time::interval_at(tokio::time::Instant::now() + FIRST_SURVEY, period);
                t.set_missed_tick_behavior(MissedTickBehavior::Delay);
                t
            },
            current: start,
            sent_total: Arc::default(),
            last_beat: tokio::time::Instant::now(),
        }
    }

    /// A live count of the messages this node has published.
    pub fn sent_total(&self) -> Arc<AtomicU64> {
        self.sent_total.clone()
    }

    pub fn count_sent(&self, count: u64) {
        self.sent_total.fetch_add(count, Ordering::Relaxed);
    }

    /// Restarts each timer whose interval changed; true when anything changed.
    pub fn apply(&mut self, next: Decision) -> bool {
        if next == self.current {
            return false;
        }
        if next.heartbeat_ms != self.current.heartbeat_ms {
            self.heartbeat = timer(next.heartbeat_ms);
        }
        if next.energy_ms != self.current.energy_ms {
            self.energy = timer(next.energy_ms);
        }
        if next.anti_entropy_ms != self.current.anti_entropy_ms {
            self.anti_entropy = timer(next.anti_entropy_ms);
        }
        self.current = next;
        true
    }
}
