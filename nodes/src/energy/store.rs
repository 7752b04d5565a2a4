//! Cumulative energy kept in the state directory, so Wh and CO2 survive restarts.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Stored {
    pub wh_total: f64,
}

pub struct EnergyStore {
    path: PathBuf,
}

impl EnergyStore {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("energy.json"),
        }
    }

    /// The saved total; a missing or damaged file starts from zero, with a warning.
    pub fn load(&self) -> Stored {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %self.path.display(), "energy state unreadable, starting from 0 Wh: {e}");
                Stored::default()
            }),
            Err(_) => Stored::default(),
        }
    }

    /// Written to a temporary file, synced and renamed, so a crash mid-write keeps the old
    /// total.
    pub fn save(&self, stored: Stored) -> std::io::Result<()> {
        crate::atomic_file::write(&self.path, &serde_json::to_vec(&stored)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart_and_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = EnergyStore::new(dir.path());
        assert_eq!(store.load().wh_total, 0.0);
        store.save(Stored { wh_total: 12.5 }).unwrap();
        assert_eq!(EnergyStore::new(dir.path()).load().wh_total, 12.5);
        std::fs::write(dir.path().join("energy.json"), b"{oops").unwrap();
        assert_eq!(store.load().wh_total, 0.0);
    }
}
