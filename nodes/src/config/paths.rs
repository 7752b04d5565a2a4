//! Where config and state live by default (XDG base directories).

use std::path::PathBuf;
use swarm_bus::NodeId;

pub fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("swarm-mesh").join("swarm.toml"))
}

/// One directory per node id, so several nodes on one host keep their own state.
pub fn default_state_dir(id: &NodeId) -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("swarm-mesh")
        .join(id.as_str())
}
