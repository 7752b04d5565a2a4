//! The operator's pinned cadence mode, kept in the state directory so it survives restarts
//! until unpinned.

use crate::atomic_file;
use std::path::{Path, PathBuf};
use swarm_bus::CadenceMode;

const FILE: &str = "cadence-pin";

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// The pinned mode, if any. A file this node cannot read is reported and ignored: the worst
/// outcome is the adaptive cadence, never a node that will not start.
pub fn load(state_dir: &Path) -> Option<CadenceMode> {
    let p = path(state_dir);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %p.display(), "reading the pinned cadence: {e}; not pinned");
            return None;
        }
    };
    match text.trim().parse::<CadenceMode>() {
        Ok(mode) => Some(mode),
        Err(e) => {
            tracing::warn!(path = %p.display(), "pinned cadence `{}`: {e}; not pinned", text.trim());
            None
        }
    }
}

pub fn save(state_dir: &Path, mode: Option<CadenceMode>) -> std::io::Result<()> {
    let p = path(state_dir);
    match mode {
        Some(m) => atomic_file::write(&p, m.as_str().as_bytes()),
        None => match std::fs::remove_file(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_survives_until_unpinned_and_junk_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), None);
        save(dir.path(), Some(CadenceMode::Emergency)).unwrap();
        assert_eq!(load(dir.path()), Some(CadenceMode::Emergency));
        save(dir.path(), None).unwrap();
        assert_eq!(load(dir.path()), None);
        save(dir.path(), None).unwrap();
        std::fs::write(dir.path().join(FILE), "turbo").unwrap();
        assert_eq!(load(dir.path()), None);
    }
}
