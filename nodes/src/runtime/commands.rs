//! Commands on this node's `cmd` key that change its cadence.

use super::pace::Pace;
use super::pin_store;
use std::path::Path;
use swarm_node::cadence::Decision;

/// `set_mode` pins the cadence (255 unpins) and is kept in the state directory; the returned
/// decision is in force at once. Other operations are refused here.
pub fn obey(cmd: &swarm_bus::Command, pace: &mut Pace, state_dir: &Path) -> Option<Decision> {
    match cmd.op {
        swarm_bus::CommandOp::SetMode => {
            let mode = match cmd.arg {
                swarm_bus::UNPIN_MODE => None,
                n => match u8::try_from(n)
                    .ok()
                    .and_then(swarm_bus::CadenceMode::from_u8)
                {
                    Some(m) => Some(m),
                    None => {
                        tracing::warn!(arg = n, "set_mode refused: no such cadence mode");
                        return None;
                    }
                },
            };
            if let Err(e) = pin_store::save(state_dir, mode) {
                tracing::warn!("keeping the pinned cadence: {e}; it holds until restart");
            }
            pace.pin(mode);
            pace.retune();
            Some(pace.decision())
        }
        op => {
            tracing::warn!(%op, arg = cmd.arg, "command refused: not one a node obeys");
            None
        }
    }
}
