//! The node's pace as its core holds it: the adaptive cadence controller, or the configured
//! intervals when adaptive gossip is off. The core feeds it what it hears and decides (peers'
//! heartbeats, its own sending, its battery, the member count, its role, the operator's pin);
//! the adapter's timers follow each `Output::Pace`.

use crate::cadence::{CadenceController, Decision, Settings};
use crate::clock::At;
use swarm_bus::{CadenceMode, NodeId};

#[derive(Debug, Clone)]
pub struct Pacing {
    /// `None`: the configured intervals, always.
    controller: Option<CadenceController>,
    fixed: Decision,
}

impl Pacing {
    /// `adaptive_gossip.enabled = false`: the configured intervals, whatever happens.
    pub fn fixed(settings: &Settings) -> Self {
        Self {
            controller: None,
            fixed: configured(settings),
        }
    }

    /// The adaptive controller, starting with the mode the operator pinned (kept across
    /// restarts by the adapter).
    pub fn adaptive(settings: Settings, pinned: Option<CadenceMode>) -> Self {
        let fixed = configured(&settings);
        let mut c = CadenceController::new(settings);
        c.pin(pinned);
        Self {
            controller: Some(c),
            fixed,
        }
    }

    /// The intervals as they stand, without re-evaluating.
    pub fn decision(&self) -> Decision {
        self.controller
            .as_ref()
            .map_or(self.fixed, |c| c.decision())
    }

    /// Re-evaluates the mode at `now`: the intervals to use from now on.
    pub(super) fn retune(&mut self, now: At) -> Decision {
        match &mut self.controller {
            Some(c) => c.tick(now),
            None => self.fixed,
        }
    }

    pub(super) fn heartbeat_from(&mut self, peer: &NodeId, seq: u64, cadence_ms: u32, now: At) {
        if let Some(c) = &mut self.controller {
            c.heartbeat_from(peer, seq, cadence_ms, now);
        }
    }

    pub(super) fn sent(&mut self, count: u64, now: At) {
        if let Some(c) = &mut self.controller {
            c.sent(count, now);
        }
    }

    pub(super) fn peer_left(&mut self, peer: &NodeId) {
        if let Some(c) = &mut self.controller {
            c.peer_left(peer);
        }
    }

    pub(super) fn live_peers(&mut self, n: usize) {
        if let Some(c) = &mut self.controller {
            c.set_live_peers(n);
        }
    }

    pub(super) fn leader(&mut self, leads: bool) {
        if let Some(c) = &mut self.controller {
            c.set_leader(leads);
        }
    }

    pub(super) fn led(&mut self, led: bool) {
        if let Some(c) = &mut self.controller {
            c.set_led(led);
        }
    }

    /// Slowed because the swarm is healthy (see `CadenceController::quiet`).
    pub fn quiet(&self) -> bool {
        self.controller.as_ref().is_some_and(|c| c.quiet())
    }

    pub(super) fn battery(&mut self, pct: Option<u8>, charging: bool) {
        if let Some(c) = &mut self.controller {
            c.set_battery(pct, charging);
        }
    }

    pub(super) fn pin(&mut self, mode: Option<CadenceMode>) {
        if let Some(c) = &mut self.controller {
            c.pin(mode);
        }
    }
}

/// The configured intervals, in normal mode.
pub fn configured(settings: &Settings) -> Decision {
    Decision {
        mode: CadenceMode::Normal,
        pinned: false,
        heartbeat_ms: settings.heartbeat_ms,
        energy_ms: settings.energy_ms,
        anti_entropy_ms: settings.anti_entropy_ms,
    }
}
