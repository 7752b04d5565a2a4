//! A clean stop: Leave, hand over if this node led, withdraw the token, close.

use super::Shell;
use std::time::Duration;
use swarm_bus::zenoh as bus;
use swarm_bus::{Leaf, Leave, Role};

/// A congested link must not hold up a stop.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);

impl Shell {
    /// A clean stop: Leave, hand over if this node led, withdraw the token, close.
    pub async fn leave(mut self) -> anyhow::Result<()> {
        // Handlers still running stop with the node; their tasks go to others with its token.
        drop(self.tasks.take());
        if let Some(voters) = self.core.unsaved_voters()
            && let Err(e) = self.store.voters(voters)
        {
            tracing::warn!("voter set not stored on stop: {e}");
        }
        let l = self.core.leadership();
        let led =
            l.role == Role::Leader && self.core.members().is_some_and(|m| !m.live().is_empty());
        let leave_key = self.keys.node_leaf(&self.id, Leaf::Leave);
        let leave = Leave { term: l.term };
        let sent = tokio::time::timeout(
            LEAVE_TIMEOUT,
            bus::publish(&self.session, &leave_key, &leave),
        );
        let left = match sent.await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!("{e}");
                false
            }
            Err(_) => {
                tracing::warn!("Leave not sent within {LEAVE_TIMEOUT:?}; peers rely on the token");
                false
            }
        };
        if led && left {
            let bus = &self.bus;
            let heard = crate::runtime::handoff::successor_heard(
                &bus.heartbeats,
                &bus.announcements,
                &self.id,
                l.term,
            );
            if heard.await {
                tracing::info!("a successor leads; closing");
            } else {
                let wait = crate::runtime::handoff::HANDOFF_TIMEOUT;
                tracing::info!("no successor heard within {wait:?}; closing");
            }
        }
        // Devices leave with the node that carried them.
        drop(self.bridge.take());
        if let Some(token) = self.token.take()
            && let Err(e) = token.undeclare().await
        {
            tracing::warn!("undeclaring liveliness token: {e}");
        }
        self.sampler.save();
        // Withdraw interest before closing, so peers stop sending to a session that is going
        // away.
        let Shell {
            session,
            drops,
            bus,
            _held,
            ..
        } = self;
        drop((bus, _held));
        if let Err(e) = session.close().await {
            tracing::warn!("closing zenoh session: {e}");
        }
        tracing::info!(dropped = drops.total(), "stopped");
        Ok(())
    }
}
