//! The cadence controller applied: the heartbeat and energy timers follow its decisions, and
//! the heartbeat advertises the interval in force.

use crate::config::Config;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use swarm_bus::{CadenceMode, Energy, NodeId};
use swarm_core::clock::{At, Epoch};
use swarm_node::cadence::{CadenceController, Decision};
use tokio::time::{Interval, MissedTickBehavior};

/// How often the controller is asked whether to change pace.
pub const RETUNE_EVERY: Duration = Duration::from_secs(1);

pub struct Pace {
    /// `None` with `adaptive_gossip.enabled = false`: the configured intervals, always.
    controller: Option<CadenceController>,
    /// The node's clock for the cadence core.
    epoch: Epoch,
    current: Decision,
    pub heartbeat: Interval,
    pub energy: Interval,
    pub anti_entropy: Interval,
    /// Every message this node has published, for `/metrics`.
    sent_total: Arc<AtomicU64>,
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
    pub fn new(config: &Config, pinned: Option<CadenceMode>, epoch: Epoch) -> Self {
        let limits = config.cadence_settings();
        let fixed = Decision {
            mode: CadenceMode::Normal,
            pinned: false,
            heartbeat_ms: limits.heartbeat_ms,
            energy_ms: limits.energy_ms,
            anti_entropy_ms: limits.anti_entropy_ms,
        };
        let controller = config.adaptive_gossip.enabled.then(|| {
            let mut c = CadenceController::new(limits);
            c.pin(pinned);
            c
        });
        let current = controller.as_ref().map_or(fixed, |c| c.decision());
        Self {
            controller,
            epoch,
            heartbeat: timer(current.heartbeat_ms),
            energy: timer(current.energy_ms),
            anti_entropy: {
                let period = Duration::from_millis(u64::from(current.anti_entropy_ms.max(1)));
                let mut t =
                    tokio::time::interval_at(tokio::time::Instant::now() + FIRST_SURVEY, period);
                t.set_missed_tick_behavior(MissedTickBehavior::Delay);
                t
            },
            current,
            sent_total: Arc::default(),
        }
    }

    /// A live count of the messages this node has published.
    pub fn sent_total(&self) -> Arc<AtomicU64> {
        self.sent_total.clone()
    }

    fn now(&self) -> At {
        self.epoch.at_now()
    }

    pub fn decision(&self) -> Decision {
        self.current
    }

    pub fn heartbeat_from(&mut self, from: &NodeId, seq: u64, cadence_ms: u32) {
        let now = self.now();
        if let Some(c) = &mut self.controller {
            c.heartbeat_from(from, seq, cadence_ms, now);
        }
    }

    pub fn members(&mut self, live_peers: usize) {
        if let Some(c) = &mut self.controller {
            c.set_live_peers(live_peers);
        }
    }

    /// `count` messages left this node.
    pub fn sent(&mut self, count: u64) {
        self.sent_total.fetch_add(count, Ordering::Relaxed);
        let now = self.now();
        if let Some(c) = &mut self.controller {
            c.sent(count, now);
        }
    }

    pub fn peer_left(&mut self, peer: &NodeId) {
        if let Some(c) = &mut self.controller {
            c.peer_left(peer);
        }
    }

    pub fn battery(&mut self, sample: &Energy) {
        if let Some(c) = &mut self.controller {
            c.set_battery(sample.battery_pct, sample.charging == Some(true));
        }
    }

    pub fn leader(&mut self, leads: bool) {
        if let Some(c) = &mut self.controller {
            c.set_leader(leads);
        }
    }

    pub fn pin(&mut self, mode: Option<CadenceMode>) {
        if let Some(c) = &mut self.controller {
            c.pin(mode);
        }
    }

    /// Asks the controller; when an interval changed, restarts that timer at the new period.
    /// Returns the new decision when anything changed.
    pub fn retune(&mut self) -> Option<Decision> {
        let now = self.now();
        let next = self.controller.as_mut()?.tick(now);
        if next == self.current {
            return None;
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
        Some(next)
    }
}
