//! The loop's periodic work: energy samples, and anti-entropy surveys run off the loop.

use super::Shell;
use crate::runtime::anti_entropy::{self, Findings};
use std::time::Instant;
use swarm_bus::Energy;
use swarm_bus::clock::unix_ms;
use swarm_node::node::{Input, Leadership};

impl Shell {
    pub(super) async fn energy_due(&mut self) -> Option<Leadership> {
        let sample = self.sampler.sample(Instant::now());
        let low = is_low_battery(&sample, self.low_battery_pct);
        if let Err(e) = self.bus.energy.put(&sample).await {
            tracing::warn!("{e}");
        }
        self.sent(1);
        // The core shows its own sample at once, so the total below includes it.
        self.feed(Input::OwnEnergy(sample)).await;
        let total = self
            .view_tx
            .borrow()
            .swarm_energy(unix_ms(), self.gco2_per_kwh);
        if let Some(total) = total {
            if let Err(e) = self.bus.swarm_energy.put(&total).await {
                tracing::warn!("{e}");
            }
            self.sent(1);
        }
        self.feed(Input::LowBattery(low)).await
    }

    /// Anti-entropy, off the loop so a slow reply never delays a heartbeat.
    pub(super) fn survey(&mut self) {
        if self.survey_running {
            return;
        }
        self.survey_running = true;
        let (session, keys, tx) = (
            self.session.clone(),
            self.keys.clone(),
            self.survey_tx.clone(),
        );
        let leads = self.bus.energies.is_some();
        tokio::spawn(async move {
            let found = anti_entropy::survey(session, keys, leads).await;
            let _ = tx.send(found).await;
        });
    }

    pub(super) async fn surveyed(&mut self, found: Findings) -> Option<Leadership> {
        self.survey_running = false;
        let members = found.members.into_iter().map(Input::TokenAppeared);
        let energies = found
            .energies
            .into_iter()
            .map(|(from, sample)| Input::PeerEnergy { from, sample });
        let leaders = found.leaders.into_iter().map(Input::LeaderInfo);
        self.feed_all(members.chain(energies).chain(leaders)).await
    }
}

/// On battery (not charging) and below the threshold: this node should not lead while a
/// better candidate is around.
fn is_low_battery(sample: &Energy, threshold_pct: u8) -> bool {
    sample.charging != Some(true) && sample.battery_pct.is_some_and(|p| p < threshold_pct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn low_battery_means_on_battery_below_the_threshold() {
        let sample = |pct: Option<u8>, charging: Option<bool>| Energy {
            battery_pct: pct,
            charging,
            ..swarm_bus::samples::energy()
        };
        assert!(is_low_battery(&sample(Some(15), Some(false)), 20));
        assert!(is_low_battery(&sample(Some(15), None), 20));
        assert!(
            !is_low_battery(&sample(Some(15), Some(true)), 20),
            "charging"
        );
        assert!(!is_low_battery(&sample(Some(20), Some(false)), 20));
        assert!(
            !is_low_battery(&sample(None, None), 20),
            "mains, no battery"
        );
    }
}
